/**
 * A Deployment's references to ConfigMaps and Secrets, checked against the commit: everything a
 * GitOps repository runs is in the repository, so a reference to an object or key it lacks is a
 * mistake to report at file:line, not a pod that waits forever (Kubernetes' CreateContainerConfigError).
 * `optional: true` references may be missing. Pure.
 */
import type { Deployment } from '../../schemas/generated/index.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import type { DeploymentObject, ManifestObject } from './types.ts';
import { podContainers } from './init-containers.ts';

export interface MissingReference {
  pointer: string;
  message: string;
}

function keysOf(o: ManifestObject | undefined): Set<string> | undefined {
  if (!o) return undefined;
  if (o.kind === 'ConfigMap') return new Set(Object.keys(o.data));
  if (o.kind === 'Secret') return new Set(Object.keys(o.data));
  return undefined;
}

/** `configs`: "<ns>/<kind>/<name>" -> the commit's ConfigMaps and Secrets. */
export function missingReferences(d: DeploymentObject, configs: ReadonlyMap<string, ManifestObject>): MissingReference[] {
  const ns = d.metadata.namespace;
  const out: MissingReference[] = [];
  // Init containers refer to ConfigMaps and Secrets as containers do, and may name each other in resourceFieldRef.
  const all = podContainers(d.spec.template.spec);
  for (const { container: c, pointer: base } of all) {
    c.env.forEach((e, j) => {
      const from = e.valueFrom;
      if (!from) return;
      const at = `${base}/env/${j}/valueFrom`;
      for (const [field, kind] of [['configMapKeyRef', 'ConfigMap'], ['secretKeyRef', 'Secret']] as const) {
        const ref = from[field];
        if (!ref || ref.optional) continue;
        const keys = keysOf(configs.get(`${ns}/${kind}/${ref.name}`));
        if (!keys) out.push({ pointer: `${at}/${field}/name`, message: `${kind} ${ns}/${ref.name} is not defined in this commit (mark the reference optional: true if it may be missing)` });
        else if (!keys.has(ref.key)) out.push({ pointer: `${at}/${field}/key`, message: `${kind} ${ns}/${ref.name} has no key ${JSON.stringify(ref.key)} (its keys: ${[...keys].sort().join(', ') || 'none'})` });
      }
      const container = from.resourceFieldRef?.containerName;
      if (container !== undefined && !all.some((x) => x.container.name === container)) {
        out.push({ pointer: `${at}/resourceFieldRef/containerName`, message: `no container "${container}" in this pod` });
      }
    });
    (c.envFrom ?? []).forEach((f, j) => {
      for (const [field, kind] of [['configMapRef', 'ConfigMap'], ['secretRef', 'Secret']] as const) {
        const ref = f[field];
        if (!ref || ref.optional) continue;
        if (!configs.has(`${ns}/${kind}/${ref.name}`)) out.push({ pointer: `${base}/envFrom/${j}/${field}/name`, message: `${kind} ${ns}/${ref.name} is not defined in this commit (mark the reference optional: true if it may be missing)` });
      }
    });
  }
  return out;
}

/** What the schema leaves open: an env var has `value` or `valueFrom`, an envFrom one source. */
export function checkEnvSources(d: Deployment): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  for (const { container: c, pointer: base } of podContainers(d.spec.template.spec)) {
    (c.env ?? []).forEach((e, j) => {
      if (e.valueFrom && e.value !== undefined && e.value !== '') issues.push({ code: 'INVALID_VALUE', pointer: `${base}/env/${j}`, message: 'may have value or valueFrom, not both' });
    });
    (c.envFrom ?? []).forEach((f, j) => {
      const sources = [f.configMapRef, f.secretRef].filter((x) => x !== undefined).length;
      if (sources !== 1) issues.push({ code: 'INVALID_VALUE', pointer: `${base}/envFrom/${j}`, message: 'must have exactly one of configMapRef and secretRef' });
    });
  }
  return issues;
}
