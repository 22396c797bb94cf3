import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_OPTIONS, QUEUE_SCHEDULE, SCHEDULE_BATCH, nodeJobId, nodeQueueName, scheduleBatchJobId, scheduleJobId, type NodeJob, type ScheduleJob } from '../../state/queues.ts';
import { type Keys } from '../../state/keys.ts';

/**
 * The reconciler's producer for the schedule and node queues. Names, payloads, job ids and options
 * are the shared contract in state/queues.ts.
 */

export class Queues {
  readonly schedule: Queue<ScheduleJob>;
  private readonly nodeQueues = new Map<string, Queue<NodeJob>>();

  constructor(private readonly connection: Redis, private readonly keys: Keys) {
    this.schedule = new Queue<ScheduleJob>(QUEUE_SCHEDULE, { connection, prefix: keys.bullPrefix });
  }

  node(name: string): Queue<NodeJob> {
    let q = this.nodeQueues.get(name);
    if (!q) {
      q = new Queue<NodeJob>(nodeQueueName(name), { connection: this.connection, prefix: this.keys.bullPrefix });
      this.nodeQueues.set(name, q);
    }
    return q;
  }

  async enqueueSchedule(instanceId: string, uid: string): Promise<void> {
    await this.schedule.add('bind', { instanceId }, { ...JOB_OPTIONS, jobId: scheduleJobId(instanceId, uid) });
  }

  /**
   * Many placements in one round trip (a scale-up, the resync's retry of every pending instance):
   * one job per SCHEDULE_BATCH instances, which the scheduler places as one batch. Sorted by id, so
   * that the same pending set makes the same jobs and siblings share one.
   */
  async enqueueSchedules(records: { id: string; uid: string }[]): Promise<void> {
    if (records.length === 0) return;
    const sorted = [...records].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const jobs = [];
    for (let k = 0; k < sorted.length; k += SCHEDULE_BATCH) {
      const chunk = sorted.slice(k, k + SCHEDULE_BATCH);
      jobs.push({ name: 'bind', data: { instanceIds: chunk.map((r) => r.id) }, opts: { ...JOB_OPTIONS, jobId: chunk.length === 1 ? scheduleJobId(chunk[0]!.id, chunk[0]!.uid) : scheduleBatchJobId(chunk) } });
    }
    await this.schedule.addBulk(jobs);
  }

  async enqueueNode(node: string, action: 'start' | 'stop', instanceId: string, uid: string): Promise<void> {
    await this.node(node).add(action, { instanceId }, { ...JOB_OPTIONS, jobId: nodeJobId(action, instanceId, uid) });
  }

  async close(): Promise<void> {
    await Promise.all([this.schedule.close(), ...[...this.nodeQueues.values()].map((q) => q.close())]);
  }
}
