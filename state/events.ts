import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/** An event, as Kubernetes records them: what happened to which object, and why. */
export interface GantryEvent {
  id?: string;
  time: number;
  type: 'Normal' | 'Warning';
  reason: string;
  /** e.g. `deployment/default/web`, `node/node-1`, `source`, `instance/<id>` */
  object: string;
  message: string;
}

/** Bounded: the stream keeps about this many events. */
export const EVENTS_MAX = 10_000;

export async function recordEvent(redis: Redis, keys: Keys, ev: Omit<GantryEvent, 'time' | 'id'> & { time?: number }): Promise<void> {
  const time = ev.time ?? Date.now();
  await redis.xadd(keys.events, 'MAXLEN', '~', String(EVENTS_MAX), '*', 'time', String(time), 'type', ev.type, 'reason', ev.reason, 'object', ev.object, 'message', ev.message);
}

export async function readEvents(redis: Redis, keys: Keys, opts: { limit?: number; object?: string } = {}): Promise<GantryEvent[]> {
  const rows = await redis.xrevrange(keys.events, '+', '-', 'COUNT', opts.limit ?? 100);
  const events = rows.map(([id, fields]) => {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
    return { id, time: Number(f.time), type: f.type === 'Warning' ? 'Warning' : 'Normal', reason: f.reason ?? '', object: f.object ?? '', message: f.message ?? '' } satisfies GantryEvent;
  });
  return (opts.object ? events.filter((e) => e.object.startsWith(opts.object!)) : events).reverse();
}
