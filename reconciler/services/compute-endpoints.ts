import type { InstanceStatus } from '../../state/records/instance.ts';
import { isReady, type ActualInstance } from '../../state/records/instance.ts';
import { objectKey } from '../../state/keys.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { Condition, DeploymentStatus } from '../../state/records/status.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import type { CanarySplit, Endpoint, EndpointsRecord, ServicePortRecord, ServiceRecord } from '../../state/records/service.ts';

/**
 * What each Service's endpoints are, pure: the ready instances of its namespace whose labels carry
 * its selector, on nodes that are not known to be lost, each with the host port of every service
 * port's targetPort. Also decides port conflicts (a port belongs to the first service claiming it
 * in namespace/name order, so the answer never depends on timing) and the canary split.
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

/** The host port at which an instance serves `targetPort` (a container port's name or number). */
export function resolveTargetPort(status: Pick<InstanceStatus, 'ports'>, targetPort: number | string): number | undefined {
  const p = typeof targetPort === 'string' ? status.ports.find((x) => x.name === targetPort) : status.ports.find((x) => x.containerPort === targetPort);
  return p?.hostPort;
}

export function computeEndpoints(input: EndpointsInput): EndpointsRecord[] {
  const claimed = new Map<number, string>();
  const out: EndpointsRecord[] = [];
  for (const svc of input.services) {
    const key = objectKey(svc.namespace, svc.name);
    const listen: number[] = [];
    const conflicts: string[] = [];
    for (const p of svc.ports) {
      const owner = claimed.get(p.port);
      if (owner && owner !== key) conflicts.push(`port ${p.port} is already used by service ${owner}`);
      else {
        claimed.set(p.port, key);
        listen.push(p.port);
      }
    }
    const endpoints = selectEndpoints(svc, input.instances, input.nodeStates);
    const split = splitFor(svc, endpoints, input.instances, input.splits);
    const previous = input.previous.get(key);
    const conditions: Condition[] = [];
    if (conflicts.length > 0) conditions.push(condition(previous, 'PortConflict', 'True', 'PortInUse', `${conflicts.join('; ')}: not listening there`, input.now));
    conditions.push(
      endpoints.length > 0
        ? condition(previous, 'EndpointsReady', 'True', 'ReadyEndpoints', `${endpoints.length} ready endpoint(s)`, input.now)
        : condition(previous, 'EndpointsReady', 'False', 'NoReadyEndpoints', `no ready instance in namespace ${svc.namespace} matches ${selectorText(svc.selector)}`, input.now),
    );
    out.push({ namespace: svc.namespace, name: svc.name, ports: svc.ports, listen, endpoints, ...(split ? { split } : {}), conditions, updatedAt: input.now });
  }
  return out;
}

function selectEndpoints(svc: ServiceRecord, instances: ActualInstance[], nodeStates: Record<string, string>): Endpoint[] {
  const out: Endpoint[] = [];
  for (const inst of instances) {
    const r = inst.record;
    if (r.namespace !== svc.namespace || !matchesSelector(r.labels, svc.selector) || !isReady(inst)) continue;
    const status = inst.status!;
    const state = nodeStates[status.node];
    if (state !== undefined && state !== 'Ready') continue;
    const ports: Record<string, number> = {};
    for (const p of svc.ports) {
      const hostPort = resolveTargetPort(status, p.targetPort);
      if (hostPort !== undefined) ports[String(p.port)] = hostPort;
    }
    if (Object.keys(ports).length === 0) continue; // it serves none of the service's ports
    out.push({ instanceId: r.id, node: status.node, host: status.hostIP, ports, revision: r.templateHash });
  }
  return out.sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : 0));
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

/** `<port>` or `<port>-><targetPort>` per port, for tables. */
export function describePorts(ports: ServicePortRecord[]): string {
  return ports.map((p) => (String(p.targetPort) === String(p.port) ? String(p.port) : `${p.port}->${p.targetPort}`)).join(',');
}
