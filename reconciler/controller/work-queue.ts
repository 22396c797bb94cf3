/**
 * A keyed work queue with client-go's workqueue semantics, in process:
 * - a key added many times before it is processed is processed once (dedupe);
 * - a key is never processed by two workers at once; a key added while it is being processed is
 *   processed again afterwards (so no change is lost between read and write);
 * - a failing key is retried with per-key exponential backoff; success resets it.
 *
 * Reconciles act on keys, never on events: what triggered the add is not passed along.
 */

export type ReconcileOutcome = { requeueAfterMs?: number } | void;

export interface WorkQueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly idleWaiters: (() => void)[] = [];
  private running = 0;
  private stopped = false;
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly handler: (key: string) => Promise<ReconcileOutcome>, private readonly opts: WorkQueueOptions = {}) {
    this.concurrency = opts.concurrency ?? 4;
    this.baseDelayMs = opts.baseDelayMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
  }

  add(key: string): void {
    if (this.stopped || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.processing.has(key)) this.queue.push(key);
    this.pump();
  }

  addAfter(key: string, delayMs: number): void {
    if (this.stopped || this.timers.has(key)) return;
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    t.unref();
    this.timers.set(key, t);
  }

  get length(): number {
    return this.queue.length + this.processing.size;
  }

  /** Resolves once nothing is queued or being processed (delayed retries do not count). */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.dirty.delete(key);
      this.processing.add(key);
      this.running++;
      void this.process(key);
    }
    if (this.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private async process(key: string): Promise<void> {
    try {
      const outcome = await this.handler(key);
      this.failures.delete(key);
      if (outcome && outcome.requeueAfterMs !== undefined) this.addAfter(key, outcome.requeueAfterMs);
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (n - 1));
      this.opts.onError?.(key, err, delay);
      this.addAfter(key, delay);
    } finally {
      this.processing.delete(key);
      this.running--;
      // Added while we were processing it: it goes back in line now.
      if (this.dirty.has(key)) this.queue.push(key);
      this.pump();
    }
  }
}
