/**
 * ConfigMaps and Secrets in desired state: each object's content becomes a version
 * (state/records/config.ts), and a container's env refers to exact versions. Pure.
 */
import type { ConfigMapObject, ContainerObject, LoadedManifest, SecretObject } from '../manifests/types.ts';
import { configVersion, type ConfigKind, type ConfigVersionRecord, type EnvFromSpec, type EnvSpec } from '../../state/records/config.ts';
import type { ConfigVolumeSpec, HostPathType, MountSpec, VolumeSpec } from '../../state/records/instance.ts';
import type { ConfigMapVolumeSource, VolumeMount, Volume } from '../../schemas/generated/index.ts';
import { parseCpu, parseMemory } from '../manifests/quantity.ts';
import type { ResolvedResources } from '../manifests/resources.ts';

/** "<ns>/<kind>/<name>" -> the version of that object in this commit. */
export type ConfigVersions = Map<string, ConfigVersionRecord>;

export const configKey = (namespace: string, kind: ConfigKind, name: string) => `${namespace}/${kind}/${name}`;

export function toConfigVersion(m: ConfigMapObject | SecretObject, commit: string): ConfigVersionRecord {
  // `immutable` is not content: it is not hashed into the version.
  const base = { kind: m.kind, namespace: m.metadata.namespace, name: m.metadata.name, commit, ...(m.immutable ? { immutable: true as const } : {}) };
  if (m.kind === 'Secret') {
    const content = { kind: m.kind, type: m.type, data: m.data };
    return { ...base, ...content, version: configVersion(content) };
  }
  const content = { kind: m.kind, data: m.data, ...(Object.keys(m.binaryData).length > 0 ? { binaryData: m.binaryData } : {}) };
  return { ...base, ...content, version: configVersion(content) };
}

export function configVersionsOf(objects: readonly Pick<LoadedManifest, 'manifest'>[], commit: string): ConfigVersions {
  const out: ConfigVersions = new Map();
  for (const { manifest: m } of objects) {
    if (m.kind === 'ConfigMap' || m.kind === 'Secret') out.set(configKey(m.metadata.namespace, m.kind, m.metadata.name), toConfigVersion(m, commit));
  }
  return out;
}

/** Whether `key` is in that version's data (a ConfigMap's binaryData cannot feed env). */
export function hasKey(v: ConfigVersionRecord | undefined, key: string): boolean {
  return v !== undefined && Object.hasOwn(v.data, key);
}

/**
 * spec.imagePullSecrets as records hold them: each Secret at its version in this commit, in the
 * order written (the agent tries their credentials in that order). The loader has checked that each
 * is in the commit (pull-secrets.ts); one that is not is left out rather than made up.
 */
export function toPullSecrets(refs: readonly { name: string }[] | undefined, namespace: string, configs: ConfigVersions): { name: string; version: string }[] {
  const out: { name: string; version: string }[] = [];
  for (const { name } of refs ?? []) {
    const v = configs.get(configKey(namespace, 'Secret', name));
    if (v && !out.some((s) => s.name === name)) out.push({ name, version: v.version });
  }
  return out;
}

/** resourceFieldRef: the container's limit (else its request) in units of `divisor`, rounded up as Kubernetes does. */
function resourceValue(resources: ResolvedResources, resource: string, divisor: string | number | undefined): string {
  const isCpu = resource.endsWith('.cpu');
  const limit = isCpu ? resources.limits?.cpuMilli : resources.limits?.memoryBytes;
  const request = isCpu ? resources.cpuMilli : resources.memoryBytes;
  const amount = resource.startsWith('limits.') ? (limit ?? request) : request;
  const unit = isCpu ? parseCpu(divisor ?? '1') : parseMemory(divisor ?? 1);
  return String(Math.ceil(amount / Math.max(unit, 1)));
}

/**
 * A container's env and envFrom as records hold them. `resourcesOf` gives the resolved resources
 * of a container of the same pod (resourceFieldRef may name another one).
 */
export function toEnvSpecs(c: ContainerObject, namespace: string, configs: ConfigVersions, resourcesOf: (container: string) => ResolvedResources): { env: EnvSpec[]; envFrom?: EnvFromSpec[] } {
  const ref = (kind: ConfigKind, r: { name: string; key: string; optional?: boolean }) => {
    const v = configs.get(configKey(namespace, kind, r.name));
    return { name: r.name, key: r.key, ...(hasKey(v, r.key) ? { version: v!.version } : {}), ...(r.optional ? { optional: true } : {}) };
  };
  const env: EnvSpec[] = c.env.map((e): EnvSpec => {
    const from = e.valueFrom;
    if (!from) return { name: e.name, value: e.value ?? '' };
    if (from.configMapKeyRef) return { name: e.name, configMapKeyRef: ref('ConfigMap', from.configMapKeyRef) };
    if (from.secretKeyRef) return { name: e.name, secretKeyRef: ref('Secret', from.secretKeyRef) };
    if (from.fieldRef) return { name: e.name, fieldRef: { fieldPath: from.fieldRef.fieldPath } };
    const r = from.resourceFieldRef!;
    return { name: e.name, value: resourceValue(resourcesOf(r.containerName ?? c.name), r.resource, r.divisor) };
  });
  const envFrom = (c.envFrom ?? []).map((f): EnvFromSpec => {
    const kind: ConfigKind = f.secretRef ? 'Secret' : 'ConfigMap';
    const r = (f.secretRef ?? f.configMapRef)!;
    const v = configs.get(configKey(namespace, kind, r.name));
    return { kind, name: r.name, ...(v ? { version: v.version } : {}), ...(r.optional ? { optional: true } : {}), ...(f.prefix ? { prefix: f.prefix } : {}) };
  });
  return envFrom.length > 0 ? { env, envFrom } : { env };
}

/** Kubernetes' default permission bits of a volume's files: 0644. */
const DEFAULT_FILE_MODE = 0o644;
/** A secret volume's files are 0400 unless the manifest says otherwise (Gantry's choice: Kubernetes uses 0644 here too). */
const DEFAULT_SECRET_FILE_MODE = 0o400;

/**
 * spec.volumes as records hold them (VolumeSpec). A configMap or secret volume names the object's
 * version in this commit, whichever keys it uses (the version is the content; referencedVersions
 * puts it in the template hash). A volume left without a kind (its kind is one Kubernetes defines
 * and Gantry does not: the loader dropped it with a warning, and rejects mounts of it) is not recorded.
 */
export function toVolumeSpecs(volumes: readonly Volume[] | undefined, namespace: string, configs: ConfigVersions, resourcesOf: (container: string) => ResolvedResources): VolumeSpec[] {
  const config = (kind: ConfigKind, name: string, src: Omit<ConfigMapVolumeSource, 'name'>): ConfigVolumeSpec => {
    const v = configs.get(configKey(namespace, kind, name));
    const items = src.items?.map((i) => ({ key: i.key, path: i.path, ...(i.mode !== undefined ? { mode: i.mode } : {}) }));
    return { name, ...(v ? { version: v.version } : {}), ...(items ? { items } : {}), defaultMode: src.defaultMode ?? (kind === 'Secret' ? DEFAULT_SECRET_FILE_MODE : DEFAULT_FILE_MODE), ...(src.optional ? { optional: true as const } : {}) };
  };
  const out: VolumeSpec[] = [];
  for (const v of volumes ?? []) {
    const { name } = v;
    if (v.emptyDir) {
      const { medium, sizeLimit } = v.emptyDir;
      // A zero limit is no limit, as for resources (and the kubelet sizes no tmpfs by it).
      const bytes = sizeLimit === undefined ? 0 : parseMemory(sizeLimit);
      out.push({ name, emptyDir: { ...(medium === 'Memory' ? { medium } : {}), ...(bytes > 0 ? { sizeLimitBytes: bytes } : {}) } });
    } else if (v.configMap) out.push({ name, configMap: config('ConfigMap', v.configMap.name, v.configMap) });
    else if (v.secret) out.push({ name, secret: config('Secret', v.secret.secretName, v.secret) });
    else if (v.hostPath) {
      // The loader rejected CharDevice and BlockDevice; "" (check nothing) is left out.
      out.push({ name, hostPath: { path: v.hostPath.path, ...(v.hostPath.type ? { type: v.hostPath.type as HostPathType } : {}) } });
    } else if (v.downwardAPI) {
      const items = (v.downwardAPI.items ?? []).map((i) => {
        const mode = i.mode !== undefined ? { mode: i.mode } : {};
        if (i.fieldRef) return { path: i.path, ...mode, fieldRef: { fieldPath: i.fieldRef.fieldPath } };
        // As for env, the reconciler computes it: the limits are in the template (the loader checked the container exists).
        const r = i.resourceFieldRef!;
        return { path: i.path, ...mode, value: resourceValue(resourcesOf(r.containerName), r.resource, r.divisor) };
      });
      out.push({ name, downwardAPI: { items, defaultMode: v.downwardAPI.defaultMode ?? DEFAULT_FILE_MODE } });
    }
  }
  return out;
}

/** A container's volumeMounts as records hold them; false and "" (the defaults) are left out. */
export function toMountSpecs(mounts: readonly VolumeMount[]): MountSpec[] {
  return mounts.map((m) => ({ name: m.name, mountPath: m.mountPath, ...(m.readOnly ? { readOnly: true as const } : {}), ...(m.subPath ? { subPath: m.subPath } : {}) }));
}

/**
 * Errors for ConfigMaps and Secrets the applied commit marked `immutable` whose content (or
 * immutability) this commit changes; `file:line:col Kind ns/name /data: ...` like loader errors.
 */
export function immutableChanges(objects: readonly LoadedManifest[], next: readonly ConfigVersionRecord[], applied: readonly ConfigVersionRecord[]): string[] {
  const before = new Map(applied.map((c) => [configKey(c.namespace, c.kind, c.name), c]));
  const where = new Map<string, LoadedManifest>();
  for (const o of objects) {
    const m = o.manifest;
    if (m.kind === 'ConfigMap' || m.kind === 'Secret') where.set(configKey(m.metadata.namespace, m.kind, m.metadata.name), o);
  }
  const errors: string[] = [];
  for (const c of next) {
    const key = configKey(c.namespace, c.kind, c.name);
    const b = before.get(key);
    if (!b?.immutable || (b.version === c.version && c.immutable)) continue;
    const o = where.get(key);
    const at = o ? `${o.file}:${o.line}:${o.column} ` : '';
    const what = b.version !== c.version ? 'its data may not change' : 'it may not become mutable';
    errors.push(`${at}${c.kind} ${c.namespace}/${c.name} /${b.version !== c.version ? 'data' : 'immutable'}: the ${c.kind} is immutable: ${what} (as in Kubernetes: create one under a new name and point the deployments at it)`);
  }
  return errors;
}
