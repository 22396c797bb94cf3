import { isNodeReady, maxInstancesOf, type NodeAllocation, type NodeRecord } from '../../state/records/node.ts';
import type { StoredNode } from '../../state/store.ts';
import { hostPortsConflict, type HostPortUse } from './host-ports.ts';
import { filterNode, freeShareOf, recordFilter, unschedulableReason, type NodeCandidate, type ReasonKey, type SchedulingNeeds } from './select-node.ts';

/**
 * The scheduler's nodes as it caches them between placements, pure: one typed array per figure
 * (capacity, allocation, heartbeat), so a placement scans numbers, not objects. `pick` makes
 * selectNode's decision (same filters, same order of scores: spread, then least allocated, then
 * name) without sorting: against 5,000 nodes a placement costs microseconds, not the milliseconds
 * of building and sorting 5,000 views. The filters that read only a node's record (cordon,
 * runtime, nodeSelector) are worked out once per kind of instance and kept until the table is
 * rebuilt. Each full pass over a kind's nodes also keeps its TOP most free ones and a bound on the
 * free share of all the others, so that the next picks look at those few only, for as long as the
 * bound proves that no other node can win (see pick). `explain` gives selectNode's reason, through
 * filterNode itself.
 */

/** Nodes a kind keeps as its most free (the fast path of pick). */
const TOP = 64;

/** The nodes one kind of instance may go to by their records, and its most free ones. */
interface Kind {
  /** Ascending indices. */
  list: Int32Array;
  /** The TOP most free of `list` at the last full pass, by free share then index. */
  top: Int32Array;
  /** The largest free share outside `top` at that pass (-Infinity: none outside)... */
  rest: number;
  /** ...and the smallest index of the nodes outside `top` that had it (a tie goes to the smaller). */
  restIndex: number;
  /** `raises` at that pass; any other value: a free share rose since, the bound does not hold. */
  stamp: number;
}

export interface PickOptions {
  /** By node index (readiness()). */
  ready: Uint8Array;
  /** By node index: instances of the deployment being placed already bound there. */
  spread: Int32Array;
  /** The fixed host ports the instance asks for (none: absent or empty). */
  hostPorts?: readonly HostPortUse[];
  /** By node index: the host ports used there; read only when `hostPorts` has some. */
  usedHostPorts?: readonly (readonly HostPortUse[])[];
}

export class NodeTable {
  /** Sorted by name: a node's index is its rank by name, the last tie-break. */
  readonly names: string[];
  readonly records: NodeRecord[];
  readonly index = new Map<string, number>();
  readonly cpuCap: Float64Array;
  readonly memCap: Float64Array;
  readonly maxInstances: Float64Array;
  readonly cpu: Float64Array;
  readonly mem: Float64Array;
  readonly instances: Float64Array;
  readonly heartbeatAt: Float64Array;
  /** freeShareOf each node, kept with its allocation: the pick loop reads it instead of dividing. */
  readonly free: Float64Array;
  /** Bumped whenever a node's free share rises (bookings only lower them): a kind's bound is void. */
  private raises = 0;
  /** Nodes a binding found gone: never picked nor counted, until the table is rebuilt. */
  private readonly gone: Uint8Array;
  private readonly byKind = new Map<string, Kind>();

  constructor(nodes: readonly StoredNode[]) {
    const sorted = [...nodes].sort((a, b) => (a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0));
    const n = sorted.length;
    this.names = sorted.map((s) => s.record.name);
    this.records = sorted.map((s) => s.record);
    [this.cpuCap, this.memCap, this.maxInstances, this.cpu, this.mem, this.instances, this.heartbeatAt, this.free] = Array.from({ length: 8 }, () => new Float64Array(n));
    this.gone = new Uint8Array(n);
    sorted.forEach((s, i) => {
      this.index.set(s.record.name, i);
      this.cpuCap[i] = s.record.cpuMilli;
      this.memCap[i] = s.record.memoryBytes;
      this.maxInstances[i] = maxInstancesOf(s.record);
      this.heartbeatAt[i] = s.heartbeatAt;
      this.setAlloc(i, s.alloc);
    });
  }

  get size(): number {
    return this.names.length;
  }

  setAlloc(i: number, a: NodeAllocation): void {
    this.cpu[i] = a.cpuMilli;
    this.mem[i] = a.memoryBytes;
    this.instances[i] = a.instances;
    const before = this.free[i]!;
    this.free[i] = freeShareOf(this.cpuCap[i]!, a.cpuMilli, this.memCap[i]!, a.memoryBytes);
    if (!(this.free[i]! <= before)) this.raises++;
  }

  /** Fresh heartbeats and allocations, in `names` order. */
  setDynamics(heartbeatAt: readonly number[], alloc: readonly NodeAllocation[]): void {
    for (let i = 0; i < this.size; i++) {
      this.heartbeatAt[i] = heartbeatAt[i] ?? 0;
      if (alloc[i]) this.setAlloc(i, alloc[i]);
    }
  }

  /** Books (+1) or gives back (-1) what `needs` takes on node i, ahead of the bind script's answer. */
  reserve(i: number, needs: Pick<SchedulingNeeds, 'cpuMilli' | 'memoryBytes'>, sign: 1 | -1): void {
    this.cpu[i]! += sign * needs.cpuMilli;
    this.mem[i]! += sign * needs.memoryBytes;
    this.instances[i]! += sign;
    const before = this.free[i]!;
    this.free[i] = freeShareOf(this.cpuCap[i]!, this.cpu[i]!, this.memCap[i]!, this.mem[i]!);
    if (!(this.free[i]! <= before)) this.raises++;
  }

  /** The bind script found node i cordoned: so it is, for the filters and the reasons. */
  cordon(i: number): void {
    this.records[i] = { ...this.records[i]!, cordoned: true };
    this.byKind.clear();
  }

  /** The bind script found node i gone. */
  drop(i: number): void {
    this.gone[i] = 1;
  }

  /** By node index: 1 when its last heartbeat is within `readyMs` of `now` (Redis's clock). */
  readiness(now: number, readyMs: number): Uint8Array {
    const out = new Uint8Array(this.size);
    for (let i = 0; i < this.size; i++) out[i] = isNodeReady(this.heartbeatAt[i]!, now, readyMs) ? 1 : 0;
    return out;
  }

  /** What the record filters look at: instances of one kind are let in by the same nodes. */
  kindOf(needs: Pick<SchedulingNeeds, 'runtime' | 'nodeSelector'>): string {
    return `${needs.runtime}\n${JSON.stringify(Object.entries(needs.nodeSelector).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))}`;
  }

  /** Indices (ascending) of the nodes whose record lets this kind of instance in. */
  eligible(needs: Pick<SchedulingNeeds, 'runtime' | 'nodeSelector'>): Int32Array {
    return this.kind(needs).list;
  }

  private kind(needs: Pick<SchedulingNeeds, 'runtime' | 'nodeSelector'>): Kind {
    const key = this.kindOf(needs);
    let kind = this.byKind.get(key);
    if (!kind) {
      const ok: number[] = [];
      for (let i = 0; i < this.size; i++) if (!recordFilter(needs, this.records[i]!)) ok.push(i);
      kind = { list: Int32Array.from(ok), top: new Int32Array(0), rest: Infinity, restIndex: -1, stamp: -1 };
      this.byKind.set(key, kind);
    }
    return kind;
  }

  /**
   * The index of the node selectNode would choose first, or -1 when none fits. First among the
   * kind's TOP most free: the best there wins outright when no instance of its deployment is on it
   * and no node outside TOP can beat it: more free than they could be, or as free with a smaller
   * index (free shares only fall between passes, and a rise voids the bound). Otherwise one full
   * pass, which also refreshes TOP and the bound.
   */
  pick(needs: SchedulingNeeds, o: PickOptions): number {
    const kind = this.kind(needs);
    if (kind.stamp === this.raises) {
      const i = this.best(kind.top, needs, o);
      if (i >= 0 && o.spread[i]! <= 0 && (this.free[i]! > kind.rest || (this.free[i] === kind.rest && i < kind.restIndex))) return i;
    }
    return this.best(kind.list, needs, o, kind);
  }

  /** selectNode's choice among `list`; with `refresh`, also that kind's TOP and bound, from this pass. */
  private best(list: Int32Array, needs: SchedulingNeeds, o: PickOptions, refresh?: Kind): number {
    const { ready, spread } = o;
    const hostPorts = o.hostPorts && o.hostPorts.length > 0 ? o.hostPorts : undefined;
    // Locals, not fields: this loop runs against every node for many placements.
    const { gone, instances, maxInstances, cpu, cpuCap, mem, memCap, free } = this;
    const wantCpu = needs.cpuMilli;
    const wantMem = needs.memoryBytes;
    // The TOP + 1 most free seen so far, by free share then index (the last one is the bound).
    const topIdx = refresh ? new Int32Array(TOP + 1) : undefined;
    const topFree = refresh ? new Float64Array(TOP + 1) : undefined;
    let kept = 0;
    let best = -1;
    let bestSpread = 0;
    let bestFree = 0;
    for (let x = 0; x < list.length; x++) {
      const i = list[x]!;
      const f = free[i]!;
      // Ascending indices: a node equal to the last kept one comes after it, and is not kept.
      if (topIdx && topFree && (kept <= TOP || f > topFree[TOP]!)) {
        let at = Math.min(kept, TOP);
        while (at > 0 && f > topFree[at - 1]!) {
          topIdx[at] = topIdx[at - 1]!;
          topFree[at] = topFree[at - 1]!;
          at--;
        }
        topIdx[at] = i;
        topFree[at] = f;
        if (kept <= TOP) kept++;
      }
      const s = spread[i]!;
      // Cannot win (a worse spread; as much spread and less free; a full tie with a later name):
      // skip the checks. TOP is in no index order (free shares moved since it was kept): the
      // index is compared, not assumed.
      if (best >= 0 && (s > bestSpread || (s === bestSpread && (f < bestFree || (f === bestFree && i > best))))) continue;
      if (ready[i] === 0 || gone[i] === 1) continue;
      if (instances[i]! + 1 > maxInstances[i]! || cpu[i]! + wantCpu > cpuCap[i]! || mem[i]! + wantMem > memCap[i]!) continue;
      if (hostPorts && hostPortsConflict(hostPorts, o.usedHostPorts?.[i] ?? [], this.records[i]!.address)) continue;
      best = i;
      bestSpread = s;
      bestFree = f;
    }
    if (refresh && topIdx && topFree) {
      refresh.top = topIdx.slice(0, Math.min(kept, TOP));
      // Equal shares are kept by index, and one that fell out had no smaller index than what took
      // its place: the last kept is the smallest index outside TOP with the bound's share.
      refresh.rest = kept > TOP ? topFree[TOP]! : -Infinity;
      refresh.restIndex = kept > TOP ? topIdx[TOP]! : -1;
      refresh.stamp = this.raises;
    }
    return best;
  }

  /** Why nothing fits, in selectNode's words (`0/3 nodes available: ...`), through filterNode. */
  explain(needs: SchedulingNeeds, o: PickOptions): string {
    const counts = new Map<ReasonKey, number>();
    const hostPorts = o.hostPorts ? [...o.hostPorts] : [];
    let total = 0;
    for (let i = 0; i < this.size; i++) {
      if (this.gone[i] === 1) continue;
      total++;
      const why = filterNode(needs, this.candidate(i, o), hostPorts);
      if (why) counts.set(why, (counts.get(why) ?? 0) + 1);
    }
    return unschedulableReason(total, counts);
  }

  /** Node i as selectNode weighs it. */
  candidate(i: number, o: PickOptions): NodeCandidate {
    return {
      record: this.records[i]!,
      alloc: { cpuMilli: this.cpu[i]!, memoryBytes: this.mem[i]!, instances: this.instances[i]! },
      ready: o.ready[i] === 1,
      sameDeployment: o.spread[i]!,
      ...(o.hostPorts && o.hostPorts.length > 0 ? { usedHostPorts: [...(o.usedHostPorts?.[i] ?? [])] } : {}),
    };
  }

  /** By node index, from node name -> count (a deployment's per-node counts). */
  spreadOf(perNode: ReadonlyMap<string, number>): Int32Array {
    const out = new Int32Array(this.size);
    for (const [name, n] of perNode) {
      const i = this.index.get(name);
      if (i !== undefined) out[i] = n;
    }
    return out;
  }
}
