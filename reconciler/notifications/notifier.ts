/**
 * Sends events to the receivers of the notifications file (notification-config.ts). It follows
 * the events stream in Redis, so it sees what every component recorded (agents' CrashLoopBackOff
 * as well as the reconciler's RolledBack), and keeps where it got to in Redis: a restart goes on
 * from there, sending nothing twice unless it stopped in the middle of a batch (at least once:
 * payloads carry the event id for receivers that must not count one twice). The first start
 * begins at the newest event, so history is never replayed.
 *
 * Each batch is handed to every receiver that wants its events, in order; a receiver retries a
 * failed delivery with backoff (5xx, 429 with its Retry-After, network errors; a 4xx is final) up to
 * its maxAttempts, and drops what exceeds its maxPerMinute (counted and logged, never queued
 * without bound). The cursor moves once every receiver is done with the batch. URLs are never
 * logged: a Slack URL is a credential.
 */
import type { EventLog, GantryEvent } from '../../state/events.ts';
import type { Logger } from '../log.ts';
import type { NotificationConfig, ReceiverConfig } from './notification-config.ts';
import { retryable, retryDelayMs, slackPayload, wants, webhookPayload } from './notification-payloads.ts';

export type NotificationResult = 'sent' | 'failed' | 'dropped';

export interface NotifierDeps {
  events: EventLog;
  config: NotificationConfig;
  /** Where `urlEnv` URLs are looked up (process.env). */
  env: NodeJS.ProcessEnv;
  version: string;
  log: Logger;
  /** How often the stream is read (default 500 ms). */
  pollMs?: number;
  /** Time allowed for one delivery (default 10 s). */
  timeoutMs?: number;
  onResult?: (receiver: string, reason: string, result: NotificationResult) => void;
}

const BATCH = 100;

/** A token bucket: maxPerMinute at once, refilled evenly over the minute. */
class RateLimit {
  private tokens: number;
  private at = Date.now();
  dropped = 0;

  constructor(private readonly perMinute: number) {
    this.tokens = perMinute;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.at) / 60_000) * this.perMinute);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export class Notifier {
  private readonly limits = new Map<string, RateLimit>();
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private readonly reportedMissing = new Set<string>();

  constructor(private readonly deps: NotifierDeps) {
    for (const r of deps.config.receivers) this.limits.set(r.name, new RateLimit(r.maxPerMinute));
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { events, log } = this.deps;
    const pollMs = this.deps.pollMs ?? 500;
    let cursor: string | undefined;
    while (!this.abort.signal.aborted) {
      try {
        if (cursor === undefined) {
          cursor = await events.notifiedUpTo();
          if (cursor === undefined) await events.setNotifiedUpTo((cursor = await events.lastId()));
        }
        const batch = await events.readAfter(cursor, BATCH);
        if (batch.length > 0) {
          await Promise.all(this.deps.config.receivers.map((r) => this.deliverAll(r, batch.filter((ev) => wants(r, ev)))));
          if (this.abort.signal.aborted) return; // the batch is not done: the next start sends it again
          cursor = batch.at(-1)!.id!;
          await events.setNotifiedUpTo(cursor);
          if (batch.length === BATCH) continue;
        }
      } catch (err) {
        log.error(`notifications: ${err instanceof Error ? err.message : String(err)}`);
      }
      await this.sleep(pollMs);
    }
  }

  private async deliverAll(r: ReceiverConfig, batch: GantryEvent[]): Promise<void> {
    const limit = this.limits.get(r.name)!;
    for (const ev of batch) {
      if (this.abort.signal.aborted) return;
      if (!limit.take()) {
        if (limit.dropped++ % 100 === 0) this.deps.log.warn(`notifications: receiver ${r.name} is over its ${r.maxPerMinute} per minute: dropping ${ev.reason} of ${ev.object} (and counting)`);
        this.deps.onResult?.(r.name, ev.reason, 'dropped');
        continue;
      }
      const result = await this.deliver(r, ev);
      this.deps.onResult?.(r.name, ev.reason, result);
    }
  }

  private url(r: ReceiverConfig): string | undefined {
    if ('url' in r.target) return r.target.url;
    const url = this.deps.env[r.target.urlEnv];
    if (!url && !this.reportedMissing.has(r.name)) {
      this.reportedMissing.add(r.name);
      this.deps.log.error(`notifications: receiver ${r.name}: $${r.target.urlEnv} is not set; its notifications fail until it is`);
    }
    return url || undefined;
  }

  /** One event to one receiver, with retries. */
  private async deliver(r: ReceiverConfig, ev: GantryEvent): Promise<NotificationResult> {
    const url = this.url(r);
    if (!url) return 'failed';
    const body = JSON.stringify(r.kind === 'slack' ? slackPayload(ev) : webhookPayload(ev, { version: this.deps.version }));
    let last = '';
    for (let attempt = 1; attempt <= r.maxAttempts; attempt++) {
      if (this.abort.signal.aborted) return 'failed';
      let retryAfter: number | undefined;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': `gantry/${this.deps.version}` },
          body,
          redirect: 'error',
          signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.deps.timeoutMs ?? 10_000)]),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return 'sent';
        last = `HTTP ${res.status}`;
        if (!retryable(res.status)) break;
        const header = res.headers.get('retry-after');
        retryAfter = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
      } catch (err) {
        // The error's text may quote the URL (a DNS failure does): only its kind is kept.
        last = err instanceof Error ? (err.name === 'TimeoutError' ? 'timed out' : `network error (${(err.cause as { code?: string } | undefined)?.code ?? err.name})`) : 'network error';
      }
      if (attempt < r.maxAttempts) await this.sleep(retryDelayMs(attempt + 1, retryAfter));
    }
    this.deps.log.warn(`notifications: ${ev.reason} of ${ev.object} to receiver ${r.name} failed: ${last}`);
    return 'failed';
  }

  private sleep(ms: number): Promise<void> {
    const { signal } = this.abort;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        // Removed either way: a listener per poll would pile up on the signal.
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
