/**
 * One run at a time, and one more after it if asked for meanwhile: for level-triggered work that
 * re-reads everything it needs (recompute endpoints, sync a branch, refresh listeners). A trigger
 * that arrives while a run is in progress cannot be served by that run (it may already have read
 * the state the trigger announces), so it asks for one follow-up run; any number of triggers
 * meanwhile share that single follow-up, which keeps bursts cheap and never misses the newest state.
 */

import { registerErrorClass, TransientError } from './errors/index.ts';

export interface CoalescedRunnerOptions {
  /**
   * Told the error of a run that no run() caller awaits (one started or asked for by poke()). A
   * failed run never stops later ones. Without it such errors are dropped.
   */
  onError?: (err: unknown) => void;
}

/** run() after stop(), or a follow-up run that stop() cancelled. */
export class RunnerStoppedError extends TransientError {
  constructor() {
    super('STOPPED', 'stopped');
  }
}
registerErrorClass(RunnerStoppedError, 'RunnerStoppedError');

interface Run<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
  /** A run() caller holds the promise: errors go to it rather than to onError. */
  awaited: boolean;
}

function newRun<T>(): Run<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Handled here: a run nobody awaits reports to onError instead of an unhandled rejection.
  promise.catch(() => {});
  return { promise, resolve, reject, awaited: false };
}

export class CoalescedRunner<T = void> {
  /** The latest loop: settles once its run and the follow-ups it hands over to are over. */
  private active?: Promise<void>;
  /** The follow-up asked for while a run is in progress. */
  private next?: Run<T>;
  private running = false;
  private stopped = false;

  constructor(
    private readonly task: () => Promise<T>,
    private readonly opts: CoalescedRunnerOptions = {},
  ) {}

  /** Whether a run is in progress (callers that would rather skip than queue check this). */
  get busy(): boolean {
    return this.running;
  }

  /**
   * The result of a run that starts after this call: now when idle, otherwise the one follow-up
   * shared by everyone who asked during the current run. Rejects with that run's error, or with
   * RunnerStoppedError once stopped.
   */
  run(): Promise<T> {
    if (this.stopped) return Promise.reject(new RunnerStoppedError());
    const run = this.request();
    run.awaited = true;
    return run.promise;
  }

  /** Fire and forget: as run(), its errors going to onError. Does nothing once stopped. */
  poke(): void {
    if (!this.stopped) this.request();
  }

  /** Resolves once no run is in progress and none is asked for. */
  async idle(): Promise<void> {
    while (this.running) await this.active;
  }

  /** Refuses new runs, cancels a follow-up not yet started, and waits for the current run. */
  async stop(): Promise<void> {
    this.stopped = true;
    const next = this.next;
    this.next = undefined;
    next?.reject(new RunnerStoppedError());
    await this.idle();
  }

  private request(): Run<T> {
    if (this.running) return (this.next ??= newRun<T>());
    const run = newRun<T>();
    // Set before the task starts: a task that pokes synchronously must not start a second run.
    this.running = true;
    this.active = this.loop(run);
    return run;
  }

  /** Runs `first`, then each follow-up asked for meanwhile, one at a time. Never rejects. */
  private async loop(first: Run<T>): Promise<void> {
    let run: Run<T> | undefined = first;
    while (run) {
      try {
        run.resolve(await this.task());
      } catch (err) {
        run.reject(err);
        if (!run.awaited) this.report(err);
      }
      run = this.next;
      this.next = undefined;
    }
    // A task that fails synchronously ends the loop before request() has stored it: `running`,
    // not `active`, says whether a run is in progress.
    this.running = false;
  }

  private report(err: unknown): void {
    try {
      this.opts.onError?.(err);
    } catch {
      // A failing error handler must not stop the runner.
    }
  }
}
