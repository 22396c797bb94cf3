import { createHash } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { assertKeyPart } from './keys.ts';

/**
 * The BullMQ queues between reconciler and agents: names, job payloads, job ids and the options
 * jobs are added with. Jobs are triggers ("look at instance X now"); the handler converges X to
 * what Redis records, so job ids are deterministic per instance and uid, and a lost, repeated or
 * reordered job cannot cause drift.
 *
 *   schedule        ScheduleJob   bind.<instance>.<uid>        reconciler -> scheduler (one instance)
 *                                 bind.<hash of ids and uids>  (a batch: what one reconcile created, a resync's pending)
 *   node-<name>     NodeJob       start|stop.<instance>.<uid>  reconciler/scheduler -> that node's agent
 *   reconcile       ReconcileJob  reconcile.<ns>.<name>        one per deployment (reconciler)
 */

/** BullMQ queue names (BullMQ forbids `:` in them). */
export const QUEUE_SCHEDULE = 'schedule';
/** Deployment reconciles, one job per deployment key (rollout steps included). */
export const QUEUE_RECONCILE = 'reconcile';
export function nodeQueueName(node: string): string {
  return `node-${assertKeyPart(node, 'node name')}`;
}

/** One instance, or a batch of them (placed together: BullMQ's cost per job is paid once per batch). */
export interface ScheduleJob {
  instanceId?: string;
  instanceIds?: string[];
}

/** Instances per schedule job at most (the scheduler's batch, DEFAULT_BATCH_SIZE). */
export const SCHEDULE_BATCH = 256;
export interface NodeJob {
  instanceId: string;
}

/** One place for retry and retention policy. */
export const JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 200 },
  removeOnComplete: true,
  // Failed jobs are dropped too: a kept one would swallow later adds of the same id, and the
  // state they pointed at is re-checked by the periodic resync anyway.
  removeOnFail: true,
};

export function scheduleJobId(instanceId: string, uid: string): string {
  return `bind.${instanceId}.${uid}`;
}
/** The same instances (and uids) give the same id, so a repeated batch is a no-op while it waits. */
export function scheduleBatchJobId(records: readonly { id: string; uid: string }[]): string {
  const h = createHash('sha256');
  for (const r of records) h.update(`${r.id}.${r.uid}\n`);
  return `bind.${h.digest('hex').slice(0, 32)}`;
}
export function nodeJobId(action: 'start' | 'stop', instanceId: string, uid: string): string {
  return `${action}.${instanceId}.${uid}`;
}

export interface ReconcileJob {
  key: string;
  /** Set on the job that follows a failure: how many in a row. */
  failures?: number;
}

/**
 * The reconcile queue's retention, worker and retry policy (ReconcileQueue). Its jobs are added
 * with one attempt: a failed reconcile is not a failed job but a follow-up job, whose delay the
 * outcome switch (reconciler/controller/reconcile-outcome.ts) computes from RECONCILE_BACKOFF.
 */
export const RECONCILE_JOB_OPTIONS: JobsOptions = {
  // The job id is the key: a finished job left in the queue would swallow the next trigger.
  removeOnComplete: true,
  removeOnFail: true,
};

export const RECONCILE_WORKER_OPTIONS = {
  concurrency: 4,
  // Short, so a reconciler that died hands its keys to another within seconds.
  lockDuration: 5_000,
  stalledInterval: 5_000,
} as const;

/** After the n-th failure in a row: base * 2^(n-1), capped, then spread by +-jitter (a fraction). */
export const RECONCILE_BACKOFF = {
  baseMs: 100,
  capMs: 60_000,
  jitter: 0.2,
} as const;

export type BackoffPolicy = { readonly baseMs: number; readonly capMs: number; readonly jitter: number };

/** One job per deployment key: its id is the key. */
export function reconcileJobId(key: string): string {
  return `reconcile.${key.replace('/', '.')}`;
}
