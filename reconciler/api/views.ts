import type { Store } from '../../state/store.ts';
import { isNodeReady } from '../../state/records/node.ts';
import type { Condition } from '../../state/records/status.ts';
import type { ContainerStatus } from '../../state/records/instance.ts';
import { instanceStatusWord } from '../../state/records/instance-display.ts';

/** The shapes the API returns (and the CLI prints): flat, stable, no secrets. */

export interface DeploymentView {
  namespace: string;
  name: string;
  replicas: number;
  ready: number;
  updated: number;
  available: number;
  pending: number;
  commit: string;
  observedCommit: string | null;
  observedGeneration: number | null;
  generation: number;
  templateHash: string;
  /** What runs (the rollout's target): Git's revision, or the one a rollback, abort or undo pins. */
  running: { revision: number; templateHash: string; commit: string; pinned: boolean } | null;
  file: string;
  conditions: Condition[];
}

export async function describeDeployments(store: Store, namespace?: string): Promise<DeploymentView[]> {
  const deployments = (await store.readDeployments()).filter((d) => !namespace || d.namespace === namespace);
  const statuses = await store.readDeploymentStatuses(deployments);
  return deployments
    .map((d, i) => {
      const s = statuses[i];
      return {
        namespace: d.namespace,
        name: d.name,
        replicas: d.replicas,
        ready: s?.readyReplicas ?? 0,
        updated: s?.updatedReplicas ?? 0,
        available: s?.availableReplicas ?? 0,
        pending: s?.pendingReplicas ?? 0,
        commit: d.commit,
        observedCommit: s?.observedCommit ?? null,
        observedGeneration: s?.observedGeneration ?? null,
        generation: d.generation,
        templateHash: d.templateHash,
        running: s?.rollout ? { revision: s.rollout.revision, templateHash: s.templateHash, commit: s.rollout.commit ?? d.commit, pinned: !!s.rollout.pinned } : null,
        file: d.file,
        conditions: s?.conditions ?? [],
      };
    })
    .sort((a, b) => (a.namespace + '/' + a.name < b.namespace + '/' + b.name ? -1 : 1));
}

export interface NodeView {
  name: string;
  ready: boolean;
  /** Ready, NotReady (no heartbeat for the grace period) or Evicted (its instances were moved). */
  state: string;
  draining: boolean;
  cordoned: boolean;
  address: string;
  labels: Record<string, string>;
  runtimes: string[];
  cpuMilli: number;
  memoryBytes: number;
  allocatedCpuMilli: number;
  allocatedMemoryBytes: number;
  instances: number;
  lastHeartbeat: number;
}

export async function describeNodes(store: Store, nodeReadyMs: number): Promise<NodeView[]> {
  const now = store.clock.now();
  const [nodes, lifecycle, draining] = await Promise.all([store.readNodes(), store.readNodeLifecycles(), store.drainingNodes()]);
  return nodes.map((n) => ({
    name: n.record.name,
    ready: isNodeReady(n.heartbeatAt, now, nodeReadyMs),
    state: isNodeReady(n.heartbeatAt, now, nodeReadyMs) ? 'Ready' : (lifecycle[n.record.name]?.state ?? 'NotReady'),
    cordoned: !!n.record.cordoned,
    draining: draining.includes(n.record.name),
    address: n.record.address,
    labels: n.record.labels,
    runtimes: n.record.runtimes,
    cpuMilli: n.record.cpuMilli,
    memoryBytes: n.record.memoryBytes,
    allocatedCpuMilli: n.alloc.cpuMilli,
    allocatedMemoryBytes: n.alloc.memoryBytes,
    instances: n.alloc.instances,
    lastHeartbeat: n.heartbeatAt,
  }));
}

export interface InstanceView {
  id: string;
  namespace: string;
  deployment: string;
  revision: string;
  commit: string;
  node: string | null;
  phase: string;
  /** Running and passing its readiness probes (the agent's verdict). */
  ready: boolean;
  reason: string | null;
  message: string | null;
  pid: number | null;
  exitCode: number | null;
  restarts: number;
  hostIP: string | null;
  /** protocol only for UDP, hostIP only when the port names one (as the status records them). */
  ports: { name?: string; containerPort: number; hostPort: number; protocol?: 'TCP' | 'UDP'; hostIP?: string }[];
  /** The pod's own IP where it has one (a Docker pod's sandbox); null: the node's (hostIP). */
  podIP: string | null;
  /** kubectl's STATUS word: Running, Init:1/2, CrashLoopBackOff... */
  status: string;
  /** Per container, as the agent reported them (empty until it has). */
  containers: ContainerStatus[];
  initContainers: ContainerStatus[];
  createdAt: number;
  startedAt: number | null;
}

export async function describeInstances(store: Store, filter: { namespace?: string; deployment?: string } = {}): Promise<InstanceView[]> {
  const all = await store.readAllInstances();
  return all
    .filter((i) => (!filter.namespace || i.record.namespace === filter.namespace) && (!filter.deployment || i.record.deployment === filter.deployment))
    .map(({ record: r, status: s }) => {
      // A status from another node or an older uid is stale: it says nothing about this record.
      const live = s && s.uid === r.uid && s.node === r.node ? s : undefined;
      return {
        id: r.id,
        namespace: r.namespace,
        deployment: r.deployment,
        revision: r.templateHash,
        commit: r.commit,
        node: r.node ?? null,
        phase: live?.phase ?? 'Pending',
        ready: live?.phase === 'Running' && (live.ready ?? true),
        reason: live ? (live.reason ?? null) : r.node ? 'Assigned' : r.pendingReason ? 'Unschedulable' : 'Scheduling',
        message: live?.message ?? r.pendingReason ?? null,
        pid: live?.pid ?? null,
        exitCode: live?.exitCode ?? null,
        restarts: live?.restarts ?? 0,
        hostIP: live?.hostIP ?? null,
        ports: live?.ports ?? [],
        podIP: live?.podIP ?? null,
        status: live ? instanceStatusWord(live, r) : r.node ? 'ContainerCreating' : 'Pending',
        containers: live?.containers ?? [],
        initContainers: live?.initContainers ?? [],
        createdAt: r.createdAt,
        startedAt: live?.startedAt ?? null,
      };
    });
}
