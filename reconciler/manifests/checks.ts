/**
 * Checks of a schema-valid Deployment that JSON Schema cannot express: relations between fields,
 * uniqueness within lists, and quantities that must parse. They run on what the user wrote (before
 * defaults) so pointers refer to it.
 */
import type { Deployment, IntOrPercent, Service } from '../../schemas/generated/index.ts';
import { escapePointerToken } from './pointer.ts';
import { checkProbes } from './probes.ts';
import { checkResources } from './resources.ts';
import { MAX_PAUSE_SECONDS } from './limits.ts';
import type { ManifestIssue } from './manifest-issue.ts';

function invalid(pointer: string, message: string, key = false): ManifestIssue {
  return key ? { code: 'INVALID_VALUE', pointer, message, at: { pointer, key } } : { code: 'INVALID_VALUE', pointer, message };
}

function checkSelector(d: Deployment, issues: ManifestIssue[]): void {
  const matchLabels = d.spec.selector?.matchLabels;
  if (!matchLabels) return;
  const templateLabels = d.spec.template.metadata.labels;
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

function checkContainers(d: Deployment, issues: ManifestIssue[]): void {
  const base = '/spec/template/spec/containers';
  const containers = d.spec.template.spec.containers;
  checkUnique(
    containers,
    (c) => c.name,
    (i) => `${base}/${i}/name`,
    (name, first) => `duplicate container name "${name}", also used by ${base}/${first}`,
    issues,
  );
  containers.forEach((c, i) => {
    const ports = c.ports ?? [];
    const portsBase = `${base}/${i}/ports`;
    checkUnique(
      ports,
      (p) => p.name,
      (j) => `${portsBase}/${j}/name`,
      (name, first) => `duplicate port name "${name}" in container "${c.name}", also used by ${portsBase}/${first}`,
      issues,
    );
    checkUnique(
      ports,
      (p) => p.containerPort,
      (j) => `${portsBase}/${j}/containerPort`,
      (port, first) => `duplicate containerPort ${port} in container "${c.name}", also used by ${portsBase}/${first}`,
      issues,
    );
    issues.push(...checkProbes(c, `${base}/${i}`));
    // The schema checks the shape; parsing, the maxima, mixed forms and request <= limit are here.
    issues.push(...checkResources(c.resources, `${base}/${i}/resources`));
  });
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

/** What the Service schema cannot say: unique port names and numbers, names when several ports. */
export function checkService(svc: Service): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const names = new Map<string, number>();
  const ports = new Map<number, number>();
  svc.spec.ports.forEach((p, i) => {
    const pointer = `/spec/ports/${i}`;
    if (p.name !== undefined) {
      if (names.has(p.name)) issues.push(invalid(`${pointer}/name`, `duplicate port name "${p.name}" (also /spec/ports/${names.get(p.name)})`));
      else names.set(p.name, i);
    } else if (svc.spec.ports.length > 1) {
      issues.push(invalid(pointer, "must have property 'name' when a service has several ports", true));
    }
    if (ports.has(p.port)) issues.push(invalid(`${pointer}/port`, `duplicate port ${p.port} (also /spec/ports/${ports.get(p.port)})`));
    else ports.set(p.port, i);
  });
  return issues;
}
