import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';

/** The CA file a `rediss://` server's certificate is checked against (else the system's CAs). */
export const REDIS_CA_ENV = 'GANTRY_REDIS_CA';

/**
 * One ioredis connection. BullMQ workers need `maxRetriesPerRequest: null` on their blocking
 * connections, and we use the same settings everywhere so that a Redis restart is ridden out.
 * `rediss://` is TLS, checked against `caFile` (default $GANTRY_REDIS_CA) when one is given.
 */
export function connectRedis(url: string, name = 'gantry', opts: { caFile?: string } = {}): Redis {
  const caFile = opts.caFile ?? process.env[REDIS_CA_ENV];
  const tls = url.startsWith('rediss://') && caFile ? { tls: { ca: readFileSync(caFile) } } : {};
  const redis = new Redis(url, { maxRetriesPerRequest: null, connectionName: name, lazyConnect: false, ...tls });
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
