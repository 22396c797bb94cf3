import type { Redis } from 'ioredis';
import type { InstanceRecord, InstanceStatus } from './records/instance.ts';
import type { NodeAllocation, NodeRecord } from './records/node.ts';
import type { ActualInstance } from './records/instance.ts';
import { parseObjectKey, type Keys } from './keys.ts';
import { scripts, type GantryScripts } from './scripts.ts';
import type { DeploymentRecord, NamespaceRecord } from './records/deployment.ts';
import type { DeploymentStatus, SourceStatus } from './records/status.ts';

/** An instance as read from Redis, with the exact stored string for compare-and-swap updates. */
export interface StoredInstance extends ActualInstance {
  raw: string;
}

export interface StoredNode {
  record: NodeRecord;
  alloc: NodeAllocation;
  heartbeatAt: number;
}

function parse<T>(raw: string | null | undefined): T | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    // A corrupted value reads as missing: the owner of that key rewrites it on its next pass.
    return undefined;
  }
}

/**
 * Reads and writes Gantry's state in Redis. Multi-key reads are pipelined; multi-key writes that
 * must be atomic go through the Lua scripts.
 */
export class Store {
  readonly scripts: GantryScripts;
  constructor(readonly redis: Redis, readonly keys: Keys) {
    this.scripts = scripts(redis);
  }

  async deploymentKeys(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.deployments)).sort();
  }

  async readDeployment(ns: string, name: string): Promise<DeploymentRecord | undefined> {
    return parse(await this.redis.get(this.keys.deployment(ns, name)));
  }

  async readDeployments(): Promise<DeploymentRecord[]> {
    const names = await this.deploymentKeys();
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map((k) => { const { namespace, name } = parseObjectKey(k); return this.keys.deployment(namespace, name); }));
    return raws.map((r) => parse<DeploymentRecord>(r)).filter((d): d is DeploymentRecord => !!d);
  }

  async readNamespaces(): Promise<NamespaceRecord[]> {
    const all = await this.redis.hgetall(this.keys.namespaces);
    return Object.values(all).map((r) => parse<NamespaceRecord>(r)).filter((n): n is NamespaceRecord => !!n).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async readInstances(ids: string[]): Promise<StoredInstance[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.get(this.keys.instance(id)).get(this.keys.instanceStatus(id));
    const res = (await pipe.exec()) ?? [];
    const out: StoredInstance[] = [];
    ids.forEach((_, i) => {
      const raw = res[2 * i]?.[1] as string | null;
      const record = parse<InstanceRecord>(raw);
      if (!record || !raw) return;
      out.push({ record, status: parse<InstanceStatus>(res[2 * i + 1]?.[1] as string | null), raw });
    });
    return out.sort((a, b) => (a.record.id < b.record.id ? -1 : 1));
  }

  async readDeploymentInstances(ns: string, name: string): Promise<StoredInstance[]> {
    return this.readInstances(await this.redis.smembers(this.keys.deploymentInstances(ns, name)));
  }

  async readAllInstances(): Promise<StoredInstance[]> {
    return this.readInstances(await this.redis.smembers(this.keys.instances));
  }

  async readInstanceStatus(id: string): Promise<InstanceStatus | undefined> {
    return parse(await this.redis.get(this.keys.instanceStatus(id)));
  }

  async createInstance(record: InstanceRecord): Promise<boolean> {
    const k = this.keys;
    const created = await this.scripts.createInstance(
      [k.instance(record.id), k.instances, k.deploymentInstances(record.namespace, record.deployment), k.pendingInstances],
      record.id,
      JSON.stringify(record),
    );
    return created === 1;
  }

  /** Deletes the record (if unchanged since read) and releases its node resources. */
  async deleteInstance(inst: StoredInstance): Promise<boolean> {
    const k = this.keys;
    const r = inst.record;
    const node = r.node;
    const res = await this.scripts.deleteInstance(
      [k.instance(r.id), k.instances, k.deploymentInstances(r.namespace, r.deployment), k.pendingInstances, node ? k.nodeAlloc(node) : k.pendingInstances, node ? k.nodeInstances(node) : k.pendingInstances],
      inst.raw,
      r.id,
      r.cpuMilli,
      r.memoryBytes,
      node ? '1' : '0',
    );
    return res === 1;
  }

  async readNodes(): Promise<StoredNode[]> {
    const names = (await this.redis.smembers(this.keys.nodes)).sort();
    if (names.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const n of names) pipe.get(this.keys.node(n)).hgetall(this.keys.nodeAlloc(n)).get(this.keys.nodeHeartbeat(n));
    const res = (await pipe.exec()) ?? [];
    const out: StoredNode[] = [];
    names.forEach((_, i) => {
      const record = parse<NodeRecord>(res[3 * i]?.[1] as string | null);
      if (!record) return;
      const a = (res[3 * i + 1]?.[1] ?? {}) as Record<string, string>;
      out.push({
        record,
        alloc: { cpuMilli: Number(a.cpuMilli ?? 0), memoryBytes: Number(a.memoryBytes ?? 0), instances: Number(a.instances ?? 0) },
        heartbeatAt: Number(res[3 * i + 2]?.[1] ?? 0),
      });
    });
    return out;
  }

  async readDeploymentStatus(ns: string, name: string): Promise<DeploymentStatus | undefined> {
    return parse(await this.redis.get(this.keys.deploymentStatus(ns, name)));
  }

  async writeDeploymentStatus(status: DeploymentStatus): Promise<void> {
    await this.redis.set(this.keys.deploymentStatus(status.namespace, status.name), JSON.stringify(status));
  }

  async readSourceStatus(): Promise<SourceStatus | undefined> {
    const raw = await this.redis.hget(this.keys.source, 'status');
    return parse(raw);
  }

  async writeSourceStatus(status: SourceStatus): Promise<void> {
    await this.redis.hset(this.keys.source, 'status', JSON.stringify(status));
  }
}
