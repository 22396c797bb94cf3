import { objectKey } from '../../state/keys.ts';
import type { Binding, ReadInstance } from '../../state/placement-store.ts';
import type { InstanceRecord } from '../../state/records/instance.ts';
import type { Store } from '../../state/store.ts';
import type { NewEvent } from '../../state/events.ts';
import type { Queues } from '../queue/queues.ts';
import { requestedHostPorts, type HostPortUse } from './host-ports.ts';
import type { NodeCache } from './node-cache.ts';
import type { NodeTable, PickOptions } from './node-table.ts';

/**
 * One batch of placements: read the pending records (and the node-set version) in one round trip,
 * take the cached node table, each deployment's per-node counts (one HGETALL per deployment), then
 * pick a node for every instance in turn, each pick booking its node and its deployment's count in
 * the table so that the next pick sees it (spread within the batch), and bind them all in one
 * bind-instances call. The script re-checks every binding against its node's real room; a refused
 * one answers with the node's real allocation, which the table takes, and is picked again in the
 * next round (at most ROUNDS), so two schedulers racing with stale tables never over-commit a node
 * and a lost race just moves on.
 *
 * hostPorts are not in the script: batches run one at a time in a process (Scheduler), each reading
 * the host ports bound to every node fresh when it has an instance asking for some, and booking the
 * ones it binds; an agent that still finds its port taken (another scheduler) reports HostPortInUse.
 */

export type ScheduleOutcome = 'bound' | 'pending' | 'gone';

export interface BatchDeps {
  store: Store;
  queues: Queues;
  cache: NodeCache;
  /** A node whose last heartbeat is older than this is not ready. */
  nodeReadyMs: number;
}

/** Binding rounds per batch, as the attempts per placement before it. */
const ROUNDS = 5;

const groupOf = (r: InstanceRecord) => objectKey(r.namespace, r.deployment);

/** What a batch decided, and what is left to tell (reasons, node jobs, events), run by the caller. */
export interface PlacedBatch {
  outcomes: Map<string, ScheduleOutcome>;
  announce(): Promise<void>;
}

export async function placeBatch(deps: BatchDeps, ids: readonly string[]): Promise<PlacedBatch> {
  const { store } = deps;
  const outcomes = new Map<string, ScheduleOutcome>();
  const first = await store.placement.readPending([...ids]);
  let todo = settle(ids, first.instances, outcomes);
  if (todo.length === 0) return { outcomes, announce: async () => undefined };

  const table = await deps.cache.get(first.nodesVersion);
  // Heartbeats are on Redis's clock.
  const ready = table.readiness(store.clock.now(), deps.nodeReadyMs);
  const spreads = await spreadsOf(store, table, todo);
  const usedHostPorts = todo.some((i) => requestedHostPorts(i.record.containers).length > 0) ? await hostPortsInUse(store, table) : undefined;
  const ports = new Map(todo.map((i) => [i.record.id, requestedHostPorts(i.record.containers)]));
  const optionsOf = (rec: InstanceRecord): PickOptions => ({ ready, spread: spreads.get(groupOf(rec))!, hostPorts: ports.get(rec.id) ?? requestedHostPorts(rec.containers), ...(usedHostPorts ? { usedHostPorts } : {}) });

  const bound: InstanceRecord[] = [];
  const unschedulable: { inst: ReadInstance; reason: string }[] = [];
  // Instances of one shape share their reason while the table does not move (a full cluster).
  const reasons = new Map<string, string>();
  for (let round = 0; round < ROUNDS && todo.length > 0; round++) {
    const bindings: Binding[] = [];
    const at: number[] = [];
    /** The host ports each binding booked in usedHostPorts, to take back exactly those if refused. */
    const booked: (readonly HostPortUse[])[] = [];
    const unfit: { inst: ReadInstance; reason: string }[] = [];
    for (const inst of todo) {
      const rec = inst.record;
      const o = optionsOf(rec);
      const i = table.pick(rec, o);
      if (i < 0) {
        const memo = o.hostPorts!.length === 0 ? `${table.kindOf(rec)}|${rec.cpuMilli}|${rec.memoryBytes}` : undefined;
        const reason = (memo && reasons.get(memo)) || table.explain(rec, o);
        if (memo) reasons.set(memo, reason);
        unfit.push({ inst, reason });
        continue;
      }
      table.reserve(i, rec, 1);
      o.spread[i]! += 1;
      usedHostPorts?.[i]!.push(...o.hostPorts!);
      reasons.clear();
      const next: InstanceRecord = { ...rec, node: table.names[i]!, boundAt: Date.now() };
      delete next.pendingReason;
      bindings.push({ inst, node: table.names[i]!, next });
      at.push(i);
      booked.push(o.hostPorts!);
    }
    if (bindings.length === 0) {
      unschedulable.push(...unfit);
      todo = [];
      break;
    }
    const results = await store.placement.bindInstances(bindings);
    reasons.clear();
    const changed: string[] = [];
    const refused: ReadInstance[] = [];
    results.forEach((r, k) => {
      const i = at[k]!;
      const { inst, next } = bindings[k]!;
      if (r.code === -1) {
        table.drop(i);
        deps.cache.invalidate();
      } else {
        // The script's own bookkeeping, our booking included or not: the truth for this node.
        table.setAlloc(i, r.alloc);
      }
      if (r.code === 1) {
        bound.push(next);
        outcomes.set(next.id, 'bound');
        return;
      }
      spreads.get(groupOf(next))![i]! -= 1;
      if (usedHostPorts && booked[k]!.length > 0) {
        const mine = new Set(booked[k]);
        usedHostPorts[i] = usedHostPorts[i]!.filter((u) => !mine.has(u));
      }
      if (r.code === -2) {
        table.cordon(i);
        deps.cache.invalidate();
      }
      if (r.code === 0) changed.push(inst.record.id);
      else refused.push(inst);
    });
    // A record that changed under us (another scheduler bound it, or wrote its pending reason): read again.
    const again = changed.length > 0 ? settle(changed, (await store.placement.readPending(changed)).instances, outcomes) : [];
    // A refused binding gave its booking back: what found no room may find it now, next round.
    if (results.some((r) => r.code !== 1) && round < ROUNDS - 1) todo = [...refused, ...again, ...unfit.map((u) => u.inst)];
    else {
      unschedulable.push(...unfit);
      todo = [...refused, ...again];
    }
  }
  for (const inst of todo) outcomes.set(inst.record.id, 'pending');
  for (const { inst } of unschedulable) outcomes.set(inst.record.id, 'pending');
  return { outcomes, announce: () => announce(deps, bound, unschedulable) };
}

/** Outcomes of the ids that need nothing (gone, already bound); the pending ones, in order. */
function settle(ids: readonly string[], read: Map<string, ReadInstance>, outcomes: Map<string, ScheduleOutcome>): ReadInstance[] {
  const pending: ReadInstance[] = [];
  for (const id of ids) {
    const inst = read.get(id);
    if (!inst) outcomes.set(id, 'gone');
    else if (inst.record.node) outcomes.set(id, 'bound');
    else pending.push(inst);
  }
  return pending;
}

/** Deployment -> its per-node counts by node index, from the counts the scripts keep. */
async function spreadsOf(store: Store, table: NodeTable, todo: ReadInstance[]): Promise<Map<string, Int32Array>> {
  const groups = [...new Map(todo.map((i) => [groupOf(i.record), { namespace: i.record.namespace, name: i.record.deployment }])).entries()];
  const counts = await store.placement.deploymentNodeCounts(groups.map(([, d]) => d));
  return new Map(groups.map(([key], k) => [key, table.spreadOf(counts[k]!)]));
}

/**
 * By node index: the hostPorts of the instances bound there now (read fresh, not cached: the last
 * batch's bindings must count). Only read for a batch with an instance that asks for hostPorts.
 */
async function hostPortsInUse(store: Store, table: NodeTable): Promise<HostPortUse[][]> {
  const ids = (await Promise.all(table.names.map((n) => store.nodeInstanceIds(n)))).flat();
  const out: HostPortUse[][] = table.names.map(() => []);
  for (const { record } of await store.readInstances(ids)) {
    const i = record.node === undefined ? undefined : table.index.get(record.node);
    if (i !== undefined) out[i]!.push(...requestedHostPorts(record.containers));
  }
  return out;
}

/** Reasons of the unschedulable, node jobs of the bound, their events, and one change message per deployment. */
async function announce(deps: BatchDeps, bound: InstanceRecord[], unschedulable: { inst: ReadInstance; reason: string }[]): Promise<void> {
  const { store, queues } = deps;
  const events: NewEvent[] = [];
  const changed = new Map<string, InstanceRecord>();
  const marked = await Promise.all(
    unschedulable.map(async ({ inst, reason }) => {
      if (inst.record.pendingReason === reason) return false;
      return store.replaceInstance(inst, { ...inst.record, pendingReason: reason });
    }),
  );
  unschedulable.forEach(({ inst, reason }, k) => {
    if (!marked[k]) return;
    events.push({ type: 'Warning', reason: 'FailedScheduling', object: `instance/${inst.record.id}`, message: reason });
    changed.set(groupOf(inst.record), inst.record);
  });
  await Promise.all(bound.map((r) => queues.enqueueNode(r.node!, 'start', r.id, r.uid)));
  for (const r of bound) {
    events.push({ type: 'Normal', reason: 'Scheduled', object: `instance/${r.id}`, message: `bound to ${r.node}` });
    changed.set(groupOf(r), r);
  }
  await store.events.recordAll(events);
  await store.placement.announceDeploymentChanges([...changed.values()].map((r) => ({ namespace: r.namespace, name: r.deployment })));
}
