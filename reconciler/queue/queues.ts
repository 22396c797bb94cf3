import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_OPTIONS, QUEUE_SCHEDULE, nodeJobId, nodeQueueName, scheduleJobId, type NodeJob, type ScheduleJob } from '../../state/queues.ts';
import { type Keys } from '../../state/keys.ts';

/**
 * The BullMQ queues the reconciler writes to. Jobs are triggers ("look at instance X now"); the
 * handler converges X to what Redis records, so job ids are deterministic per instance and uid,
 * and a lost, repeated or reordered job cannot cause drift.
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

  async enqueueNode(node: string, action: 'start' | 'stop', instanceId: string, uid: string): Promise<void> {
    await this.node(node).add(action, { instanceId }, { ...JOB_OPTIONS, jobId: nodeJobId(action, instanceId, uid) });
  }

  async close(): Promise<void> {
    await Promise.all([this.schedule.close(), ...[...this.nodeQueues.values()].map((q) => q.close())]);
  }
}
