import type { Redis } from 'ioredis';
import { scripts, type GantryScripts } from './scripts.ts';
import type { InstanceRecord, InstanceStatus } from './records/instance.ts';
import { objectKey, type Keys } from './keys.ts';

/**
 * The agent's reads and writes of instance state. Statuses are written and deleted only while
 * they are this node's business, checked inside Redis so that a move to another node between our
 * read and our write can never clobber the new node's status.
 */

export class StatusStore {
  private readonly scripts: GantryScripts;
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly node: string,
  ) {
    this.scripts = scripts(redis);
  }

  async readInstance(id: string): Promise<InstanceRecord | undefined> {
    const raw = await this.redis.get(this.keys.instance(id));
    return raw ? (JSON.parse(raw) as InstanceRecord) : undefined;
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

  async publishChange(namespace: string, deployment: string): Promise<void> {
    await this.redis.publish(this.keys.changesChannel, objectKey(namespace, deployment));
  }
}
