import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { InstanceRecord } from '../../state/records/instance.ts';
import { connectRedis } from '../../state/connection.ts';
import { QUEUE_SCHEDULE } from '../../state/queues.ts';
import { type Keys } from '../../state/keys.ts';
import type { Queues } from '../queue/queues.ts';
import type { ScheduleJob } from '../../state/queues.ts';
import type { Store, StoredNode } from '../../state/store.ts';
import { selectNode, type NodeCandidate } from './select-node.ts';
import { requestedHostPorts, type HostPortUse } from './host-ports.ts';
import { DEFAULT_NODE_READY_MS, isNodeReady } from '../../state/records/node.ts';
import { instanceGroup } from '../../state/records/instance.ts';

/**
 * The scheduler: a BullMQ worker that places pending instances on nodes.
 *
 * A job only names an instance; the handler re-reads it and does nothing if it is bound or gone.
 * Binding goes through the bind-instance Lua script, which re-checks capacity inside Redis, so
 * several schedulers (or a stale node snapshot here) can never over-commit a node: a lost race
 * just moves on to the next-ranked node. hostPorts are not in that script: placements of instances
 * that ask for any are serialized in this process and read what is bound to each node fresh, and an
 * agent that still finds its port taken (another scheduler, an instance still stopping) reports
 * HostPortInUse and retries.
 */

export interface SchedulerOptions {
  redisUrl: string;
  store: Store;
  queues: Queues;
  keys: Keys;
  /** A node whose last heartbeat is older than this is not ready. */
  nodeReadyMs?: number;
  concurrency?: number;
  /** How long a node snapshot may be reused between placements. */
  snapshotMs?: number;
  log?: (line: string) => void;
}

export type ScheduleOutcome = 'bound' | 'pending' | 'gone';

export class Scheduler {
  private worker?: Worker<ScheduleJob>;
  private workerConnection?: Redis;
  private snapshot?: { at: number; nodes: StoredNode[] };
  private readonly chains = new Map<string, Promise<void>>();
  /** The tail of the placements of instances with hostPorts: one at a time, each seeing the last one bound. */
  private hostPortTail: Promise<unknown> = Promise.resolve();
  private readonly nodeReadyMs: number;
  private readonly snapshotMs: number;

  constructor(private readonly opts: SchedulerOptions) {
    this.nodeReadyMs = opts.nodeReadyMs ?? DEFAULT_NODE_READY_MS;
    this.snapshotMs = opts.snapshotMs ?? 500;
  }

  start(): void {
    this.workerConnection = connectRedis(this.opts.redisUrl, 'gantry-scheduler');
    this.worker = new Worker<ScheduleJob>(QUEUE_SCHEDULE, async (job) => this.scheduleOne(job.data.instanceId), {
      connection: this.workerConnection,
      prefix: this.opts.keys.bullPrefix,
      concurrency: this.opts.concurrency ?? 4,
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

  /** Forget the node snapshot (a node joined, left or freed room). */
  invalidate(): void {
    this.snapshot = undefined;
  }

  /** Re-enqueue every pending instance: called when nodes change and on the periodic resync. */
  async retryPending(): Promise<number> {
    const { store, queues } = this.opts;
    const insts = (await store.readInstances(await store.pendingInstanceIds())).filter((i) => !i.record.node);
    await queues.enqueueSchedules(insts.map((i) => i.record));
    return insts.length;
  }

  private async nodes(fresh: boolean): Promise<StoredNode[]> {
    const now = Date.now();
    if (fresh || !this.snapshot || now - this.snapshot.at > this.snapshotMs) {
      this.snapshot = { at: now, nodes: await this.opts.store.readNodes() };
    }
    return this.snapshot.nodes;
  }

  /**
   * Places one instance. Placements of one deployment are serialized in this process so that each
   * sees where its siblings went (spread); different deployments are placed concurrently.
   */
  async scheduleOne(instanceId: string): Promise<ScheduleOutcome> {
    const key = instanceGroup(instanceId);
    const prev = this.chains.get(key) ?? Promise.resolve();
    const run = prev.then(() => this.place(instanceId));
    const tail = run.then(() => undefined, () => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return run;
  }

  /** `hostPortsHeld`: already running in its turn on hostPortTail. */
  private async place(instanceId: string, hostPortsHeld = false): Promise<ScheduleOutcome> {
    const { store } = this.opts;
    for (let attempt = 0; attempt < 5; attempt++) {
      const [inst] = await store.readInstances([instanceId]);
      if (!inst) return 'gone';
      if (inst.record.node) return 'bound';
      const rec = inst.record;
      if (!hostPortsHeld && requestedHostPorts(rec.containers).length > 0) {
        // Instances with hostPorts wait for each other's placements (different deployments may
        // want the same port); the others never wait, nor pay for the lookup.
        const run = this.hostPortTail.then(() => this.place(instanceId, true));
        this.hostPortTail = run.catch(() => undefined);
        return run;
      }
      const nodes = await this.nodes(attempt > 0);
      const views = await this.views(rec, nodes);
      const placement = selectNode(rec, views);
      if ('reason' in placement) {
        if (rec.pendingReason !== placement.reason) {
          const next: InstanceRecord = { ...rec, pendingReason: placement.reason };
          if (await store.replaceInstance(inst, next)) {
            await store.events.record({ type: 'Warning', reason: 'FailedScheduling', object: `instance/${rec.id}`, message: placement.reason });
            await this.publishChange(rec);
          }
        }
        return 'pending';
      }
      let raced = false;
      for (const nodeName of placement.ranked) {
        const next: InstanceRecord = { ...rec, node: nodeName, boundAt: Date.now() };
        delete next.pendingReason;
        const res = await store.bindInstance(inst, nodeName, next);
        if (res === 1) {
          const cached = nodes.find((n) => n.record.name === nodeName);
          if (cached) {
            cached.alloc.cpuMilli += rec.cpuMilli;
            cached.alloc.memoryBytes += rec.memoryBytes;
            cached.alloc.instances += 1;
          }
          await this.opts.queues.enqueueNode(nodeName, 'start', rec.id, rec.uid);
          await store.events.record({ type: 'Normal', reason: 'Scheduled', object: `instance/${rec.id}`, message: `bound to ${nodeName}` });
          await this.publishChange(rec);
          return 'bound';
        }
        if (res === 0) {
          raced = true; // the record moved under us: re-read it
          break;
        }
        // Node full, cordoned or gone since the snapshot: try the next one.
      }
      if (!raced) this.invalidate();
    }
    return 'pending';
  }

  private async views(rec: InstanceRecord, nodes: StoredNode[]): Promise<NodeCandidate[]> {
    const perNode = await this.opts.store.siblingsPerNode(rec.namespace, rec.deployment, rec.id);
    const hostPorts = requestedHostPorts(rec.containers).length > 0 ? await this.hostPortsInUse(nodes, rec.id) : undefined;
    // Heartbeats are on Redis's clock.
    const now = this.opts.store.clock.now();
    return nodes.map((n) => ({
      record: n.record,
      alloc: n.alloc,
      ready: isNodeReady(n.heartbeatAt, now, this.nodeReadyMs),
      sameDeployment: perNode.get(n.record.name) ?? 0,
      ...(hostPorts ? { usedHostPorts: hostPorts.get(n.record.name) ?? [] } : {}),
    }));
  }

  /**
   * node -> the hostPorts of the instances bound there now (not from the snapshot: the last
   * placement must count). Only read for an instance that asks for hostPorts, so placements without
   * any cost nothing more.
   */
  private async hostPortsInUse(nodes: StoredNode[], exceptId: string): Promise<Map<string, HostPortUse[]>> {
    const { store } = this.opts;
    const ids = (await Promise.all(nodes.map((n) => store.nodeInstanceIds(n.record.name)))).flat().filter((id) => id !== exceptId);
    const out = new Map<string, HostPortUse[]>();
    for (const { record } of await store.readInstances(ids)) {
      const used = record.node ? requestedHostPorts(record.containers) : [];
      if (used.length > 0) out.set(record.node!, [...(out.get(record.node!) ?? []), ...used]);
    }
    return out;
  }

  private async publishChange(rec: InstanceRecord): Promise<void> {
    await this.opts.store.announceDeploymentChange(rec.namespace, rec.deployment);
  }
}
