import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { parseStored } from './json.ts';
import type { Keys } from './keys.ts';
import type { InstanceRecord } from './records/instance.ts';

/** An instance an agent still runs after Redis lost its data, as that node claims it (node-claims:<node>). */
export interface InstanceClaim {
  node: string;
  record: InstanceRecord;
}

/**
 * What survives Redis losing its data (FLUSHALL, a restart without persistence, a failover to a
 * lagging replica): the cluster epoch that tells it happened, and the instances agents still run
 * (`node-claims:<node>`), adopted as bound records instead of being started again.
 */
export class RecoveryStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly nodeNames: () => Promise<string[]>,
  ) {}

  /**
   * The cluster epoch: created (one `SET NX GET`, so racing creators agree) unless there is one.
   * It is gone or different only when Redis lost its data (FLUSHALL, a restart without
   * persistence, a failover to a replica that lags).
   */
  async ensureClusterEpoch(): Promise<{ epoch: string; created: boolean }> {
    const fresh = randomBytes(16).toString('hex');
    const existing = (await this.redis.call('SET', this.keys.clusterEpoch, fresh, 'NX', 'GET')) as string | null;
    return existing ? { epoch: existing, created: false } : { epoch: fresh, created: true };
  }

  async readClusterEpoch(): Promise<string | undefined> {
    return (await this.redis.get(this.keys.clusterEpoch)) ?? undefined;
  }

  /**
   * What registered nodes claim to run among `ids` (node-claims:<node>, published by agents after
   * Redis lost its data), to be adopted instead of started again. Two commands when no node
   * claims anything (the usual case); a tie goes to the first node by name.
   */
  async readClaims(ids: string[]): Promise<Map<string, InstanceClaim>> {
    const out = new Map<string, InstanceClaim>();
    if (ids.length === 0) return out;
    const nodes = await this.nodeNames();
    if (nodes.length === 0) return out;
    // One EXISTS over every node's claims first: in the usual case (no claims) that is all, not one
    // command per node for every reconcile that creates instances.
    if ((await this.redis.exists(...nodes.map((n) => this.keys.nodeClaims(n)))) === 0) return out;
    const probe = this.redis.pipeline();
    for (const n of nodes) probe.exists(this.keys.nodeClaims(n));
    const present = ((await probe.exec()) ?? []).map(([, n]) => n === 1);
    const claiming = nodes.filter((_, i) => present[i]);
    if (claiming.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const n of claiming) pipe.hmget(this.keys.nodeClaims(n), ...ids);
    const res = (await pipe.exec()) ?? [];
    claiming.forEach((node, i) => {
      const values = (res[i]?.[1] ?? []) as (string | null)[];
      values.forEach((raw, j) => {
        const id = ids[j]!;
        const record = parseStored<InstanceRecord>(raw);
        if (record?.id === id && typeof record.uid === 'string' && !out.has(id)) out.set(id, { node, record });
      });
    });
    return out;
  }

  /** Whether any registered node claims anything (agents noticed that Redis lost its data). */
  async anyClaims(): Promise<boolean> {
    const nodes = await this.nodeNames();
    if (nodes.length === 0) return false;
    return (await this.redis.exists(...nodes.map((n) => this.keys.nodeClaims(n)))) > 0;
  }

  /**
   * Adopts instances that agents still run (adopt-instance Lua), in one pipeline: each record
   * (with `node` and the claimed uid) is created already bound, indexed and booked on its node (and
   * in its deployment's per-node count), and the node's claim dropped. True for each record created.
   */
  async adoptInstances(records: InstanceRecord[]): Promise<boolean[]> {
    if (records.length === 0) return [];
    const k = this.keys;
    const pipe = this.redis.pipeline() as unknown as { adoptInstance(...args: (string | number)[]): void; exec(): Promise<[Error | null, unknown][] | null> };
    for (const r of records) {
      if (!r.node) throw new TypeError(`adopting ${r.id}: the record names no node`);
      pipe.adoptInstance(k.instance(r.id), k.instances, k.deploymentInstances(r.namespace, r.deployment), k.nodeInstances(r.node), k.nodeAlloc(r.node), k.nodeClaims(r.node), k.deploymentNodes(r.namespace, r.deployment), r.id, JSON.stringify(r), r.cpuMilli, r.memoryBytes, r.node);
    }
    const res = (await pipe.exec()) ?? [];
    return records.map((_, i) => {
      const [err, adopted] = res[i] ?? [new Error('no reply')];
      if (err) throw err;
      return adopted === 1;
    });
  }
}
