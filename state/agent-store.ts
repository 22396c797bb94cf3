import { ConfigStore } from './config-store.ts';
import type { Redis } from 'ioredis';
import { ensureClusterSecret } from './cluster-secret.ts';
import { announceChanges } from './deployment-changes.ts';
import { EventLog } from './events.ts';
import { parseStored } from './json.ts';
import { objectKey, type Keys } from './keys.ts';
import type { InstanceRecord, InstanceStatus } from './records/instance.ts';
import type { NodeRecord } from './records/node.ts';
import { scripts, type GantryScripts } from './scripts.ts';
import { ServerClock } from './server-clock.ts';

/**
 * A node agent's reads and writes of Gantry's state: its node's registration and heartbeat, the
 * instances bound to it, their statuses, and its events. Statuses are written and deleted only
 * while they are this node's business, checked inside Redis (state/lua/) so that a move to another
 * node between our read and our write can never clobber the new node's status.
 */
export class AgentStore {
  readonly events: EventLog;
  /** Reads the ConfigMap and Secret versions its containers' env refers to (read only, by ACL). */
  readonly configs: ConfigStore;
  /** Redis's clock, measured on each heartbeat. */
  readonly clock: ServerClock;
  private readonly scripts: GantryScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly node: string,
  ) {
    this.keys.node(node); // validates the name before anything touches Redis
    this.scripts = scripts(redis);
    this.events = new EventLog(redis, keys);
    this.configs = new ConfigStore(redis, keys);
    this.clock = new ServerClock(redis);
  }

  /** The credential the reconciler's log requests carry (created on first use; see cluster-secret.ts). */
  logsCredential(): Promise<string> {
    return ensureClusterSecret(this.redis, this.keys.logsSecret);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /**
   * Writes this node's record (built from the one stored, so that an operator's cordon is kept),
   * joins `nodes` and bumps the node-set version (schedulers' node caches re-read the records), in
   * one transaction that is retried when a cordon raced it; then heartbeats and announces the node
   * so that pending instances are retried.
   */
  async register(build: (existing: NodeRecord | undefined) => NodeRecord): Promise<void> {
    const nodeKey = this.keys.node(this.node);
    for (;;) {
      await this.redis.watch(nodeKey);
      const record = build(parseStored<NodeRecord>(await this.redis.get(nodeKey)));
      const done = await this.redis
        .multi()
        .set(nodeKey, JSON.stringify({ ...record, registeredAt: this.clock.toServer(record.registeredAt) }))
        .sadd(this.keys.nodes, this.node)
        .incr(this.keys.nodesVersion)
        .exec();
      if (done) break; // null: someone (a cordon) wrote the record meanwhile; read it again
    }
    await this.heartbeat();
    await this.redis.publish(this.keys.changesChannel, `node/${this.node}`);
  }

  /**
   * "I am here", on Redis's clock (the heartbeat script reads TIME): a node whose own clock is off
   * is neither evicted while alive nor kept after it died. Also re-measures this agent's offset to
   * Redis's clock, with which its statuses are stamped.
   */
  async heartbeat(): Promise<void> {
    await Promise.all([this.scripts.heartbeat(this.keys.nodeHeartbeat(this.node)), this.clock.sync()]);
  }

  /**
   * The cluster epoch the reconciler made (see Store.ensureClusterEpoch; undefined when gone), and
   * whether this node's record is there: both go only when Redis lost its data. One round trip.
   */
  async readClusterEpoch(): Promise<{ epoch?: string; registered: boolean }> {
    const [[, epoch], [, registered]] = ((await this.redis.multi().get(this.keys.clusterEpoch).exists(this.keys.node(this.node)).exec()) ?? [[null, null], [null, 0]]) as [unknown, unknown][];
    return { ...(typeof epoch === 'string' ? { epoch } : {}), registered: registered === 1 };
  }

  /**
   * Replaces this node's claims with `records` (what it still runs after Redis lost its data), for
   * the reconciler to adopt (Store.readClaims); they expire after `ttlMs`.
   */
  async publishClaims(records: InstanceRecord[], ttlMs: number): Promise<void> {
    const key = this.keys.nodeClaims(this.node);
    const tx = this.redis.multi().del(key);
    if (records.length > 0) tx.hset(key, ...records.flatMap((r) => [r.id, JSON.stringify(r)])).pexpire(key, ttlMs);
    await tx.exec();
  }

  async clearClaims(): Promise<void> {
    await this.redis.del(this.keys.nodeClaims(this.node));
  }

  /** Ids of the instances the scheduler bound to this node. */
  async assignedInstanceIds(): Promise<string[]> {
    return this.redis.smembers(this.keys.nodeInstances(this.node));
  }

  /** The grace period an operator asked a deleted instance to be stopped with (seconds), if any. */
  async stopGraceSeconds(id: string): Promise<number | undefined> {
    const v = await this.redis.get(this.keys.stopGrace(id));
    return v !== null && /^\d+$/.test(v) ? Number(v) : undefined;
  }

  async readInstance(id: string): Promise<InstanceRecord | undefined> {
    return parseStored<InstanceRecord>(await this.redis.get(this.keys.instance(id)));
  }

  /**
   * Writes the status and announces the deployment's change; false when the instance is no longer
   * ours. Its times (this machine's) are written on Redis's clock, which the reconciler compares
   * them with (minReadySeconds, progress deadlines).
   */
  async writeStatus(status: InstanceStatus, namespace: string, deployment: string): Promise<boolean> {
    const written = await this.scripts.setStatusIfBound(
      [this.keys.instance(status.id), this.keys.instanceStatus(status.id), this.keys.changedDeployments],
      this.node,
      status.uid,
      JSON.stringify(onServerClock(status, this.clock)),
      this.keys.changesChannel,
      objectKey(namespace, deployment),
    );
    return written === 1;
  }

  /** Deletes the status if this node wrote it (a copy moved elsewhere keeps the new node's status). */
  async deleteStatusIfMine(id: string): Promise<boolean> {
    return (await this.scripts.deleteStatusIfMine(this.keys.instanceStatus(id), this.node)) === 1;
  }

  async statusExists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.instanceStatus(id))) === 1;
  }

  async announceDeploymentChange(namespace: string, deployment: string): Promise<void> {
    await announceChanges(this.redis, this.keys, [objectKey(namespace, deployment)]);
  }
}

/** A status with its times moved from the agent's clock to Redis's. */
function onServerClock(s: InstanceStatus, clock: ServerClock): InstanceStatus {
  const at = (t: number | undefined) => (t === undefined ? undefined : clock.toServer(t));
  const out: InstanceStatus = { ...s, updatedAt: clock.toServer(s.updatedAt), containers: s.containers.map((c) => ({ ...c, ...(c.startedAt !== undefined ? { startedAt: at(c.startedAt) } : {}), ...(c.finishedAt !== undefined ? { finishedAt: at(c.finishedAt) } : {}) })) };
  if (s.startedAt !== undefined) out.startedAt = at(s.startedAt);
  if (s.finishedAt !== undefined) out.finishedAt = at(s.finishedAt);
  return out;
}
