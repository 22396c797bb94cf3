import type { InstanceRecord } from '../../state/records/instance.ts';
import { maxInstancesOf, type NodeAllocation, type NodeRecord } from '../../state/records/node.ts';
import { hostPortsConflict, requestedHostPorts, type HostPortUse } from './host-ports.ts';

/**
 * The scheduler's pure decision: filter the nodes an instance may go to, then score them.
 *
 * Filters, in order (the first one a node fails is its reason): node ready, not cordoned, offers
 * the runtime, nodeSelector matches, the hostPorts it asks for are free there (host-ports.ts), room
 * for one more instance (maxInstances, default 110), CPU fits, memory fits. Scores: fewest instances of the same
 * deployment first (spread), then least allocated (mean free share of CPU and memory), then name.
 * This is the reference: the scheduler places through NodeTable.pick (node-table.ts), the same
 * decision over its cached nodes without building and sorting views, and explains through filterNode.
 */

/** A node as the scheduler weighs it for one instance. */
export interface NodeCandidate {
  record: NodeRecord;
  alloc: NodeAllocation;
  ready: boolean;
  /** Instances of the deployment being placed that are already bound to this node. */
  sameDeployment: number;
  /** The hostPorts of the instances bound here; only looked up when the instance asks for some (absent: none). */
  usedHostPorts?: HostPortUse[];
}

/** What the filters look at; `containers` only for the hostPorts it asks for (absent: none). */
export type SchedulingNeeds = Pick<InstanceRecord, 'runtime' | 'nodeSelector' | 'cpuMilli' | 'memoryBytes'> & Partial<Pick<InstanceRecord, 'containers'>>;

export type Placement = { node: string; ranked: string[] } | { reason: string };

const REASONS = {
  notReady: 'node not ready',
  cordoned: 'node cordoned',
  runtime: 'runtime not offered',
  selector: 'node selector mismatch',
  // kube-scheduler's words, after the count: "1 node(s) didn't have free ports for the requested pod ports".
  hostPorts: "node(s) didn't have free ports for the requested pod ports",
  instances: 'too many instances',
  cpu: 'insufficient cpu',
  memory: 'insufficient memory',
} as const;
export type ReasonKey = keyof typeof REASONS;

/**
 * The filters that read only the node's record (cordon, runtime, nodeSelector), in filterNode's
 * order: what a node cache may work out once per kind of instance and keep until a record changes.
 */
export function recordFilter(inst: Pick<SchedulingNeeds, 'runtime' | 'nodeSelector'>, record: NodeRecord): 'cordoned' | 'runtime' | 'selector' | undefined {
  if (record.cordoned) return 'cordoned';
  if (!record.runtimes.includes(inst.runtime)) return 'runtime';
  for (const [k, v] of Object.entries(inst.nodeSelector)) {
    if (record.labels[k] !== v) return 'selector';
  }
  return undefined;
}

export function filterNode(inst: SchedulingNeeds, n: NodeCandidate, hostPorts: HostPortUse[] = requestedHostPorts(inst.containers ?? [])): ReasonKey | undefined {
  if (!n.ready) return 'notReady';
  const byRecord = recordFilter(inst, n.record);
  if (byRecord) return byRecord;
  if (hostPorts.length > 0 && hostPortsConflict(hostPorts, n.usedHostPorts ?? [], n.record.address)) return 'hostPorts';
  if (n.alloc.instances + 1 > maxInstancesOf(n.record)) return 'instances';
  if (n.alloc.cpuMilli + inst.cpuMilli > n.record.cpuMilli) return 'cpu';
  if (n.alloc.memoryBytes + inst.memoryBytes > n.record.memoryBytes) return 'memory';
  return undefined;
}

/** The least-allocated score: mean free share of CPU and memory. One formula for selectNode and the node cache, so their ties agree. */
export function freeShareOf(cpuMilli: number, usedCpu: number, memoryBytes: number, usedMem: number): number {
  const cpu = cpuMilli > 0 ? (cpuMilli - usedCpu) / cpuMilli : 0;
  const mem = memoryBytes > 0 ? (memoryBytes - usedMem) / memoryBytes : 0;
  return (cpu + mem) / 2;
}

function freeShare(n: NodeCandidate): number {
  return freeShareOf(n.record.cpuMilli, n.alloc.cpuMilli, n.record.memoryBytes, n.alloc.memoryBytes);
}

export function selectNode(inst: SchedulingNeeds, nodes: NodeCandidate[]): Placement {
  const fits: NodeCandidate[] = [];
  const counts = new Map<ReasonKey, number>();
  const hostPorts = requestedHostPorts(inst.containers ?? []);
  for (const n of nodes) {
    const why = filterNode(inst, n, hostPorts);
    if (why) counts.set(why, (counts.get(why) ?? 0) + 1);
    else fits.push(n);
  }
  if (fits.length === 0) return { reason: unschedulableReason(nodes.length, counts) };
  // Scores computed once per node, not in the comparator: this runs against every node.
  const scored = fits.map((n) => ({ n, spread: n.sameDeployment, free: freeShare(n) }));
  scored.sort((a, b) => a.spread - b.spread || b.free - a.free || (a.n.record.name < b.n.record.name ? -1 : 1));
  return { node: scored[0]!.n.record.name, ranked: scored.map((s) => s.n.record.name) };
}

/** `0/3 nodes available: 2 insufficient memory, 1 node selector mismatch` */
export function unschedulableReason(total: number, counts: Map<ReasonKey, number>): string {
  if (total === 0) return '0/0 nodes available: no nodes registered';
  const parts = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || (REASONS[a[0]] < REASONS[b[0]] ? -1 : 1))
    .map(([k, c]) => `${c} ${REASONS[k]}`);
  return `0/${total} nodes available: ${parts.join(', ')}`;
}
