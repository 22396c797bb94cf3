import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../state/connection.ts';
import { QUEUE_RECONCILE, RECONCILE_JOB_OPTIONS, RECONCILE_WORKER_OPTIONS, reconcileJobId, type ReconcileJob } from '../../state/queues.ts';
import { decideNext, type ReconcileDecision, type ReconcileOutcome, type ReconcileResult } from './reconcile-outcome.ts';
import type { Store } from '../../state/store.ts';

/**
 * Deployment reconciles (and so rollout steps) as BullMQ jobs on the `reconcile` queue, keyed by
 * deployment: the job id is the key, so at most one job per deployment exists at a time (one in
 * flight), and a delayed job (a rollout's next deadline or canary pause) survives a reconciler
 * that was killed: the next one finds it in Redis and picks up where the last stopped.
 *
 * BullMQ ignores an add whose id still exists, so a trigger that arrives while its key is being
 * reconciled would be lost; such a trigger leaves a `reconcile-dirty:<key>` mark instead, and the
 * key is added again once its job has left the queue. The same happens for requeueAfterMs: the
 * delayed job is added after the running one completes. What follows a run (nothing, a requeue, a
 * backoff retry, or nothing because it stalled) is decideNext's call (reconcile-outcome.ts).
 */

export type { ReconcileOutcome } from './reconcile-outcome.ts';

export interface ReconcileQueueOptions {
  concurrency?: number;
  /** A reconcile threw: what was decided (a backoff retry, a waiting requeue, or terminal). */
  onError?: (key: string, err: unknown, decision: Exclude<ReconcileDecision, { action: 'done' }>) => void;
  /** For the backoff jitter; Math.random by default. */
  random?: () => number;
  /** After each run: what was decided, how long it ran, and how long its job had waited (metrics). */
  onRun?: (result: 'done' | 'requeue' | 'error', seconds: number, waitedSeconds: number) => void;
}

export class ReconcileQueue {
  private readonly queue: Queue<ReconcileJob>;
  private readonly worker: Worker<ReconcileJob>;
  private readonly workerConnection: Redis;
  /** The job to add once the running one has left the queue; failures is set after a failed run. */
  private readonly followUps = new Map<string, { delayMs: number; failures?: number }>();
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    connection: Redis,
    redisUrl: string,
    private readonly store: Store,
    handler: (key: string) => Promise<ReconcileOutcome>,
    private readonly opts: ReconcileQueueOptions = {},
  ) {
    this.queue = new Queue<ReconcileJob>(QUEUE_RECONCILE, { connection, prefix: store.keys.bullPrefix });
    this.workerConnection = connectRedis(redisUrl, 'gantry-reconcile-worker');
    this.worker = new Worker<ReconcileJob>(
      QUEUE_RECONCILE,
      async (job: Job<ReconcileJob>) => {
        const key = job.data.key;
        const started = performance.now();
        const waitedSeconds = (Date.now() - job.timestamp - (job.opts.delay ?? 0)) / 1000;
        // Triggers from now on are for a state this run may not see: they re-add the key after it.
        await this.store.clearReconcileDirty(key);
        let result: ReconcileResult;
        try {
          result = { ok: true, outcome: await handler(key) };
        } catch (error) {
          result = { ok: false, error };
        }
        // The job itself always completes: a retry is a new job, added by afterRun.
        const decision = decideNext(result, job.data.failures ?? 0, opts.random);
        if (!result.ok && decision.action !== 'done') this.opts.onError?.(key, result.error, decision);
        if (decision.action === 'requeue') this.followUps.set(key, { delayMs: decision.afterMs });
        if (decision.action === 'backoff') this.followUps.set(key, { delayMs: decision.afterMs, failures: decision.failures });
        this.opts.onRun?.(!result.ok ? 'error' : decision.action === 'requeue' ? 'requeue' : 'done', (performance.now() - started) / 1000, waitedSeconds);
      },
      { ...RECONCILE_WORKER_OPTIONS, connection: this.workerConnection, prefix: store.keys.bullPrefix, concurrency: opts.concurrency ?? RECONCILE_WORKER_OPTIONS.concurrency },
    );
    this.worker.on('error', () => {});
    // Only once the job has left the queue (removeOnComplete) can the same id be added again.
    this.worker.on('completed', (job) => this.track(this.afterRun(job.data)));
    this.worker.on('failed', (job) => job && this.track(this.afterRun(job.data)));
  }

  /** Follow-ups still talking to Redis: stop() waits for them before the connections close. */
  private track(work: Promise<void>): void {
    const tracked = work.catch(() => {}).finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  private async afterRun(data: ReconcileJob): Promise<void> {
    if (this.stopped) return;
    const key = data.key;
    const follow = this.followUps.get(key);
    this.followUps.delete(key);
    if (await this.store.isReconcileDirty(key)) return this.ensureJob(key, 0, undefined, true);
    if (follow !== undefined) await this.ensureJob(key, follow.delayMs, follow.failures);
  }

  /**
   * Makes sure a job for `key` will run (within `delayMs`). A waiting or delayed job already does
   * (a delayed one is brought forward when asked for now); an active one re-checks the dirty mark
   * when it ends; a finished one still there (its removal raced us, or a lost lock failed it) is
   * removed so that a new job can take its id. For a trigger (`forTrigger`), a job is added only
   * while the key is still marked dirty: a run that started since has cleared the mark and sees the
   * state the trigger announced, so a late look at the queue must not add one more run.
   */
  private async ensureJob(key: string, delayMs: number, failures?: number, forTrigger = false): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const job = await this.queue.getJob(reconcileJobId(key));
      if (!job) {
        if (forTrigger && !(await this.store.isReconcileDirty(key))) return;
        // Then look again: another add may have raced ours; either way one job must be there.
        await this.queue.add('reconcile', { key, ...(failures ? { failures } : {}) }, { ...RECONCILE_JOB_OPTIONS, jobId: reconcileJobId(key), delay: delayMs });
        continue;
      }
      const state = await job.getState();
      if (state === 'active' || state === 'waiting' || state === 'prioritized' || state === 'waiting-children') return;
      if (state === 'delayed') {
        if (delayMs === 0) await job.changeDelay(0).catch(() => {});
        return;
      }
      await job.remove().catch(() => {});
    }
  }

  /** "Look at this deployment now." Never lost: marks the key dirty, then makes sure a job runs. */
  add(key: string): void {
    if (this.stopped) return;
    this.track(this.store.markReconcileDirty(key).then(() => this.ensureJob(key, 0, undefined, true)));
  }

  addAfter(key: string, delayMs: number): void {
    if (!this.stopped) this.track(this.ensureJob(key, delayMs));
  }

  /** Resolves once no reconcile is waiting or running (delayed ones do not count). */
  /** BullMQ's job counts by state (metrics: the queue's depth). */
  counts(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  }

  async idle(): Promise<void> {
    for (;;) {
      const c = await this.queue.getJobCounts('waiting', 'active', 'prioritized');
      if (c.waiting + c.active + (c.prioritized ?? 0) === 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.worker.close();
    await Promise.allSettled([...this.inFlight]);
    await this.queue.close();
    this.workerConnection.disconnect();
  }
}
