/**
 * ConfigMaps and Secrets as Redis keeps them, and how containers refer to them.
 *
 * Every content of a ConfigMap or Secret that a commit holds is stored as an immutable *version*
 * (`config:<ns>:<kind>:<name>` hash, field = version): the content hash of its data. A container's
 * env refers to a key of one exact version, and that version is part of the pod template, so:
 *   - changing a ConfigMap or Secret in Git changes the template hash of every deployment that
 *     uses it, which rolls them out within their strategy's bounds (and rolls back automatically
 *     to the revision that used the previous content, which is still stored);
 *   - an instance restarted later reads exactly the content its revision was made with.
 * Records hold references and content hashes, never values: deployment and instance records, the
 * API and diffs can be shown whole. Values live only in the config versions, which only the agents
 * (to start containers) and nothing that prints read.
 */
import { createHash } from 'node:crypto';

export type ConfigKind = 'ConfigMap' | 'Secret';

export interface ConfigVersionRecord {
  kind: ConfigKind;
  namespace: string;
  name: string;
  /** configVersion() of the content: 16 hex characters. */
  version: string;
  /** Secret only: its `type` (Opaque, kubernetes.io/dockerconfigjson, ...). */
  type?: string;
  /**
   * ConfigMap: `data` as written (text). Secret: every value base64-encoded, `stringData` merged
   * over the decoded `data` as Kubernetes does.
   */
  data: Record<string, string>;
  /** ConfigMap only: `binaryData` (base64). */
  binaryData?: Record<string, string>;
  /** The commit that first stored this version. */
  commit: string;
  /** `immutable: true` in that commit: later commits may not change its content. */
  immutable?: true;
}

/** Content hash of a ConfigMap's or Secret's data: what names its version. */
export function configVersion(content: { kind: ConfigKind; type?: string; data: Record<string, string>; binaryData?: Record<string, string> }): string {
  const sorted = (m: Record<string, string> | undefined) => (m ? Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : {});
  const canonical = JSON.stringify([content.kind, content.type ?? '', sorted(content.data), sorted(content.binaryData)]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** One key of one version of a ConfigMap or Secret, as an env var refers to it. */
export interface ConfigKeyRef {
  name: string;
  key: string;
  /** The version the revision uses; absent when `optional` and the object or key is not in the commit. */
  version?: string;
  optional?: boolean;
}

/**
 * One env var of a container, resolved as far as the reconciler can: literal values (and
 * resourceFieldRef, which it computes) are `value`; the rest the agent resolves when it starts the
 * container. Order matters: as in Kubernetes, `$(NAME)` in a value refers to variables defined
 * before it (and to envFrom's).
 */
export type EnvSpec =
  | { name: string; value: string }
  | { name: string; configMapKeyRef: ConfigKeyRef }
  | { name: string; secretKeyRef: ConfigKeyRef }
  /** metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, status.podIP, status.hostIP. */
  | { name: string; fieldRef: { fieldPath: string } };

/** envFrom: every key of one version of a ConfigMap or Secret, optionally prefixed. */
export interface EnvFromSpec {
  kind: ConfigKind;
  name: string;
  /** Absent when `optional` and the object is not in the commit. */
  version?: string;
  optional?: boolean;
  prefix?: string;
}

/**
 * "<ns>/<kind>/<name>@<version>" of every ConfigMap and Secret version a template's containers
 * refer to, of its imagePullSecrets and of its configMap and secret volumes, sorted: part of the
 * template's identity, and what keeps a version from being pruned. Pull secrets count as any other Secret a template uses: a rotated or
 * fixed credential rolls the deployment within its strategy's bounds (Kubernetes keeps running pods
 * and uses the new Secret at the next pull only), and a rollback returns to the credentials its
 * revision had. Why: a revision's template is kept whole by its template hash (rollout state, and
 * every instance record copies it), so versions outside the hash would leave every instance of a
 * revision, later ones included, on the credentials it was first made with, and a commit fixing a
 * wrong password could never reach an instance waiting on ImagePullFailed.
 */
export function referencedVersions(
  namespace: string,
  containers: readonly { env: readonly EnvSpec[]; envFrom?: readonly EnvFromSpec[] }[],
  imagePullSecrets: readonly { name: string; version: string }[] = [],
  // configMap and secret volumes (InstanceTemplate.volumes; typed by shape: instance.ts imports this module).
  // A mounted content is used as env is: its change rolls the pod, and a revision's mounts are kept.
  volumes: readonly { name: string; configMap?: { name: string; version?: string }; secret?: { name: string; version?: string } }[] = [],
): string[] {
  const out = new Set<string>(imagePullSecrets.map((s) => `${namespace}/Secret/${s.name}@${s.version}`));
  for (const v of volumes) {
    if (v.configMap?.version) out.add(`${namespace}/ConfigMap/${v.configMap.name}@${v.configMap.version}`);
    if (v.secret?.version) out.add(`${namespace}/Secret/${v.secret.name}@${v.secret.version}`);
  }
  for (const c of containers) {
    for (const e of c.env) {
      if ('configMapKeyRef' in e && e.configMapKeyRef.version) out.add(`${namespace}/ConfigMap/${e.configMapKeyRef.name}@${e.configMapKeyRef.version}`);
      if ('secretKeyRef' in e && e.secretKeyRef.version) out.add(`${namespace}/Secret/${e.secretKeyRef.name}@${e.secretKeyRef.version}`);
    }
    for (const f of c.envFrom ?? []) if (f.version) out.add(`${namespace}/${f.kind}/${f.name}@${f.version}`);
  }
  return [...out].sort();
}
