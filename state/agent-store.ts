import type { Redis } from 'ioredis';
import { EventLog } from './events.ts';
import { parseStored } from './json.ts';
import { objectKey, type Keys } from './keys.ts';
import type { InstanceRecord, InstanceStatus } from './records/instance.ts';
import type { NodeRecord } from './records/node.ts';
import { scripts, type GantryScripts } from './scripts.ts';

/**
 * A node agent's reads and writes of Gantry's state: its node's registration and heartbeat, the
 * instances bound to it, their statuses, and its events. Statuses are written and deleted only
 * while they are this node's business, checked inside Redis (state/lua/) so that a move to another
 * node between our read and our write can never clobber the new node's status.
 */
export class AgentStore {
  readonly events: EventLog;
  private readonly scripts: GantryScripts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly node: string,
  ) {
    this.keys.node(node); // validates the name before anything touches Redis
    this.scripts = scripts(redis);
    this.events = new EventLog(redis, keys);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /**
   * Writes this node's record (built from the one stored, so that an operator's cordon is kept),
   * joins `nodes` and heartbeats, in one transaction that is retried when a cordon raced it; then
   * announces the node so that pending instances are retried.
   */
  async register(build: (existing: NodeRecord | undefined) => NodeRecord): Promise<void> {
    const nodeKey = this.keys.node(this.node);
    for (;;) {
      await this.redis.watch(nodeKey);
      const record = build(parseStored<NodeRecord>(await this.redis.get(nodeKey)));
      const done = await this.redis
        .multi()
        .set(nodeKey, JSON.stringify(record))
        .sadd(this.keys.nodes, this.node)
        .set(this.keys.nodeHeartbeat(this.node), String(Date.now()))
        .exec();
      if (done) break; // null: someone (a cordon) wrote the record meanwhile; read it again
    }
    await this.redis.publish(this.keys.changesChannel, `node/${this.node}`);
  }

  async heartbeat(now = Date.now()): Promise<void> {
    await this.redis.set(this.keys.nodeHeartbeat(this.node), String(now));
  }

  /** Ids of the instances the scheduler bound to this node. */
  async assignedInstanceIds(): Promise<string[]> {
    return this.redis.smembers(this.keys.nodeInstances(this.node));
  }

  async readInstance(id: string): Promise<InstanceRecord | undefined> {
    return parseStored<InstanceRecord>(await this.redis.get(this.keys.instance(id)));
  }

  /** Writes the status and announces the deployment's change; false when the instance is no longer ours. */
  async writeStatus(status: InstanceStatus, namespace: string, deployment: string): Promise<boolean> {
    const written = await this.scripts.setStatusIfBound(
      [this.keys.instance(status.id), this.keys.instanceStatus(status.id)],
      this.node,
      status.uid,
      JSON.stringify(status),
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
    await this.redis.publish(this.keys.changesChannel, objectKey(namespace, deployment));
  }
}
