/**
 * What applying a revision would change, for every kind, field by field: the rows of `gantry diff`,
 * `gantry plan` and the pull-request plan. Deployments also say what happens to their instances.
 * A Secret's values never appear: each shows as `(secret: N bytes, sha256:abcd1234)`. Pure.
 */
import { createHash } from 'node:crypto';
import type { ConfigVersionRecord } from '../../state/records/config.ts';
import type { DeploymentRecord, NamespaceRecord } from '../../state/records/deployment.ts';
import type { ServiceRecord } from '../../state/records/service.ts';
import type { PlanRow } from '../../state/records/preview.ts';
import { configChanges } from './desired-state.ts';

/** Field changes listed per object before "... and N more". */
const MAX_FIELD_CHANGES = 20;
const MAX_VALUE_CHARS = 80;

export interface ObjectsDiff {
  added: PlanRow[];
  changed: PlanRow[];
  removed: PlanRow[];
}

/** How a Secret's value is shown: its size and a short hash, enough to tell versions apart. */
export function maskedSecret(base64: string): string {
  const bytes = Buffer.from(base64, 'base64');
  return `(secret: ${bytes.length} bytes, sha256:${createHash('sha256').update(bytes).digest('hex').slice(0, 8)})`;
}

function show(v: unknown): string {
  const text = v === undefined ? '(none)' : JSON.stringify(v);
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 3)}...` : text;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `path: before -> after` for every leaf that differs (arrays by index), in key order. */
export function fieldChanges(before: unknown, after: unknown, path = ''): string[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => fieldChanges(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((b, i) => fieldChanges(b, after[i], `${path}[${i}]`));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [`${path || '(object)'}: ${show(before)} -> ${show(after)}`];
}

function capped(changes: string[]): string[] {
  return changes.length <= MAX_FIELD_CHANGES ? changes : [...changes.slice(0, MAX_FIELD_CHANGES), `... and ${changes.length - MAX_FIELD_CHANGES} more`];
}

/** The parts of a deployment record a user wrote (not where, when or how it was hashed). */
function deploymentFields(d: DeploymentRecord): Record<string, unknown> {
  const { replicas, selector, selectorExpressions, strategy, minReadySeconds, revisionHistoryLimit, progressDeadlineSeconds, paused, rollback, template, labels, annotations } = d;
  return { replicas, selector, selectorExpressions, strategy, minReadySeconds, revisionHistoryLimit, progressDeadlineSeconds, paused, rollback, template, labels, annotations };
}

function bounds(d: DeploymentRecord): string {
  if (d.strategy.type === 'Recreate') return 'all at once (Recreate)';
  if (d.strategy.type === 'Canary') return 'in canary steps';
  return `maxSurge ${d.strategy.maxSurge}, maxUnavailable ${d.strategy.maxUnavailable}`;
}

/** What happens to a changed deployment's instances. */
function instanceImpact(b: DeploymentRecord, a: DeploymentRecord): string | undefined {
  if (b.templateHash !== a.templateHash) return `${a.replicas} instance(s) replaced, ${bounds(a)}${a.replicas !== b.replicas ? ` (from ${b.replicas})` : ''}`;
  if (a.replicas > b.replicas) return `${a.replicas - b.replicas} instance(s) created`;
  if (a.replicas < b.replicas) return `${b.replicas - a.replicas} instance(s) stopped`;
  return undefined;
}

function diffDeployments(before: DeploymentRecord[], after: DeploymentRecord[], out: ObjectsDiff): void {
  const key = (d: DeploymentRecord) => `${d.namespace}/${d.name}`;
  const old = new Map(before.map((d) => [key(d), d]));
  const next = new Map(after.map((d) => [key(d), d]));
  for (const [k, a] of next) {
    const b = old.get(k);
    if (!b) {
      out.added.push({ kind: 'Deployment', name: k, changes: [`${a.replicas} instance(s) created`, `template ${a.templateHash}`] });
      continue;
    }
    if (b.specHash === a.specHash) continue;
    const fields = fieldChanges(deploymentFields(b), deploymentFields(a));
    const impact = instanceImpact(b, a);
    out.changed.push({ kind: 'Deployment', name: k, changes: [...(impact ? [impact] : []), ...configChanges(b.configRefs, a.configRefs), ...capped(fields)] });
  }
  for (const [k, b] of old) if (!next.has(k)) out.removed.push({ kind: 'Deployment', name: k, changes: [`${b.replicas} instance(s) stopped`] });
}

function diffBy<T>(kind: string, before: T[], after: T[], name: (x: T) => string, fields: (x: T) => unknown, out: ObjectsDiff, describe: (x: T) => string[] = () => []): void {
  const old = new Map(before.map((x) => [name(x), x]));
  const next = new Map(after.map((x) => [name(x), x]));
  for (const [k, a] of next) {
    const b = old.get(k);
    if (!b) out.added.push({ kind, name: k, changes: describe(a) });
    else {
      const changes = fieldChanges(fields(b), fields(a));
      if (changes.length > 0) out.changed.push({ kind, name: k, changes: capped(changes) });
    }
  }
  for (const [k] of old) if (!next.has(k)) out.removed.push({ kind, name: k, changes: [] });
}

/** A config version's data as the diff may show it: a Secret's values masked. */
function configFields(c: ConfigVersionRecord): Record<string, unknown> {
  if (c.kind === 'Secret') return { type: c.type, data: Object.fromEntries(Object.entries(c.data).map(([k, v]) => [k, maskedSecret(v)])) };
  return { data: c.data, ...(c.binaryData ? { binaryData: Object.fromEntries(Object.entries(c.binaryData).map(([k, v]) => [k, `(binary: ${Buffer.from(v, 'base64').length} bytes)`])) } : {}) };
}

export interface DiffInputs {
  namespaces: NamespaceRecord[];
  deployments: DeploymentRecord[];
  services?: ServiceRecord[];
  configs?: ConfigVersionRecord[];
}

/** Every kind's rows, each list in kind order (Namespace, ConfigMap, Secret, Deployment, Service) then name. */
export function diffObjects(current: DiffInputs, next: DiffInputs): ObjectsDiff {
  const out: ObjectsDiff = { added: [], changed: [], removed: [] };
  diffBy('Namespace', current.namespaces, next.namespaces, (n) => n.name, (n) => ({ labels: n.labels, annotations: n.annotations }), out);
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    const of = (cs: ConfigVersionRecord[] | undefined) => (cs ?? []).filter((c) => c.kind === kind);
    diffBy(kind, of(current.configs), of(next.configs), (c) => `${c.namespace}/${c.name}`, configFields, out, (c) => [`${Object.keys(c.data).length + Object.keys(c.binaryData ?? {}).length} key(s)`]);
  }
  diffDeployments(current.deployments, next.deployments, out);
  if (next.services) {
    const fields = (s: ServiceRecord) => {
      const { commit: _c, file: _f, line: _l, namespace: _n, name: _m, ...rest } = s;
      return rest;
    };
    diffBy('Service', current.services ?? [], next.services, (s) => `${s.namespace}/${s.name}`, fields, out, (s) => [`ports ${s.ports.map((p) => p.port).join(', ')}`]);
  }
  return out;
}
