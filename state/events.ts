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

export type NewEvent = Omit<GantryEvent, 'time' | 'id'> & { time?: number };

/** Bounded: the stream keeps about this many events. */
export const EVENTS_MAX = 10_000;

/** The `events` stream: written by reconciler and agents, read by the API. */
export class EventLog {
  private readonly observers: ((ev: NewEvent) => void)[] = [];

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  async record(ev: NewEvent): Promise<void> {
    await this.recordAll([ev]);
  }

  /** Several events in one round trip, in order. */
  async recordAll(events: NewEvent[]): Promise<void> {
    if (events.length === 0) return;
    const pipe = this.redis.pipeline();
    for (const ev of events) {
      const time = ev.time ?? Date.now();
      pipe.xadd(this.keys.events, 'MAXLEN', '~', String(EVENTS_MAX), '*', 'time', String(time), 'type', ev.type, 'reason', ev.reason, 'object', ev.object, 'message', ev.message);
    }
    const res = (await pipe.exec()) ?? [];
    const failed = res.find(([err]) => err);
    if (failed) throw failed[0];
    for (const ev of events) for (const observe of this.observers) observe(ev);
  }

  /** Calls `fn` with each event this process records, once it is written (metrics count them). */
  observe(fn: (ev: NewEvent) => void): void {
    this.observers.push(fn);
  }

  /** The newest `limit` events (of objects starting with `object`, when given), oldest first. */
  async read(opts: { limit?: number; object?: string } = {}): Promise<GantryEvent[]> {
    const limit = opts.limit ?? 100;
    const object = opts.object;
    if (!object) return (await this.redis.xrevrange(this.keys.events, '+', '-', 'COUNT', limit)).map(toEvent).reverse();
    // The newest `limit` of this object's, looked for page by page through the whole (bounded)
    // stream, not only among the newest `limit` of all. The object itself and what is under it
    // (deployment/ns/web, not deployment/ns/web2); one ending in `/` is a prefix (deployment/).
    const matches = object.endsWith('/') ? (o: string) => o.startsWith(object) : (o: string) => o === object || o.startsWith(`${object}/`);
    const found: GantryEvent[] = [];
    for (let end = '+'; found.length < limit; ) {
      const page = await this.redis.xrevrange(this.keys.events, end, '-', 'COUNT', 500);
      for (const row of page) {
        const ev = toEvent(row);
        if (matches(ev.object) && found.push(ev) === limit) break;
      }
      if (page.length < 500) break;
      end = `(${page.at(-1)![0]}`;
    }
    return found.reverse();
  }

  /** Up to `count` events recorded after the one with id `afterId`, oldest first. */
  async readAfter(afterId: string, count: number): Promise<GantryEvent[]> {
    return (await this.redis.xrange(this.keys.events, `(${afterId}`, '+', 'COUNT', count)).map(toEvent);
  }

  /** The id of the newest event ('0-0' when there is none). */
  async lastId(): Promise<string> {
    return (await this.redis.xrevrange(this.keys.events, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
  }

  /** Where the notifier got to: the id of the last event it handled. */
  async notifiedUpTo(): Promise<string | undefined> {
    return (await this.redis.get(this.keys.notificationsCursor)) ?? undefined;
  }

  async setNotifiedUpTo(id: string): Promise<void> {
    await this.redis.set(this.keys.notificationsCursor, id);
  }
}

function toEvent([id, fields]: [string, string[]]): GantryEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { id, time: Number(f.time), type: f.type === 'Warning' ? 'Warning' : 'Normal', reason: f.reason ?? '', object: f.object ?? '', message: f.message ?? '' };
}
