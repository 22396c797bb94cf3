/**
 * Checks of a schema-valid Deployment or Service that JSON Schema cannot express: relations between
 * fields, uniqueness within lists, and quantities that must parse. They run on what the user wrote (before
 * defaults) so pointers refer to it.
 */
import type { Container, Deployment, IntOrPercent, Service } from '../../schemas/generated/index.ts';
import { isIP } from 'node:net';
import { escapePointerToken } from './pointer.ts';
import { checkProbes } from './probes.ts';
import { checkLifecycle, lifecycleWarnings, type LifecycleWarning } from './lifecycle.ts';
import { checkInitContainer, podContainers, type PodContainer } from './init-containers.ts';
import { DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS } from './normalize.ts';
import { checkResources } from './resources.ts';
import { MAX_PAUSE_SECONDS } from './limits.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import { checkSelectorExpressions } from './selector.ts';
import { NODE_PORT_MAX, NODE_PORT_MIN } from '../../state/records/service.ts';

function invalid(pointer: string, message: string, key = false): ManifestIssue {
  return key ? { code: 'INVALID_VALUE', pointer, message, at: { pointer, key } } : { code: 'INVALID_VALUE', pointer, message };
}

function checkSelector(d: Deployment, issues: ManifestIssue[]): void {
  const templateLabels = d.spec.template.metadata.labels;
  if (d.spec.selector) issues.push(...checkSelectorExpressions(d.spec.selector, templateLabels));
  const matchLabels = d.spec.selector?.matchLabels;
  if (!matchLabels) return;
  for (const [key, value] of Object.entries(matchLabels)) {
    const pointer = `/spec/selector/matchLabels/${escapePointerToken(key)}`;
    const actual = templateLabels[key];
    if (actual === undefined) {
      issues.push(invalid(pointer, `selector label ${key}=${value} is not among the template's labels`));
    } else if (actual !== value) {
      issues.push(invalid(pointer, `selector label ${key}=${value} does not match the template's label ${key}=${actual}`));
    }
  }
}

/** Reports each value after its first occurrence, naming the index where it first appeared. */
function checkUnique<T>(
  items: T[],
  valueOf: (item: T) => string | number | undefined,
  pointerOf: (index: number) => string,
  describe: (value: string | number, firstIndex: number) => string,
  issues: ManifestIssue[],
): void {
  const first = new Map<string | number, number>();
  items.forEach((item, index) => {
    const value = valueOf(item);
    if (value === undefined) return;
    const earlier = first.get(value);
    if (earlier === undefined) first.set(value, index);
    else issues.push(invalid(pointerOf(index), describe(value, earlier)));
  });
}

/**
 * Containers and init containers alike (podContainers): names unique across both lists, ports,
 * probes (not on init containers: init-containers.ts), hooks and resources.
 */
function checkContainers(d: Deployment, issues: ManifestIssue[]): void {
  const pod = d.spec.template.spec;
  const all = podContainers(pod);
  const grace = pod.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS;
  checkUnique(
    all,
    (x) => x.container.name,
    (i) => `${all[i]!.pointer}/name`,
    (name, first) => `duplicate container name "${name}", also used by ${all[first]!.pointer}`,
    issues,
  );
  for (const { container: c, pointer: base, init } of all) {
    const ports = c.ports ?? [];
    const portsBase = `${base}/ports`;
    checkUnique(
      ports,
      (p) => p.name,
      (j) => `${portsBase}/${j}/name`,
      (name, first) => `duplicate port name "${name}" in container "${c.name}", also used by ${portsBase}/${first}`,
      issues,
    );
    // Once per protocol, as Kubernetes allows (DNS on 53/TCP and 53/UDP).
    checkUnique(
      ports,
      (p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`,
      (j) => `${portsBase}/${j}/containerPort`,
      (port, first) => `duplicate containerPort ${String(port).replace(/\/TCP$/, '')} in container "${c.name}", also used by ${portsBase}/${first}`,
      issues,
    );
    ports.forEach((p, j) => {
      if (p.hostIP !== undefined && isIP(p.hostIP) === 0) issues.push(invalid(`${portsBase}/${j}/hostIP`, 'must be an IPv4 or IPv6 address'));
    });
    if (init) issues.push(...checkInitContainer(c, base));
    else issues.push(...checkProbes(c, base), ...checkLifecycle(c, base, grace));
    // The schema checks the shape; parsing, the maxima, mixed forms and request <= limit are here.
    issues.push(...checkResources(c.resources, `${base}/resources`));
  }
  checkHostPorts(all.filter((x) => !x.init), issues);
  // Init containers run one at a time, so each is checked alone, as the API server does.
  for (const x of all) if (x.init) checkHostPorts([x], issues);
}

const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/**
 * A hostPort once per protocol and address among containers that run at once, as Kubernetes
 * validates it: the second could never bind. An absent hostIP (the node's address) and an
 * unspecified one (all addresses) overlap with every other; two different explicit addresses do not.
 */
function checkHostPorts(containers: readonly PodContainer<Container>[], issues: ManifestIssue[]): void {
  const seen: { hostPort: number; protocol: string; hostIP?: string; pointer: string }[] = [];
  for (const { container: c, pointer: base } of containers) {
    (c.ports ?? []).forEach((p, j) => {
      if (!p.hostPort) return;
      const here = { hostPort: p.hostPort, protocol: p.protocol ?? 'TCP', hostIP: p.hostIP, pointer: `${base}/ports/${j}` };
      const overlaps = (a?: string, b?: string) => a === b || a === undefined || b === undefined || UNSPECIFIED.has(a) || UNSPECIFIED.has(b);
      const earlier = seen.find((s) => s.hostPort === here.hostPort && s.protocol === here.protocol && overlaps(s.hostIP, here.hostIP));
      if (earlier) issues.push(invalid(`${here.pointer}/hostPort`, `duplicate hostPort ${here.hostPort}/${here.protocol}, also used by ${earlier.pointer}: both could not bind it`));
      seen.push(here);
    });
  }
}

/** Seconds of a schema-valid duration ("30s", "5m", "1h"); digits beyond 2^53 only make it larger. */
function durationSeconds(d: string): number {
  const unit = d.endsWith('h') ? 3600 : d.endsWith('m') ? 60 : 1;
  return Number(d.slice(0, -1)) * unit;
}

function isZero(v: IntOrPercent | undefined): boolean {
  return v === 0 || (typeof v === 'string' && /^0+%$/.test(v));
}

function checkStrategy(d: Deployment, issues: ManifestIssue[]): void {
  const strategy = d.spec.strategy;
  if (strategy?.steps && strategy.type !== 'Canary') {
    issues.push(invalid('/spec/strategy/steps', 'must only be set when the strategy type is Canary', true));
  }
  if (strategy?.type === 'Canary' && !strategy.steps) {
    issues.push(invalid('/spec/strategy', "must have required property 'steps' when the strategy type is Canary", true));
  }
  strategy?.steps?.forEach((step, i) => {
    const duration = step.pause?.duration;
    if (duration !== undefined && durationSeconds(duration) > MAX_PAUSE_SECONDS) {
      issues.push(invalid(`/spec/strategy/steps/${i}/pause/duration`, `must be at most ${MAX_PAUSE_SECONDS / 3600}h (a week); a pause without a duration waits for \`gantry rollout promote\``));
    }
  });
  if (!strategy?.rollingUpdate) return;
  const pointer = '/spec/strategy/rollingUpdate';
  if (strategy.type === 'Recreate' || strategy.type === 'Canary') {
    issues.push(invalid(pointer, `must not be set when the strategy type is ${strategy.type}`, true));
    return;
  }
  const { maxSurge, maxUnavailable } = strategy.rollingUpdate;
  // Both default to 25%, so only explicit zeros can make both zero.
  if (isZero(maxSurge) && isZero(maxUnavailable)) {
    issues.push(invalid(pointer, 'maxSurge and maxUnavailable must not both be 0: the rollout could never replace an instance'));
  }
  if (typeof maxUnavailable === 'string' && Number.parseInt(maxUnavailable, 10) > 100) {
    issues.push(invalid(`${pointer}/maxUnavailable`, 'must not be more than 100%'));
  }
}

export function checkDeployment(d: Deployment): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  checkSelector(d, issues);
  checkContainers(d, issues);
  checkStrategy(d, issues);
  return issues;
}

/** Warnings about a valid Deployment: lifecycle handlers Gantry accepts and does not run (tcpSocket). */
export function deploymentWarnings(d: Deployment): LifecycleWarning[] {
  return podContainers(d.spec.template.spec).flatMap(({ container, pointer, init }) => (init ? [] : lifecycleWarnings(container, pointer)));
}

/**
 * What the Service schema cannot say: unique port names, a port number once per protocol, names
 * when several ports, nodePorts only where the type has them and within Kubernetes' range, once per
 * protocol, on no port of the service itself (both listen on each agent's address), and a headless
 * service (clusterIP None) neither exposed on nodes nor contradicted by clusterIPs.
 */
export function checkService(svc: Service): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const names = new Map<string, number>();
  const ports = new Map<string, number>();
  const nodePorts = new Map<string, number>();
  const exposedOnNodes = svc.spec.type === 'NodePort' || svc.spec.type === 'LoadBalancer';
  svc.spec.ports.forEach((p, i) => {
    const pointer = `/spec/ports/${i}`;
    const udp = p.protocol === 'UDP' ? '/UDP' : '';
    if (p.name !== undefined) {
      if (names.has(p.name)) issues.push(invalid(`${pointer}/name`, `duplicate port name "${p.name}" (also /spec/ports/${names.get(p.name)})`));
      else names.set(p.name, i);
    } else if (svc.spec.ports.length > 1) {
      issues.push(invalid(pointer, "must have property 'name' when a service has several ports", true));
    }
    const key = `${p.port}${udp}`;
    if (ports.has(key)) issues.push(invalid(`${pointer}/port`, `duplicate port ${key} (also /spec/ports/${ports.get(key)})`));
    else ports.set(key, i);
    if (p.nodePort === undefined) return;
    const at = `${pointer}/nodePort`;
    if (!exposedOnNodes) {
      issues.push(invalid(at, `may only be set when the service type is NodePort or LoadBalancer, not ${svc.spec.type ?? 'ClusterIP'}`));
    } else if (p.nodePort < NODE_PORT_MIN || p.nodePort > NODE_PORT_MAX) {
      issues.push(invalid(at, `must be in the node port range ${NODE_PORT_MIN}-${NODE_PORT_MAX} (Kubernetes' default), or be left out to have one allocated`));
    } else if (nodePorts.has(`${p.nodePort}${udp}`)) {
      issues.push(invalid(at, `duplicate nodePort ${p.nodePort}${udp} (also /spec/ports/${nodePorts.get(`${p.nodePort}${udp}`)})`));
    } else nodePorts.set(`${p.nodePort}${udp}`, i);
  });
  // After the loop: a nodePort may equal a port written later in the list.
  svc.spec.ports.forEach((p, i) => {
    const same = p.nodePort === undefined ? undefined : ports.get(`${p.nodePort}${p.protocol === 'UDP' ? '/UDP' : ''}`);
    if (exposedOnNodes && same !== undefined) issues.push(invalid(`/spec/ports/${i}/nodePort`, `is also the port of /spec/ports/${same}: both would listen on each agent's address`));
  });
  const { clusterIP, clusterIPs } = svc.spec;
  const headless = clusterIP === 'None' || clusterIPs?.[0] === 'None';
  if (clusterIP !== undefined && clusterIPs !== undefined && (clusterIP === 'None') !== (clusterIPs[0] === 'None')) {
    issues.push(invalid('/spec/clusterIPs/0', `must agree with clusterIP ${JSON.stringify(clusterIP)}: "None" in both or in neither`));
  }
  if (headless && exposedOnNodes) {
    issues.push(invalid(clusterIP === 'None' ? '/spec/clusterIP' : '/spec/clusterIPs/0', `may not be None when the service type is ${svc.spec.type}: a headless service is not exposed on nodes`));
  }
  return issues;
}

/** Warnings about a valid Service: what of its type and cluster IP Gantry cannot do, and what it does instead. */
export function serviceWarnings(svc: Service): { code: 'IGNORED_FIELD'; pointer: string; message: string; at: { pointer: string; key: boolean } }[] {
  const out: ReturnType<typeof serviceWarnings> = [];
  const warn = (pointer: string, message: string) => out.push({ code: 'IGNORED_FIELD', pointer, message, at: { pointer, key: true } });
  if (svc.spec.type === 'LoadBalancer') {
    warn('/spec/type', 'LoadBalancer is served as NodePort: every agent listens on each nodePort, but Gantry provisions no external load balancer (status.loadBalancer stays empty)');
  }
  const ips = [...(svc.spec.clusterIP !== undefined ? [['/spec/clusterIP', svc.spec.clusterIP] as const] : []), ...(svc.spec.clusterIPs ?? []).map((ip, i) => [`/spec/clusterIPs/${i}`, ip] as const)];
  for (const [pointer, ip] of ips) {
    if (ip === 'None') warn(pointer, 'headless: no agent listens for this service (Gantry has no cluster DNS to hand out its endpoints); the endpoints are listed by `gantry get services` and the API');
    else warn(pointer, `ignored: Gantry allocates no cluster IPs; ${JSON.stringify(ip)} is not used, the service is served on each agent's address`);
  }
  return out;
}

/**
 * nodePorts written in Git that an earlier Service (in path order) already uses: every agent binds
 * each on its address, so a number belongs to one service, whatever the protocol (as Kubernetes'
 * allocator). `earlier` is filled as services are checked; returns the issues of this one.
 */
export function checkNodePortsAcross(svc: Service, where: string, earlier: Map<number, string>): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  if (svc.spec.type !== 'NodePort' && svc.spec.type !== 'LoadBalancer') return issues;
  const mine = new Set<number>();
  svc.spec.ports.forEach((p, i) => {
    if (p.nodePort === undefined || mine.has(p.nodePort)) return;
    const other = earlier.get(p.nodePort);
    if (other !== undefined) issues.push(invalid(`/spec/ports/${i}/nodePort`, `nodePort ${p.nodePort} is already used by ${other}`));
    else mine.add(p.nodePort);
  });
  for (const n of mine) earlier.set(n, where);
  return issues;
}
