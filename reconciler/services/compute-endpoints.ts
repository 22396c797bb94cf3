import type { InstanceStatus } from '../../state/records/instance.ts';
import { isReady, type ActualInstance } from '../../state/records/instance.ts';
import { objectKey } from '../../state/keys.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { Condition, DeploymentStatus } from '../../state/records/status.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import { NODE_PORT_MAX, NODE_PORT_MIN, portKey, type CanarySplit, type Endpoint, type EndpointsRecord, type ServiceListener, type ServicePortRecord, type ServiceProtocol, type ServiceRecord } from '../../state/records/service.ts';
import { allocateNodePorts, exposedOnNodes } from './node-ports.ts';

/**
 * What each Service's endpoints are, pure: the ready instances of its namespace whose labels carry
 * its selector, on nodes that are not known to be lost, each with the host port of every service
 * port's targetPort. Also decides what agents listen on (service ports and nodePorts, allocated in
 * node-ports.ts), port conflicts (a port and protocol belong to the first service claiming them in
 * namespace/name order, so the answer never depends on timing) and the canary split.
 */

export interface EndpointsInput {
  /** Sorted by namespace/name (readServices does). */
  services: ServiceRecord[];
  instances: ActualInstance[];
  /** node -> lifecycle state; a node missing here has not been judged yet and counts as Ready. */
  nodeStates: Record<string, string>;
  /** "<ns>/<deployment>" -> split, for deployments in the middle of a canary. */
  splits: Map<string, CanarySplit>;
  /** Previous records by "<ns>/<name>", to keep lastTransitionTime of unchanged conditions. */
  previous: Map<string, EndpointsRecord>;
  now: number;
}

export function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/**
 * The host port at which an instance serves `targetPort` (a container port's name or number) for a
 * service port of `protocol`: the container port of that protocol, as Kubernetes matches a named
 * port (53/TCP and 53/UDP are two ports with two host ports). A UDP service port whose target is
 * declared only without a protocol still reaches it, as it did before container ports had one (a
 * process listens on both protocols of its host port); never the other way round.
 */
export function resolveTargetPort(status: Pick<InstanceStatus, 'ports'>, targetPort: number | string, protocol: ServiceProtocol = 'TCP'): number | undefined {
  const named = status.ports.filter((x) => (typeof targetPort === 'string' ? x.name === targetPort : x.containerPort === targetPort));
  const same = named.find((x) => (x.protocol ?? 'TCP') === protocol);
  const legacy = protocol === 'UDP' ? named.find((x) => (x.protocol ?? 'TCP') === 'TCP') : undefined;
  return (same ?? legacy)?.hostPort;
}

export function computeEndpoints(input: EndpointsInput): EndpointsRecord[] {
  // "TCP/8000" -> the service that listens there: service ports and nodePorts share each agent's address.
  const claimed = new Map<string, string>();
  const nodePorts = allocateNodePorts(input.services, input.previous);
  const out: EndpointsRecord[] = [];
  for (const svc of input.services) {
    const key = objectKey(svc.namespace, svc.name);
    const allocated = nodePorts.get(key);
    const ports: ServicePortRecord[] = svc.ports.map((p) => {
      const nodePort = allocated?.get(portKey(p));
      return nodePort === undefined ? p : { ...p, nodePort };
    });
    const listen: number[] = [];
    const listeners: ServiceListener[] = [];
    const conflicts: string[] = [];
    const claim = (l: ServiceListener) => {
      const owner = claimed.get(`${l.protocol}/${l.port}`);
      if (owner !== undefined) {
        const what = `${l.nodePort ? 'nodePort' : 'port'} ${l.port}${l.protocol === 'UDP' ? '/UDP' : ''}`;
        conflicts.push(`${what} is already used by ${owner === key ? 'another port of this service' : `service ${owner}`}`);
        return;
      }
      claimed.set(`${l.protocol}/${l.port}`, key);
      listeners.push(l);
      if (!l.nodePort && !listen.includes(l.port)) listen.push(l.port);
    };
    // Headless: no agent listens, as kube-proxy skips such services; the endpoints are still listed.
    if (!svc.headless) for (const p of ports) claim({ protocol: p.protocol ?? 'TCP', port: p.port, target: portKey(p) });
    const exhausted: string[] = [];
    if (exposedOnNodes(svc)) {
      for (const p of ports) {
        if (p.nodePort !== undefined) claim({ protocol: p.protocol ?? 'TCP', port: p.nodePort, target: portKey(p), nodePort: true });
        else exhausted.push(portKey(p));
      }
    }
    const { endpoints, matched, unresolved } = selectEndpoints(svc, input.instances, input.nodeStates);
    const split = splitFor(svc, endpoints, input.instances, input.splits);
    const previous = input.previous.get(key);
    const conditions: Condition[] = [];
    if (conflicts.length > 0) conditions.push(condition(previous, 'PortConflict', 'True', 'PortInUse', `${conflicts.join('; ')}: not listening there`, input.now));
    if (exhausted.length > 0) {
      conditions.push(condition(previous, 'NodePortUnavailable', 'True', 'NodePortsExhausted', `no free nodePort in ${NODE_PORT_MIN}-${NODE_PORT_MAX} for port ${exhausted.join(', ')}`, input.now));
    }
    if (unresolved.length > 0) conditions.push(condition(previous, 'TargetPortNotFound', 'True', 'NoSuchContainerPort', unresolved.join('; '), input.now));
    conditions.push(
      endpoints.length > 0
        ? condition(previous, 'EndpointsReady', 'True', 'ReadyEndpoints', `${endpoints.length} ready endpoint(s)`, input.now)
        : matched > 0
          ? condition(previous, 'EndpointsReady', 'False', 'NoReadyEndpoints', `no ready instance in namespace ${svc.namespace} matches ${selectorText(svc.selector)} and declares one of its target ports (${matched} match but declare none: see TargetPortNotFound)`, input.now)
          : condition(previous, 'EndpointsReady', 'False', 'NoReadyEndpoints', `no ready instance in namespace ${svc.namespace} matches ${selectorText(svc.selector)}`, input.now),
    );
    out.push({
      namespace: svc.namespace,
      name: svc.name,
      ...(svc.type ? { type: svc.type } : {}),
      ...(svc.headless ? { headless: true as const } : {}),
      ports,
      listen,
      listeners,
      endpoints,
      ...(split ? { split } : {}),
      conditions,
      updatedAt: input.now,
    });
  }
  return out;
}

/**
 * The endpoints of a service, how many ready instances it matched (on nodes not lost), and a line
 * per service port whose targetPort some of them do not declare: such an instance gets no traffic
 * on that port, which would otherwise look like a healthy service that serves nothing.
 */
function selectEndpoints(svc: ServiceRecord, instances: ActualInstance[], nodeStates: Record<string, string>): { endpoints: Endpoint[]; matched: number; unresolved: string[] } {
  const out: Endpoint[] = [];
  const missing = new Map<string, string[]>(); // portKey -> instance ids without its targetPort
  let matched = 0;
  for (const inst of instances) {
    const r = inst.record;
    if (r.namespace !== svc.namespace || !matchesSelector(r.labels, svc.selector) || !isReady(inst)) continue;
    const status = inst.status!;
    const state = nodeStates[status.node];
    if (state !== undefined && state !== 'Ready') continue;
    matched++;
    const ports: Record<string, number> = {};
    for (const p of svc.ports) {
      const hostPort = resolveTargetPort(status, p.targetPort, p.protocol);
      if (hostPort !== undefined) ports[portKey(p)] = hostPort;
      else missing.set(portKey(p), [...(missing.get(portKey(p)) ?? []), r.id]);
    }
    if (Object.keys(ports).length === 0) continue; // it serves none of the service's ports
    out.push({ instanceId: r.id, node: status.node, host: status.hostIP, ports, revision: r.templateHash });
  }
  const unresolved = svc.ports.flatMap((p) => {
    const ids = missing.get(portKey(p));
    if (!ids) return [];
    const shown = ids.sort().slice(0, 3).join(', ') + (ids.length > 3 ? `, +${ids.length - 3} more` : '');
    const target = typeof p.targetPort === 'string' ? `port named "${p.targetPort}"` : `containerPort ${p.targetPort}`;
    return [`port ${portKey(p)}: ${ids.length} of ${matched} ready instance(s) declare no ${target} (${shown}), so get no traffic on it`];
  });
  return { endpoints: out.sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0)), matched, unresolved };
}

/** The canary split of the (first) deployment in a canary whose instances back this service. */
function splitFor(svc: ServiceRecord, endpoints: Endpoint[], instances: ActualInstance[], splits: Map<string, CanarySplit>): CanarySplit | undefined {
  if (splits.size === 0 || endpoints.length === 0) return undefined;
  const ids = new Set(endpoints.map((e) => e.instanceId));
  for (const inst of instances) {
    if (!ids.has(inst.record.id)) continue;
    const split = splits.get(objectKey(svc.namespace, inst.record.deployment));
    if (split) return split;
  }
  return undefined;
}

/**
 * The split of a deployment while its canary holds a share of the replicas: the weight of the
 * step it is at (the last setWeight reached), as advanceRollout computes it. Undefined otherwise.
 */
export function canarySplitOf(desired: DeploymentRecord, state: RolloutState | undefined, status: DeploymentStatus | undefined): CanarySplit | undefined {
  const r = status?.rollout;
  if (!state || !r || r.canaryReplicas === null || r.canaryReplicas === undefined || desired.strategy.type !== 'Canary') return undefined;
  const target = state.revisions.find((x) => x.revision === state.target);
  const stable = state.revisions.find((x) => x.revision === state.stable);
  if (!target || !stable || target.revision === stable.revision) return undefined;
  const steps = desired.strategy.steps ?? [];
  let weight: number | undefined;
  for (let j = 0; j <= Math.min(state.canaryStep ?? 0, steps.length - 1); j++) {
    const st = steps[j]!;
    if ('setWeight' in st) weight = st.setWeight;
  }
  // No setWeight reached yet: fall back to the share of replicas the canary holds.
  weight ??= desired.replicas > 0 ? Math.round((100 * r.canaryReplicas) / desired.replicas) : 0;
  return { deployment: desired.name, canaryRevision: target.templateHash, stableRevision: stable.templateHash, weight };
}

function condition(previous: EndpointsRecord | undefined, type: string, status: Condition['status'], reason: string, message: string, now: number): Condition {
  const before = previous?.conditions.find((c) => c.type === type);
  return { type, status, reason, message, lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now };
}

function selectorText(selector: Record<string, string>): string {
  return Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Whether two records differ in anything but their timestamps (no write, no notification if not). */
export function endpointsChanged(a: EndpointsRecord | undefined, b: EndpointsRecord): boolean {
  if (!a) return true;
  const strip = (e: EndpointsRecord) => JSON.stringify({ ...e, updatedAt: 0 });
  return strip(a) !== strip(b);
}

/** Per port `<port>[:<nodePort>][-><targetPort>][/UDP]` (kubectl's port:nodePort/protocol), for tables. */
export function describePorts(ports: ServicePortRecord[]): string {
  return ports
    .map((p) => `${p.port}${p.nodePort !== undefined ? `:${p.nodePort}` : ''}${String(p.targetPort) === String(p.port) ? '' : `->${p.targetPort}`}${p.protocol === 'UDP' ? '/UDP' : ''}`)
    .join(',');
}
