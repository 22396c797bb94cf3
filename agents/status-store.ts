import type { Redis } from 'ioredis';
import type { InstanceRecord, InstanceStatus } from '../reconciler/model.ts';
import { objectKey, type Keys } from '../reconciler/redis/keys.ts';

/**
 * The agent's reads and writes of instance state. Statuses are written and deleted only while
 * they are this node's business, checked inside Redis so that a move to another node between our
 * read and our write can never clobber the new node's status.
 */

/** KEYS: instance, instance-status. ARGV: node, uid, status JSON, channel, message. */
const SET_STATUS_IF_BOUND_HERE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or rec.node ~= ARGV[1] or rec.uid ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`;

/** KEYS: instance-status. ARGV: node. */
const DELETE_STATUS_IF_MINE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, st = pcall(cjson.decode, raw)
if ok and type(st) == 'table' and st.node == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

export class StatusStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly node: string,
  ) {}

  async readInstance(id: string): Promise<InstanceRecord | undefined> {
    const raw = await this.redis.get(this.keys.instance(id));
    return raw ? (JSON.parse(raw) as InstanceRecord) : undefined;
  }

  /** Writes the status and announces the deployment's change; false when the instance is no longer ours. */
  async writeStatus(status: InstanceStatus, namespace: string, deployment: string): Promise<boolean> {
    const written = await this.redis.eval(
      SET_STATUS_IF_BOUND_HERE,
      2,
      this.keys.instance(status.id),
      this.keys.instanceStatus(status.id),
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
    return (await this.redis.eval(DELETE_STATUS_IF_MINE, 1, this.keys.instanceStatus(id), this.node)) === 1;
  }

  async statusExists(id: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.instanceStatus(id))) === 1;
  }

  async publishChange(namespace: string, deployment: string): Promise<void> {
    await this.redis.publish(this.keys.changesChannel, objectKey(namespace, deployment));
  }
}
