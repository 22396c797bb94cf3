import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../state/connection.ts';
import { QUEUE_SCHEDULE, SCHEDULE_BATCH } from '../../state/queues.ts';
import { type Keys } from '../../state/keys.ts';
import type { Queues } from '../queue/queues.ts';
import type { ScheduleJob } from '../../state/queues.ts';
import type { Store } from '../../state/store.ts';
import { DEFAULT_NODE_READY_MS } from '../../state/records/node.ts';
import { NodeCache } from './node-cache.ts';
import { placeBatch, type ScheduleOutcome } from './place-batch.ts';

export type { ScheduleOutcome } from './place-batch.ts';

/**
 * The scheduler: a BullMQ worker that places pending instances on nodes.
 *
 * A job names instances (a batch of them, or one); the handler re-reads them and leaves alone
 * those bound or gone. Placements run in batches, one batch at a time in this process: what the
 * jobs in flight ask for while a batch runs becomes the next batch (up to `batchSize` instances),
 * so a burst of jobs costs a few round trips per batch, not per instance (place-batch.ts). Each
 * batch sees every placement before it (spread, and hostPorts, which the bind script does not
 * check), and binds through the bind-instances Lua script, which re-checks capacity inside Redis,
 * so several schedulers (or a stale node cache here, node-cache.ts) can never over-commit a node.
 */

export interface SchedulerOptions {
  redisUrl: string;
  store: Store;
  queues: Queues;
  keys: Keys;
  /** A node whose last heartbeat is older than this is not ready. */
  nodeReadyMs?: number;
  /** Jobs taken at once: their instances are placed together. */
  concurrency?: number;
  /**
   * How long heartbeats and allocations read in bulk may be reused between batches (default 1 s:
   * a dead node is seen NotReady that much after its timeout; allocations between re-reads follow
   * the bind script's answers, and a stale one never over-commits a node).
   */
  snapshotMs?: number;
  /** Most instances placed (and bound in one script call) per batch. */
  batchSize?: number;
  log?: (line: string) => void;
  /** After each schedule job: its instances' outcomes and how long placing them took (metrics). */
  onScheduled?: (outcomes: readonly ScheduleOutcome[], seconds: number) => void;
}

interface Request {
  ids: string[];
  resolve: (outcomes: ScheduleOutcome[]) => void;
  reject: (err: unknown) => void;
}

/** A schedule job's instances (Queues.enqueueSchedules) are one batch. */
export const DEFAULT_BATCH_SIZE = SCHEDULE_BATCH;

export class Scheduler {
  private worker?: Worker<ScheduleJob>;
  private workerConnection?: Redis;
  private readonly cache: NodeCache;
  private readonly nodeReadyMs: number;
  private readonly batchSize: number;
  private readonly waiting: Request[] = [];
  private draining = false;
  /** Per-node counts built for data from before they existed, once per process (see PlacementStore). */
  private prepared?: Promise<void>;

  constructor(private readonly opts: SchedulerOptions) {
    this.nodeReadyMs = opts.nodeReadyMs ?? DEFAULT_NODE_READY_MS;
    this.batchSize = Math.max(1, opts.batchSize ?? DEFAULT_BATCH_SIZE);
    this.cache = new NodeCache(opts.store, opts.snapshotMs ?? 1_000);
  }

  start(): void {
    this.workerConnection = connectRedis(this.opts.redisUrl, 'gantry-scheduler');
    this.worker = new Worker<ScheduleJob>(QUEUE_SCHEDULE, async (job) => {
      const t0 = performance.now();
      const outcomes = await this.scheduleMany(job.data.instanceIds ?? (job.data.instanceId ? [job.data.instanceId] : []));
      this.opts.onScheduled?.(outcomes, (performance.now() - t0) / 1000);
    }, {
      connection: this.workerConnection,
      prefix: this.opts.keys.bullPrefix,
      // Jobs taken together are placed together: more at once, bigger batches.
      concurrency: this.opts.concurrency ?? 64,
      // A placement takes milliseconds. A reconciler killed mid-placement leaves its jobs active
      // under a lock; a short lock gets them back to a restarted reconciler within seconds, not
      // BullMQ's default 30 s (re-adding them is a no-op while they exist).
      lockDuration: 5_000,
      stalledInterval: 5_000,
    });
    this.worker.on('error', (err) => this.opts.log?.(`scheduler: ${err.message}`));
  }

  async stop(): Promise<void> {
    await this.worker?.close();
    this.workerConnection?.disconnect();
  }

  /** Forget the node cache (a node joined, left or freed room). */
  invalidate(): void {
    this.cache.invalidate();
  }

  /** Re-enqueue every pending instance: called when nodes change and on the periodic resync. */
  async retryPending(): Promise<number> {
    const { store, queues } = this.opts;
    const insts = (await store.readInstances(await store.pendingInstanceIds())).filter((i) => !i.record.node);
    await queues.enqueueSchedules(insts.map((i) => i.record));
    return insts.length;
  }

  async scheduleOne(instanceId: string): Promise<ScheduleOutcome> {
    return (await this.scheduleMany([instanceId]))[0]!;
  }

  /** Places these instances (with whatever else is asked meanwhile); one outcome per id, in order. */
  async scheduleMany(ids: readonly string[]): Promise<ScheduleOutcome[]> {
    if (ids.length === 0) return [];
    // A request never spans batches: a larger one is several.
    const parts: Promise<ScheduleOutcome[]>[] = [];
    for (let k = 0; k < ids.length; k += this.batchSize) {
      parts.push(
        new Promise((resolve, reject) => {
          this.waiting.push({ ids: ids.slice(k, k + this.batchSize), resolve, reject });
        }),
      );
    }
    if (!this.draining) {
      this.draining = true;
      // After the current task: calls made together (a Promise.all, several jobs) share a batch.
      queueMicrotask(() => void this.drain());
    }
    return (await Promise.all(parts)).flat();
  }

  /**
   * Runs batches until no request waits. A batch's announcements (node jobs, events) go on while
   * the next batch reads and picks, one batch's at a time and in order; its requests are answered
   * once they are done, so a job completes only after its node jobs were added.
   */
  private async drain(): Promise<void> {
    let announcing: Promise<unknown> = Promise.resolve();
    for (;;) {
      if (this.waiting.length === 0) {
        await announcing;
        if (this.waiting.length === 0) break;
        continue;
      }
      const taken: Request[] = [];
      let count = 0;
      while (this.waiting.length > 0 && count + this.waiting[0]!.ids.length <= this.batchSize) {
        const r = this.waiting.shift()!;
        taken.push(r);
        count += r.ids.length;
      }
      const ids = [...new Set(taken.flatMap((r) => r.ids))];
      try {
        await this.prepare();
        const deps = { store: this.opts.store, queues: this.opts.queues, cache: this.cache, nodeReadyMs: this.nodeReadyMs };
        const batch = await placeBatch(deps, ids);
        const previous = announcing;
        announcing = previous.then(() => batch.announce()).then(
          () => {
            for (const r of taken) r.resolve(r.ids.map((id) => batch.outcomes.get(id) ?? 'pending'));
          },
          (err: unknown) => {
            for (const r of taken) r.reject(err);
          },
        );
      } catch (err) {
        for (const r of taken) r.reject(err);
      }
    }
    this.draining = false;
  }

  private prepare(): Promise<void> {
    this.prepared ??= this.opts.store.placement.ensureDeploymentNodes().then(
      (n) => {
        if (n > 0) this.opts.log?.(`scheduler: built the per-node counts of ${n} deployment(s)`);
      },
      (err: unknown) => {
        this.prepared = undefined; // tried again with the next batch
        throw err;
      },
    );
    return this.prepared;
  }
}
