import type { ConfigKind, ConfigVersionRecord, EnvSpec } from '../state/records/config.ts';
import type { ContainerSpec, InstanceRecord } from '../state/records/instance.ts';

/**
 * A container's environment as the kubelet builds it (pkg/kubelet/kubelet_pods.go,
 * makeEnvironmentVariables), from the references the reconciler pinned to exact versions:
 *   1. envFrom, in order: every key of the ConfigMap's `data` (not binaryData) or the Secret's
 *      decoded `data`, prefixed; keys that are not valid env names are skipped with a warning;
 *   2. env, in order, each overriding what came before: literals (with `$(VAR)` expanded against
 *      what is defined so far, then the service variables), key refs, fieldRefs;
 *   3. `$(VAR)` in command and args, against the result (and the service variables).
 * Pure: the versions are fetched before (fetchConfigVersions), so every rule is unit-tested
 * without Redis. Nothing here ever puts a value into a message: errors and warnings name objects,
 * keys and versions only, because they end up in statuses, events and logs that anyone may read.
 */

export interface LiteralEnv {
  name: string;
  value: string;
}

/** What fieldRefs read: the pod as Gantry has it (see podFacts in local-instance.ts). */
export interface PodFacts {
  /** metadata.name */
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** spec.nodeName */
  nodeName: string;
  /** status.podIP: a process has no address of its own, so it is the node's (as hostNetwork pods). */
  podIP: string;
  hostIP: string;
}

export interface EnvWarning {
  reason: 'InvalidEnvironmentVariableNames';
  message: string;
}

export type EnvResolution =
  | { ok: true; env: LiteralEnv[]; command: string[]; args: string[]; warnings: EnvWarning[] }
  | { ok: false; error: string; warnings: EnvWarning[] };

/** One stored version a container needs; the namespace is always the instance's, as in Kubernetes. */
export interface VersionRef {
  kind: ConfigKind;
  name: string;
  version: string;
}

/** Fetched versions by versionKey(); a missing entry or `undefined` is a version that is not stored. */
export type FetchedVersions = ReadonlyMap<string, ConfigVersionRecord | undefined>;

export function versionKey(r: VersionRef): string {
  return `${r.kind}/${r.name}@${r.version}`;
}

/** Kubernetes' IsEnvVarName (validation.go): what may name an env var. */
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** The fieldPaths Kubernetes allows in env (validEnvDownwardAPIFieldPathExpressions) that Gantry can answer. */
const FIELD_PATHS: Record<string, (p: PodFacts) => string> = {
  'metadata.name': (p) => p.name,
  'metadata.namespace': (p) => p.namespace,
  'metadata.uid': (p) => p.uid,
  'spec.nodeName': (p) => p.nodeName,
  'status.podIP': (p) => p.podIP,
  'status.podIPs': (p) => p.podIP,
  'status.hostIP': (p) => p.hostIP,
  'status.hostIPs': (p) => p.hostIP,
};

/** How messages name an object: the kind as in keys.ts, then namespace/name. */
function describe(kind: ConfigKind, namespace: string, name: string): string {
  return `${kind === 'Secret' ? 'secret' : 'configmap'} ${namespace}/${name}`;
}

/** Every version the container's env refers to (refs without a version are optional and missing: nothing to fetch). */
export function versionRefs(c: Pick<ContainerSpec, 'env' | 'envFrom'>): VersionRef[] {
  const refs = new Map<string, VersionRef>();
  const add = (r: { kind: ConfigKind; name: string; version?: string }) => {
    if (r.version !== undefined) refs.set(versionKey(r as VersionRef), { kind: r.kind, name: r.name, version: r.version });
  };
  for (const f of c.envFrom ?? []) add(f);
  for (const e of c.env) {
    if ('configMapKeyRef' in e) add({ kind: 'ConfigMap', ...e.configMapKeyRef });
    else if ('secretKeyRef' in e) add({ kind: 'Secret', ...e.secretKeyRef });
  }
  return [...refs.values()];
}

/** A value as the container sees it: ConfigMap data is text; Secret data is base64 of the bytes. */
function valueOf(record: ConfigVersionRecord, raw: string): string {
  return record.kind === 'Secret' ? Buffer.from(raw, 'base64').toString('utf8') : raw;
}

export interface EnvInput {
  container: Pick<ContainerSpec, 'env' | 'envFrom' | 'command' | 'args'>;
  versions: FetchedVersions;
  pod: PodFacts;
  /** <NAME>_SERVICE_HOST/_PORT: like the kubelet's service env, a fallback source of `$(VAR)`. */
  services?: Record<string, string>;
}

export function resolveContainerEnv(input: EnvInput): EnvResolution {
  const { container, versions, pod } = input;
  const services = input.services ?? {};
  const warnings: EnvWarning[] = [];
  const env = new Map<string, string>();
  /** Where each variable came from, for the one error that must name it without its value. */
  const source = new Map<string, string>();
  const fail = (error: string): EnvResolution => ({ ok: false, error, warnings });
  // Own properties only: a `$(constructor)` must not find Object.prototype's.
  const service = (name: string) => (Object.hasOwn(services, name) ? services[name] : undefined);
  const lookup = (name: string) => env.get(name) ?? service(name);

  for (const f of container.envFrom ?? []) {
    // No version: optional and absent from the commit (the reconciler only leaves it out then).
    if (f.version === undefined) continue;
    const what = describe(f.kind, pod.namespace, f.name);
    const record = versions.get(versionKey({ kind: f.kind, name: f.name, version: f.version }));
    if (!record) {
      if (f.optional) continue;
      return fail(`${what} version ${f.version} is not stored`);
    }
    const invalid: string[] = [];
    // Sorted: Kubernetes' map order is random; ours should not be.
    for (const key of Object.keys(record.data).sort()) {
      const name = (f.prefix ?? '') + key;
      if (!ENV_NAME.test(name)) {
        invalid.push(name);
        continue;
      }
      env.set(name, valueOf(record, record.data[key]!));
      source.set(name, `envFrom ${what}`);
    }
    if (invalid.length > 0) {
      warnings.push({
        reason: 'InvalidEnvironmentVariableNames',
        message: `keys [${invalid.sort().join(', ')}] from the envFrom ${what} were skipped since they are not valid environment variable names`,
      });
    }
  }

  for (const e of container.env) {
    const value = resolveOne(e, versions, pod, lookup);
    if (value === undefined) continue;
    if (typeof value === 'object') return fail(value.error);
    env.set(e.name, value);
    source.set(e.name, `env ${e.name}`);
  }

  // A NUL cannot be in an environment, and Node's error for one would quote the value.
  for (const [name, value] of env) {
    if (value.includes('\0')) return fail(`${source.get(name)}: variable ${name} holds a NUL byte, which an environment variable cannot`);
  }
  // Kubernetes expands command and args against the container's whole env (service env included).
  const command = container.command.map((s) => expand(s, lookup));
  const args = container.args.map((s) => expand(s, lookup));
  for (const [what, list] of [['command', command], ['args', args]] as const) {
    const i = list.findIndex((s) => s.includes('\0'));
    if (i >= 0) return fail(`${what}[${i}] holds a NUL byte after $(VAR) expansion`);
  }
  return { ok: true, env: [...env].map(([name, value]) => ({ name, value })), command, args, warnings };
}

/** One env entry's value; undefined: skipped (an optional reference to something missing). */
function resolveOne(e: EnvSpec, versions: FetchedVersions, pod: PodFacts, lookup: (name: string) => string | undefined): string | { error: string } | undefined {
  if ('value' in e) return e.value === '' ? '' : expand(e.value, lookup);
  if ('fieldRef' in e) return fieldValue(e.name, e.fieldRef.fieldPath, pod);
  const [kind, ref] = 'configMapKeyRef' in e ? (['ConfigMap', e.configMapKeyRef] as const) : (['Secret', e.secretKeyRef] as const);
  if (ref.version === undefined) return undefined;
  const what = describe(kind, pod.namespace, ref.name);
  const record = versions.get(versionKey({ kind, name: ref.name, version: ref.version }));
  if (!record) return ref.optional ? undefined : { error: `${what} version ${ref.version} is not stored` };
  // ConfigMap refs read `data` only, as Kubernetes does (binaryData is for volumes).
  const raw = Object.hasOwn(record.data, ref.key) ? record.data[ref.key] : undefined;
  if (raw === undefined) return ref.optional ? undefined : { error: `${what} has no key "${ref.key}"` };
  return valueOf(record, raw);
}

function fieldValue(envName: string, path: string, pod: PodFacts): string | { error: string } {
  const simple = FIELD_PATHS[path];
  if (simple) return simple(pod);
  // metadata.labels['k'] / metadata.annotations['k'] (fieldpath.SplitMaybeSubscriptedPath); absent is "".
  const m = /^(metadata\.labels|metadata\.annotations)\['(.+)'\]$/.exec(path);
  if (m) {
    const map = m[1] === 'metadata.labels' ? pod.labels : pod.annotations;
    return Object.hasOwn(map, m[2]!) ? map[m[2]!]! : '';
  }
  const known = [...Object.keys(FIELD_PATHS), "metadata.labels['KEY']", "metadata.annotations['KEY']"].join(', ');
  return { error: `env ${envName}: fieldRef ${path} is not supported (supported: ${known})` };
}

/**
 * Kubernetes' $(VAR) expansion (third_party/forked/golang/expansion): `$(NAME)` becomes the
 * variable's value, `$$` a literal `$` (so `$$(NAME)` stays `$(NAME)`), a name nothing defines
 * stays `$(NAME)` as written, and an unclosed `$(` or a `$` before anything else stays as is.
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    if (next === '$') {
      out += '$';
      cursor += 1;
    } else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close < 0) {
        out += '$(';
        cursor += 1;
      } else {
        const name = input.slice(cursor + 2, close);
        out += lookup(name) ?? `$(${name})`;
        cursor = close;
      }
    } else {
      out += `$${next}`;
      cursor += 1;
    }
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/** The spec the runtimes get: the resolved env as literals, no envFrom, command and args expanded. */
export function resolvedSpec(spec: ContainerSpec, r: Extract<EnvResolution, { ok: true }>): ContainerSpec {
  const { envFrom: _resolved, ...rest } = spec;
  return { ...rest, env: r.env, command: r.command, args: r.args };
}

/** Reads one version; resolves undefined when it is not stored. */
export type ConfigReader = (namespace: string, kind: ConfigKind, name: string, version: string) => Promise<ConfigVersionRecord | undefined>;

/**
 * Fetches every version the container needs. Rejects, with names only, when Redis fails or does
 * not answer within `timeoutMs` (its client queues commands while disconnected, and a start must
 * not hang under the instance's mutex): the caller turns that into a retried waiting state.
 */
export async function fetchConfigVersions(namespace: string, c: Pick<ContainerSpec, 'env' | 'envFrom'>, read: ConfigReader, timeoutMs = 5_000): Promise<Map<string, ConfigVersionRecord | undefined>> {
  const refs = versionRefs(c);
  const out = new Map<string, ConfigVersionRecord | undefined>();
  await Promise.all(
    refs.map(async (r) => {
      const what = `${describe(r.kind, namespace, r.name)} version ${r.version}`;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`reading ${what}: Redis did not answer within ${timeoutMs / 1000}s`)), timeoutMs);
      });
      try {
        out.set(versionKey(r), await Promise.race([read(namespace, r.kind, r.name, r.version), timeout]));
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new Error(why.startsWith('reading ') ? why : `reading ${what}: ${why}`);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return out;
}

/**
 * What fieldRefs read. metadata.name is the id without its `<namespace>.`: `<deployment>-<hash>-<ordinal>`,
 * shaped like a pod name and unique in the namespace. An instance has no address of its own (a
 * process shares the node's), so podIP is the node's address, as hostIP, unless the pod has a
 * sandbox of its own (a Docker pod's pause container): then it is the sandbox's. Annotations are the pod template's; an absent one reads as "", as in
 * Kubernetes.
 */
export function podFacts(record: InstanceRecord, node: string, address: string, podIP = address): PodFacts {
  const prefix = `${record.namespace}.`;
  return {
    name: record.id.startsWith(prefix) ? record.id.slice(prefix.length) : record.id,
    namespace: record.namespace,
    uid: record.uid,
    labels: record.labels,
    annotations: record.annotations ?? {},
    nodeName: node,
    podIP,
    hostIP: address,
  };
}

/**
 * Fetch + resolve for one start: the spec for the runtimes, or why it cannot start yet (names
 * only). Either way the warnings, which the caller records as events.
 */
export async function resolveForStart(
  record: InstanceRecord,
  spec: ContainerSpec,
  o: { node: string; address: string; read: ConfigReader; services?: Record<string, string>; timeoutMs?: number; podIP?: string },
): Promise<{ spec: ContainerSpec; warnings: EnvWarning[] } | { error: string; warnings: EnvWarning[] }> {
  let versions: FetchedVersions;
  try {
    versions = await fetchConfigVersions(record.namespace, spec, o.read, o.timeoutMs);
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err), warnings: [] };
  }
  const r = resolveContainerEnv({ container: spec, versions, pod: podFacts(record, o.node, o.address, o.podIP), ...(o.services ? { services: o.services } : {}) });
  return r.ok ? { spec: resolvedSpec(spec, r), warnings: r.warnings } : { error: r.error, warnings: r.warnings };
}
