import type { Redis } from 'ioredis';
import { TransientError } from '../lib/errors/index.ts';
import { ensureClusterSecret } from './cluster-secret.ts';
import { announceChanges, changedDeployments } from './deployment-changes.ts';
import { EventLog } from './events.ts';
import { parseStored, parseStoredHash } from './json.ts';
import { objectKey, parseObjectKey, type Keys } from './keys.ts';
import { PreviewStore } from './preview-store.ts';
import { RecoveryStore } from './recovery-store.ts';
import { ownerOf, type DeploymentRecord, type NamespaceRecord } from './records/deployment.ts';
import type { ActualInstance, InstanceRecord, InstanceStatus } from './records/instance.ts';
import type { NodeAllocation, NodeLifecycle, NodeRecord } from './records/node.ts';
import type { PreviewRecord } from './records/preview.ts';
import type { RolloutState } from './records/rollout.ts';
import type { ServiceRecord } from './records/service.ts';
import type { DeploymentStatus, SourceStatus } from './records/status.ts';
import { scripts, type GantryScripts } from './scripts.ts';
import { PlacementStore } from './placement-store.ts';
import { ServerClock } from './server-clock.ts';
import { queueOwnedServices, ServiceStore } from './service-store.ts';
import { ConfigStore } from './config-store.ts';
import { DesiredStore } from './desired-store.ts';
import type { ConfigVersionRecord } from './records/config.ts';

/** An instance as read from Redis, with the exact stored string for compare-and-swap updates. */
export interface StoredInstance extends ActualInstance {
  raw: string;
}

export interface StoredNode {
  record: NodeRecord;
  alloc: NodeAllocation;
  heartbeatAt: number;
}


/** A rollout state as read, with the exact stored string (or '' when none) for compare-and-set. */
export interface StoredRollout {
  state?: RolloutState;
  raw: string;
}

/** An instance a Recreate deleted, until its agent reported it stopped (see deployment-reconciler.ts). */
export interface TerminatingInstance {
  id: string;
  uid: string;
  deletedAt: number;
  graceSeconds: number;
}

/** The desired records one owner (the tracked branch, or a pull request's preview) writes. */
export interface OwnedState {
  namespaces: NamespaceRecord[];
  deployments: DeploymentRecord[];
  /** Only when both sides name them: previews pass none and leave services alone. */
  services?: ServiceRecord[];
  /** ConfigMap and Secret versions the deployments refer to: stored (immutably) with them. */
  configs?: ConfigVersionRecord[];
}

/**
 * The reconciler's reads and writes of Gantry's state in Redis: the only code on its side that
 * touches Redis values (the agents have AgentStore). Multi-key reads are pipelined or MGET;
 * multi-key writes that must be atomic are one MULTI or a Lua script (state/lua/).
 */
export class Store {
  readonly scripts: GantryScripts;
  readonly events: EventLog;
  readonly services: ServiceStore;
  /** Versions of ConfigMaps and Secrets (records/config.ts). */
  readonly configs: ConfigStore;
  readonly previews: PreviewStore;
  /** After Redis lost its data: the cluster epoch, and adopting what agents still run. */
  readonly recovery: RecoveryStore;
  /** The tracked branch's desired state, written incrementally with checksums (desired-store.ts). */
  readonly desired: DesiredStore;
  /** Redis's clock: the one every cross-machine time is judged on (synced by the node checks). */
  readonly clock: ServerClock;
  /** The scheduler's batched reads and binds, and the per-node counts it spreads by. */
  readonly placement: PlacementStore;

  constructor(
    private readonly redis: Redis,
    readonly keys: Keys,
  ) {
    this.scripts = scripts(redis);
    this.events = new EventLog(redis, keys);
    this.services = new ServiceStore(redis, keys);
    this.configs = new ConfigStore(redis, keys);
    this.previews = new PreviewStore(redis, keys);
    this.recovery = new RecoveryStore(redis, keys, () => this.nodeNames());
    this.desired = new DesiredStore(redis, keys, this.scripts);
    this.clock = new ServerClock(redis);
    this.placement = new PlacementStore(redis, keys, this.scripts);
  }

  /** The credential of log requests to agents (created on first use; see cluster-secret.ts). */
  logsCredential(): Promise<string> {
    return ensureClusterSecret(this.redis, this.keys.logsSecret);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async counts(): Promise<{ deployments: number; nodes: number; instances: number }> {
    const [deployments, nodes, instances] = await Promise.all([this.redis.scard(this.keys.deployments), this.redis.scard(this.keys.nodes), this.redis.scard(this.keys.instances)]);
    return { deployments, nodes, instances };
  }

  // --- desired state (written from Git) ---

  async deploymentKeys(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.deployments)).sort();
  }

  async readDeployment(ns: string, name: string): Promise<DeploymentRecord | undefined> {
    return parseStored(await this.redis.get(this.keys.deployment(ns, name)));
  }

  async readDeployments(): Promise<DeploymentRecord[]> {
    const names = await this.deploymentKeys();
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map((k) => { const { namespace, name } = parseObjectKey(k); return this.keys.deployment(namespace, name); }));
    return raws.map((r) => parseStored<DeploymentRecord>(r)).filter((d): d is DeploymentRecord => !!d);
  }

  async readNamespaces(): Promise<NamespaceRecord[]> {
    const all = await this.redis.hgetall(this.keys.namespaces);
    return Object.values(all).map((r) => parseStored<NamespaceRecord>(r)).filter((n): n is NamespaceRecord => !!n).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /**
   * Makes `owner`'s desired records exactly `next` in one MULTI: its namespaces, deployments (and
   * services, when both sides name them) are written, the ones it no longer has deleted. Records of
   * other owners are never touched, which is what lets previews live beside the tracked branch's
   * state. In the same MULTI: the source status of a sync, or a preview's record being set or removed.
   */
  async writeOwnedState(owner: string, before: OwnedState, next: OwnedState, also: { sourceStatus?: SourceStatus; preview?: PreviewRecord; removePreview?: number } = {}): Promise<void> {
    const k = this.keys;
    const tx = this.redis.multi();
    if (before.services && next.services) queueOwnedServices(tx, k, owner, before.services, next.services);
    const keep = new Set(next.deployments.map((d) => objectKey(d.namespace, d.name)));
    const keepNs = new Set(next.namespaces.map((n) => n.name));
    for (const ns of before.namespaces) if (ownerOf(ns) === owner && !keepNs.has(ns.name)) tx.hdel(k.namespaces, ns.name);
    for (const d of before.deployments) {
      const key = objectKey(d.namespace, d.name);
      if (ownerOf(d) === owner && !keep.has(key)) tx.del(k.deployment(d.namespace, d.name)).srem(k.deployments, key);
    }
    for (const ns of next.namespaces) tx.hset(k.namespaces, ns.name, JSON.stringify(ns));
    // In the same transaction as the deployments: no instance can be made from a template whose
    // config versions are not stored yet. Versions are immutable (HSETNX); stale ones are pruned apart.
    for (const c of next.configs ?? []) tx.hsetnx(k.config(c.namespace, c.kind, c.name), c.version, JSON.stringify(c)).sadd(k.configs, `${c.namespace}/${c.kind}/${c.name}`);
    // The branch's own commit (not a preview's): which version of each object it applied.
    if (also.sourceStatus) {
      tx.del(k.configsApplied);
      for (const c of next.configs ?? []) tx.hset(k.configsApplied, `${c.namespace}/${c.kind}/${c.name}`, c.version);
    }
    for (const d of next.deployments) tx.set(k.deployment(d.namespace, d.name), JSON.stringify(d)).sadd(k.deployments, objectKey(d.namespace, d.name));
    if (also.sourceStatus) tx.hset(k.source, 'status', JSON.stringify(also.sourceStatus));
    if (also.preview) tx.set(k.preview(also.preview.number), JSON.stringify(also.preview)).sadd(k.previews, String(also.preview.number));
    if (also.removePreview !== undefined) tx.del(k.preview(also.removePreview)).srem(k.previews, String(also.removePreview));
    await tx.exec();
  }

  async readSourceStatus(): Promise<SourceStatus | undefined> {
    return parseStored(await this.redis.hget(this.keys.source, 'status'));
  }

  async writeSourceStatus(status: SourceStatus): Promise<void> {
    await this.redis.hset(this.keys.source, 'status', JSON.stringify(status));
  }

  // --- instances ---

  async readInstances(ids: string[]): Promise<StoredInstance[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.get(this.keys.instance(id)).get(this.keys.instanceStatus(id));
    const res = (await pipe.exec()) ?? [];
    const out: StoredInstance[] = [];
    ids.forEach((_, i) => {
      const raw = res[2 * i]?.[1] as string | null;
      const record = parseStored<InstanceRecord>(raw);
      if (!record || !raw) return;
      out.push({ record, status: parseStored<InstanceStatus>(res[2 * i + 1]?.[1]), raw });
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
    return parseStored(await this.redis.get(this.keys.instanceStatus(id)));
  }

  async readInstanceStatuses(ids: string[]): Promise<(InstanceStatus | undefined)[]> {
    if (ids.length === 0) return [];
    return (await this.redis.mget(ids.map((id) => this.keys.instanceStatus(id)))).map((r) => parseStored<InstanceStatus>(r));
  }

  async pendingInstanceIds(): Promise<string[]> {
    return this.redis.smembers(this.keys.pendingInstances);
  }

  async nodeInstanceIds(node: string): Promise<string[]> {
    return this.redis.smembers(this.keys.nodeInstances(node));
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

  /** Many creates in one pipeline (a scale-up); true for each record that was created. */
  async createInstances(records: InstanceRecord[]): Promise<boolean[]> {
    if (records.length === 0) return [];
    const k = this.keys;
    const pipe = this.redis.pipeline() as unknown as { createInstance(...args: string[]): void; exec(): Promise<[Error | null, unknown][] | null> };
    for (const r of records) pipe.createInstance(k.instance(r.id), k.instances, k.deploymentInstances(r.namespace, r.deployment), k.pendingInstances, r.id, JSON.stringify(r));
    const res = (await pipe.exec()) ?? [];
    return records.map((_, i) => {
      const [err, created] = res[i] ?? [new Error('no reply')];
      if (err) throw err;
      return created === 1;
    });
  }

  /** Replaces an instance record if it is still exactly what was read. */
  async replaceInstance(inst: StoredInstance, next: InstanceRecord): Promise<boolean> {
    return (await this.scripts.compareAndSet(this.keys.instance(inst.record.id), inst.raw, JSON.stringify(next))) === 1;
  }

  /**
   * Binds a pending instance (unchanged since read) to a node, re-checking the node's room inside
   * Redis. 1 bound, 0 the record changed, -1 node gone, -2 cordoned, -3 no cpu, -4 no memory,
   * -5 the node has its maxInstances already.
   */
  async bindInstance(inst: StoredInstance, node: string, next: InstanceRecord): Promise<number> {
    const [res] = await this.placement.bindInstances([{ inst, node, next }]);
    return res!.code;
  }

  /** Deletes the record (if unchanged since read) and releases its node resources and per-node count. */
  async deleteInstance(inst: StoredInstance): Promise<boolean> {
    const k = this.keys;
    const r = inst.record;
    const node = r.node;
    const res = await this.scripts.deleteInstance(
      [k.instance(r.id), k.instances, k.deploymentInstances(r.namespace, r.deployment), k.pendingInstances, node ? k.nodeAlloc(node) : k.pendingInstances, node ? k.nodeInstances(node) : k.pendingInstances, k.deploymentNodes(r.namespace, r.deployment)],
      inst.raw,
      r.id,
      r.cpuMilli,
      r.memoryBytes,
      node ? '1' : '0',
      node ?? '',
    );
    return res === 1;
  }

  /**
   * Sets the grace period the instance's agent stops it with once its record is gone (an operator's
   * `gantry delete instance --grace-period`); kept 10 minutes, well past any stop.
   */
  async setStopGrace(id: string, seconds: number): Promise<void> {
    await this.redis.set(this.keys.stopGrace(id), String(seconds), 'EX', 600);
  }

  // --- nodes ---

  async nodeNames(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.nodes)).sort();
  }

  async readNodes(): Promise<StoredNode[]> {
    const names = await this.nodeNames();
    if (names.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const n of names) pipe.get(this.keys.node(n)).hgetall(this.keys.nodeAlloc(n)).get(this.keys.nodeHeartbeat(n));
    const res = (await pipe.exec()) ?? [];
    const out: StoredNode[] = [];
    names.forEach((_, i) => {
      const record = parseStored<NodeRecord>(res[3 * i]?.[1]);
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

  /**
   * Changes a node's record with `change`, compare-and-set against its agent (which rewrites the
   * record on registration): retried on a race. undefined when the node is unknown.
   */
  async updateNodeRecord(name: string, change: (r: NodeRecord) => NodeRecord): Promise<{ record: NodeRecord; changed: boolean } | undefined> {
    const key = this.keys.node(name);
    for (let attempt = 0; attempt < 10; attempt++) {
      const raw = await this.redis.get(key);
      const record = parseStored<NodeRecord>(raw);
      if (!record || !raw) return undefined;
      const next = change(record);
      const json = JSON.stringify(next);
      if (json === raw) return { record, changed: false };
      if ((await this.scripts.compareAndSet(key, raw, json)) === 1) {
        // After the write: the schedulers' node caches re-read the records (a cordon).
        await this.placement.bumpNodesVersion();
        return { record: next, changed: true };
      }
    }
    throw new TransientError('CONFLICT', `node ${name} kept changing; try again`);
  }

  /** name -> lifecycle, as the node lifecycle controller last wrote it. */
  async readNodeLifecycles(): Promise<Record<string, NodeLifecycle>> {
    return parseStoredHash<NodeLifecycle>(await this.redis.hgetall(this.keys.nodeLifecycle));
  }

  async writeNodeLifecycle(name: string, lifecycle: NodeLifecycle): Promise<void> {
    await this.redis.hset(this.keys.nodeLifecycle, name, JSON.stringify(lifecycle));
  }

  async drainingNodes(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.drainingNodes)).sort();
  }

  /** True when the node was not draining yet. */
  async startDraining(node: string): Promise<boolean> {
    return (await this.redis.sadd(this.keys.drainingNodes, node)) === 1;
  }

  async stopDraining(node: string): Promise<void> {
    await this.redis.srem(this.keys.drainingNodes, node);
  }

  // --- per-deployment state of the controllers ---

  async readDeploymentStatus(ns: string, name: string): Promise<DeploymentStatus | undefined> {
    return parseStored(await this.redis.get(this.keys.deploymentStatus(ns, name)));
  }

  /** Statuses of many deployments in one MGET, in the order asked. */
  async readDeploymentStatuses(ds: { namespace: string; name: string }[]): Promise<(DeploymentStatus | undefined)[]> {
    if (ds.length === 0) return [];
    return (await this.redis.mget(ds.map((d) => this.keys.deploymentStatus(d.namespace, d.name)))).map((r) => parseStored<DeploymentStatus>(r));
  }

  async writeDeploymentStatus(status: DeploymentStatus): Promise<void> {
    await this.redis.set(this.keys.deploymentStatus(status.namespace, status.name), JSON.stringify(status));
  }

  async readRollout(ns: string, name: string): Promise<StoredRollout> {
    const raw = (await this.redis.get(this.keys.rollout(ns, name))) ?? '';
    return { state: parseStored<RolloutState>(raw), raw };
  }

  /** Rollout states of many deployments in one MGET, in the order asked. */
  async readRollouts(ds: { namespace: string; name: string }[]): Promise<(RolloutState | undefined)[]> {
    if (ds.length === 0) return [];
    return (await this.redis.mget(ds.map((d) => this.keys.rollout(d.namespace, d.name)))).map((r) => parseStored<RolloutState>(r));
  }

  /** Writes `next` only if the stored state is still `read` (a rollout command and a reconcile race). */
  async replaceRollout(ns: string, name: string, read: StoredRollout, next: RolloutState): Promise<boolean> {
    return (await this.scripts.compareAndSet(this.keys.rollout(ns, name), read.raw, JSON.stringify(next))) === 1;
  }

  async markTerminating(ns: string, name: string, t: TerminatingInstance[]): Promise<void> {
    if (t.length === 0) return;
    await this.redis.hset(this.keys.terminating(ns, name), ...t.flatMap((x) => [x.id, `${x.uid} ${x.deletedAt} ${x.graceSeconds}`]));
  }

  async readTerminating(ns: string, name: string): Promise<TerminatingInstance[]> {
    return Object.entries(await this.redis.hgetall(this.keys.terminating(ns, name))).map(([id, value]) => {
      const [uid = '', deletedAt, grace] = value.split(' ');
      return { id, uid, deletedAt: Number(deletedAt), graceSeconds: Number(grace) };
    });
  }

  async forgetTerminating(ns: string, name: string, ids: string[]): Promise<void> {
    if (ids.length > 0) await this.redis.hdel(this.keys.terminating(ns, name), ...ids);
  }

  /** A pruned deployment whose instances are all gone: its status, rollout and marks go too. */
  async deleteDeploymentState(ns: string, name: string): Promise<void> {
    await this.redis.del(this.keys.deploymentStatus(ns, name), this.keys.rollout(ns, name), this.keys.terminating(ns, name));
  }

  // --- triggers ---

  /** A reconcile of `key` was asked for (see reconcile-queue.ts); the mark expires after an hour. */
  async markReconcileDirty(key: string): Promise<void> {
    await this.redis.set(this.keys.reconcileDirty(key), '1', 'EX', 3600);
  }

  /** A reconcile of `key` begins: triggers from now on are for a state it may not see. */
  async clearReconcileDirty(key: string): Promise<void> {
    await this.redis.multi().del(this.keys.reconcileDirty(key)).srem(this.keys.changedDeployments, key).exec();
  }

  /** Deployments announced (deployment-changes.ts) whose reconcile has not begun since. */
  async changedDeployments(): Promise<string[]> {
    return changedDeployments(this.redis, this.keys);
  }

  async isReconcileDirty(key: string): Promise<boolean> {
    return (await this.redis.exists(this.keys.reconcileDirty(key))) === 1;
  }

  /** "The actual state of this deployment moved": the reconciler and endpoints look again. */
  async announceDeploymentChange(ns: string, name: string): Promise<void> {
    await announceChanges(this.redis, this.keys, [objectKey(ns, name)]);
  }

  /** "This node joined or has room again": pending instances are retried. */
  async announceNodeChange(node: string): Promise<void> {
    await this.redis.publish(this.keys.changesChannel, `node/${node}`);
  }
}
