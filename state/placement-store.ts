import type { Redis } from 'ioredis';
import { announceChanges } from './deployment-changes.ts';
import { parseStored } from './json.ts';
import { isValidName, objectKey, type Keys } from './keys.ts';
import { instanceGroup, type InstanceRecord } from './records/instance.ts';
import { DEFAULT_MAX_INSTANCES, type NodeAllocation, type NodeRecord } from './records/node.ts';
import type { GantryScripts } from './scripts.ts';

/**
 * The scheduler's reads and writes: pending records, the node-set version its node cache is keyed
 * by, heartbeats and allocations in bulk, each deployment's per-node counts (its spread, kept by the
 * bind, adopt and delete Lua scripts), and batches of bindings (bind-instances Lua). One round trip
 * each, whatever the batch size, so a placement costs no read of every node or every sibling.
 */

/** A record as read, with the exact stored string the bind script compares against. */
export interface ReadInstance {
  record: InstanceRecord;
  raw: string;
}

export interface Binding {
  inst: ReadInstance;
  node: string;
  /** The record bound (node set). */
  next: InstanceRecord;
}

/** The bind script's verdict on one binding, and the node's allocation after it (zeros: node gone). */
export interface BindResult {
  /** 1 bound, 0 the record changed, -1 node gone, -2 cordoned, -3 no cpu, -4 no memory, -5 maxInstances. */
  code: number;
  alloc: NodeAllocation;
}

export class PlacementStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly scripts: GantryScripts,
  ) {}

  /**
   * The node-set version and the records of `ids` (absent: gone), in one round trip. The version is
   * read first, so a node cache filled after this read is never newer than the version it keeps.
   */
  async readPending(ids: string[]): Promise<{ nodesVersion: string; instances: Map<string, ReadInstance> }> {
    const pipe = this.redis.pipeline().get(this.keys.nodesVersion);
    if (ids.length > 0) pipe.mget(ids.map((id) => this.keys.instance(id)));
    const res = (await pipe.exec()) ?? [];
    const failed = res.find(([err]) => err);
    if (failed) throw failed[0];
    const raws = (res[1]?.[1] ?? []) as (string | null)[];
    const instances = new Map<string, ReadInstance>();
    ids.forEach((id, i) => {
      const raw = raws[i];
      const record = parseStored<InstanceRecord>(raw);
      if (record && raw) instances.set(id, { record, raw });
    });
    return { nodesVersion: (res[0]?.[1] as string | null) ?? '0', instances };
  }

  /** "A node record or the node set changed": after the write, so a reader of the new version reads the new record. */
  async bumpNodesVersion(): Promise<void> {
    await this.redis.incr(this.keys.nodesVersion);
  }

  /**
   * Every node as the scheduler's cache holds it: records, heartbeats and allocations of the
   * `nodes` set, sorted by name; records that do not parse are left out, as readNodes does. Two
   * round trips and four commands whatever the number of nodes (readNodes costs three a node).
   */
  async readNodeTable(): Promise<{ record: NodeRecord; alloc: NodeAllocation; heartbeatAt: number }[]> {
    const names = (await this.redis.smembers(this.keys.nodes)).sort();
    if (names.length === 0) return [];
    const [records, dynamics] = await Promise.all([this.redis.mget(names.map((n) => this.keys.node(n))), this.readNodeDynamics(names)]);
    return names.flatMap((_, i) => {
      const record = parseStored<NodeRecord>(records[i]);
      return record ? [{ record, alloc: dynamics.alloc[i]!, heartbeatAt: dynamics.heartbeatAt[i]! }] : [];
    });
  }

  /** Heartbeats and allocations of `names`, in their order: one MGET and one read-node-allocs call. */
  async readNodeDynamics(names: string[]): Promise<{ heartbeatAt: number[]; alloc: NodeAllocation[] }> {
    if (names.length === 0) return { heartbeatAt: [], alloc: [] };
    const [beats, allocs] = await Promise.all([this.redis.mget(names.map((n) => this.keys.nodeHeartbeat(n))), this.scripts.readNodeAllocs(names.map((n) => this.keys.nodeAlloc(n)))]);
    return {
      heartbeatAt: names.map((_, i) => Number(beats[i] ?? 0)),
      alloc: names.map((_, i) => ({ cpuMilli: allocs[3 * i]!, memoryBytes: allocs[3 * i + 1]!, instances: allocs[3 * i + 2]! })),
    };
  }

  /** For each deployment, node -> how many of its instances are bound there (one HGETALL each, pipelined). */
  async deploymentNodeCounts(deployments: { namespace: string; name: string }[]): Promise<Map<string, number>[]> {
    if (deployments.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const d of deployments) pipe.hgetall(this.keys.deploymentNodes(d.namespace, d.name));
    const res = (await pipe.exec()) ?? [];
    return deployments.map((_, i) => {
      const [err, all] = res[i] ?? [new Error('no reply')];
      if (err) throw err;
      return new Map(Object.entries((all ?? {}) as Record<string, string>).map(([node, n]) => [node, Number(n)]));
    });
  }

  /**
   * Binds a batch in one bind-instances call, each binding checked against its node's room inside
   * Redis as the bindings before it left it. One result per binding, in order.
   */
  async bindInstances(bindings: Binding[]): Promise<BindResult[]> {
    if (bindings.length === 0) return [];
    const k = this.keys;
    const keys: string[] = [k.pendingInstances];
    const args: (string | number)[] = [DEFAULT_MAX_INSTANCES];
    for (const { inst, node, next } of bindings) {
      const r = inst.record;
      keys.push(k.instance(r.id), k.node(node), k.nodeAlloc(node), k.nodeInstances(node), k.deploymentNodes(r.namespace, r.deployment));
      args.push(inst.raw, JSON.stringify(next), r.id, r.cpuMilli, r.memoryBytes, node);
    }
    const out = await this.scripts.bindInstances(keys, args);
    return bindings.map((_, i) => ({ code: out[4 * i]!, alloc: { cpuMilli: out[4 * i + 1]!, memoryBytes: out[4 * i + 2]!, instances: out[4 * i + 3]! } }));
  }

  /** "The actual state of these deployments moved" (as Store.announceDeploymentChange), in one pipeline. */
  async announceDeploymentChanges(deployments: { namespace: string; name: string }[]): Promise<void> {
    await announceChanges(this.redis, this.keys, [...new Set(deployments.map((d) => objectKey(d.namespace, d.name)))]);
  }

  /**
   * Builds every deployment's per-node counts from the records, once per data set: data written
   * before the scripts kept them has none (an upgrade). Each deployment is rebuilt atomically
   * (rebuild-deployment-nodes Lua), so binds and deletes racing it are counted exactly once; several
   * reconcilers doing it at once agree. Returns how many deployments were rebuilt (0: already built).
   */
  async ensureDeploymentNodes(): Promise<number> {
    const k = this.keys;
    if ((await this.redis.exists(k.deploymentNodesBuilt)) === 1) return 0;
    // Deployments are found from the instance ids (`<ns>.<name>-<hash>-<ordinal>`), which also
    // names pruned deployments whose instances are still there.
    const groups = [...new Set((await this.redis.smembers(k.instances)).map(instanceGroup))];
    let rebuilt = 0;
    const rebuild = async (group: string) => {
      const dot = group.indexOf('.');
      const [ns, name] = [group.slice(0, dot), group.slice(dot + 1)];
      if (dot <= 0 || !isValidName(ns) || !isValidName(name)) return;
      for (let attempt = 0; ; attempt++) {
        const ids = await this.redis.smembers(k.deploymentInstances(ns, name));
        const keys = [k.deploymentInstances(ns, name), k.deploymentNodes(ns, name), ...ids.map((id) => k.instance(id))];
        if ((await this.scripts.rebuildDeploymentNodes(keys, ids)) === 1) break;
        if (attempt >= 9) throw new Error(`deployment ${ns}/${name} kept changing while its per-node counts were built; try again`);
      }
      rebuilt++;
    };
    // A few deployments at a time: thousands of them cost seconds one by one.
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(16, groups.length) }, async () => {
      while (next < groups.length) await rebuild(groups[next++]!);
    }));
    await this.redis.set(k.deploymentNodesBuilt, '1');
    return rebuilt;
  }
}
