import { Redis } from 'ioredis';

/**
 * One ioredis connection. BullMQ workers need `maxRetriesPerRequest: null` on their blocking
 * connections, and we use the same settings everywhere so that a Redis restart is ridden out.
 */
export function connectRedis(url: string, name = 'gantry'): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: null, connectionName: name, lazyConnect: false });
  // ioredis reconnects by itself; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

/** Strips user info from a Redis URL so that it can be logged. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.password ? '***' : '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return '<invalid url>';
  }
}
