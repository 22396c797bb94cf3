/**
 * How many instance starts run at once on a node (`gantry agent --concurrency N`). A start here is
 * the part that keeps the engine busy: the pod's sandbox, creating and starting its container (or
 * spawning its process). A Docker Engine's throughput stops growing at a few concurrent starts on a
 * small machine (each start is network namespace, veth, iptables and runc work on its cores), and
 * past that every start only gets slower while stops, probes and rechecks queue behind them inside
 * the engine; see agents/README.md for the measurement behind the default.
 *
 * What is not a start never takes a slot: image pulls (before it, shared per image), stops (their
 * own lane: a slow start must never hold one up), probes, hooks. Waiters are served in arrival order.
 */

/** Measured with bench/swarm-scale.ts on a 2-core machine (agents/README.md, "Concurrency"). */
export const DEFAULT_START_CONCURRENCY = 8;

/**
 * A start that stopped waiting (for its slot, for its image) because its instance is being stopped
 * or replaced: not a failure of anything, and nothing to report; the instance is looked at again.
 */
export class StartInterrupted extends Error {
  constructor(what: string) {
    super(`${what}: interrupted, the instance is no longer wanted here`);
    this.name = 'StartInterrupted';
  }
}

/** Rejects with StartInterrupted once `signal` aborts (never, without one). */
export function interrupted(signal: AbortSignal | undefined, what: string): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (!signal) return;
    if (signal.aborted) return reject(new StartInterrupted(what));
    signal.addEventListener('abort', () => reject(new StartInterrupted(what)), { once: true });
  });
}

export class StartSlots {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(readonly limit: number = DEFAULT_START_CONCURRENCY) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`start concurrency must be a positive integer, not ${limit}`);
  }

  /** Runs `fn` in a slot, waiting for one first if all are taken; `signal` ends the wait (StartInterrupted), not `fn`. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new StartInterrupted('waiting for a start slot');
    if (this.active < this.limit) this.active++;
    // The slot is handed over by the one that frees it (see finally), so `active` stays counted.
    else await this.wait(signal);
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.active--;
    }
  }

  private wait(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        // Already handed the slot: too late to give it up here, the caller's run goes on.
        if (i < 0) return;
        this.waiters.splice(i, 1);
        reject(new StartInterrupted('waiting for a start slot'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Starts waiting for a slot now (for status and tests). */
  get waiting(): number {
    return this.waiters.length;
  }

  get running(): number {
    return this.active;
  }
}
