import type Docker from 'dockerode';
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigKind, ConfigVersionRecord, EnvFromSpec } from '../state/records/config.ts';
import type { ConfigVolumeSpec, ContainerSpec, DownwardAPIFileSpec, InstanceRecord, MountSpec, VolumeSpec } from '../state/records/instance.ts';
import { fetchConfigVersions, podFacts, versionKey, type ConfigReader, type FetchedVersions, type PodFacts } from './container-env.ts';
import { checkHostPath, defaultMemoryRoot, diskUsage, ensureOwnDir, ensureSubPath, insideRoot, pruneExcept, withParents, writeFileAtomic } from './volume-files.ts';

/**
 * Pod volumes on the node (README "Volumes"): what `record.volumes` become before the pod's
 * containers start, and how each runtime reaches them. preparePodVolumes runs at every (re)start
 * of a container of the pod: an emptyDir is made once and keeps its content for as long as the pod
 * (removePodVolumes), while configMap, secret and downwardAPI files are written again each time
 * from the exact versions the record names. dockerMounts and processVolumeEnv are pure.
 *
 * Where things are:
 *   - `<dir>/volumes/<name>`: emptyDir on disk, configMap, downwardAPI, and a Secret on a node
 *     without a tmpfs. `<dir>/volumes` is 0700: only the agent (and the engine, as root) goes in;
 *     containers see the volume directories they are given, not their parents.
 *   - `<memoryRoot>/gantry-<scope>/<uid>/<name>`: emptyDir medium Memory, and Secrets, on the tmpfs
 *     (/dev/shm). The scope keeps installations sharing a host apart, the uid recreated pods; both
 *     parents are 0700 and must be the agent's own real directories (/dev/shm is world-writable).
 * No value is ever put into an error or warning: they name volumes, objects, keys, paths and versions.
 */

export type VolumeKind = 'emptyDir' | 'configMap' | 'secret' | 'hostPath' | 'downwardAPI';

export interface PreparedVolume {
  name: string;
  kind: VolumeKind;
  /** The volume on the node: what Docker binds, and what a process gets in GANTRY_VOLUME_<NAME>. */
  hostPath: string;
  /** Under the memory root (a tmpfs): an emptyDir of medium Memory, or a Secret. */
  tmpfs: boolean;
  /** An emptyDir's sizeLimit (emptyDirOverLimit); absent: no limit. */
  sizeLimitBytes?: number;
}

/** Something set up otherwise than asked, for a Warning event on the instance. */
export interface VolumeWarning {
  reason: 'MemoryVolumeOnDisk';
  message: string;
}

export interface PrepareVolumesOptions {
  record: InstanceRecord;
  /** The instance dir (instance-dir.ts). */
  dir: string;
  /** The tmpfs root; absent: defaultMemoryRoot() (/dev/shm when it is a tmpfs); null: none. */
  memoryRoot?: string | null;
  /** agentScope(): isolates installations sharing the tmpfs. */
  scope: string;
  node: string;
  hostIP: string;
  /** status.podIP of downwardAPI files; absent: hostIP (an instance has no address of its own). */
  podIP?: string;
  read: ConfigReader;
  /** How long reading the versions may take (Redis may not answer); default 5 s. */
  timeoutMs?: number;
}

/** `error`: why the pod cannot start yet (a CreateContainerConfigError message; names only). */
export type PrepareVolumesResult = { volumes: PreparedVolume[]; warnings: VolumeWarning[] } | { error: string };

/** Kubernetes mounts these read-only whatever the mount says: their files are the agent's. */
const READ_ONLY_KINDS: ReadonlySet<VolumeKind> = new Set(['configMap', 'secret', 'downwardAPI']);
/** What may name a directory on the tmpfs: scopes are hex, uids hex or UUIDs. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
/** As the kubelet makes an emptyDir: any container user can write it. */
const EMPTY_DIR_MODE = 0o777;
/** The root of a configMap, secret or downwardAPI volume (the kubelet's atomic writer uses 0755). */
const FILES_DIR_MODE = 0o755;

const kindOf = (v: VolumeSpec): VolumeKind =>
  'emptyDir' in v ? 'emptyDir' : 'configMap' in v ? 'configMap' : 'secret' in v ? 'secret' : 'hostPath' in v ? 'hostPath' : 'downwardAPI';

function configSource(v: VolumeSpec): { kind: ConfigKind; src: ConfigVolumeSpec } | undefined {
  return 'configMap' in v ? { kind: 'ConfigMap', src: v.configMap } : 'secret' in v ? { kind: 'Secret', src: v.secret } : undefined;
}

/** How messages name an object, as container-env.ts does. */
const describe = (kind: ConfigKind, namespace: string, name: string) => `${kind === 'Secret' ? 'secret' : 'configmap'} ${namespace}/${name}`;

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The pod's tmpfs directory, `<memoryRoot>/gantry-<scope>/<uid>`. */
export function podMemoryDir(memoryRoot: string, scope: string, uid: string): string {
  return join(memoryRoot, `gantry-${scope}`, uid);
}

/** Which memory root a call means: absent is the default, null none. */
function memoryRootOf(memoryRoot: string | null | undefined): string | undefined {
  return memoryRoot === undefined ? defaultMemoryRoot() : (memoryRoot ?? undefined);
}

/**
 * Makes (or checks) every volume of the pod, and the subPaths its containers mount. Safe to repeat:
 * the start of every container of the pod calls it. An error leaves what was made so far, which
 * the next call reuses or rewrites.
 */
export async function preparePodVolumes(o: PrepareVolumesOptions): Promise<PrepareVolumesResult> {
  const { record } = o;
  const specs = record.volumes ?? [];
  if (specs.length === 0 && !record.containers.some((c) => c.volumeMounts?.length)) return { volumes: [], warnings: [] };
  if (!SEGMENT.test(o.scope) || !SEGMENT.test(record.uid)) return { error: `pod volumes: scope or uid is not a plain directory name` };

  // Every version first, so that what follows is synchronous: no other instance's start or removal
  // interleaves with the directories this one creates on the shared tmpfs.
  const refs: EnvFromSpec[] = [];
  for (const v of specs) {
    const ref = configSource(v);
    if (ref?.src.version !== undefined) refs.push({ kind: ref.kind, name: ref.src.name, version: ref.src.version });
  }
  let versions: FetchedVersions;
  try {
    versions = await fetchConfigVersions(record.namespace, { env: [], envFrom: refs }, o.read, o.timeoutMs);
  } catch (err) {
    return { error: errorText(err) };
  }

  const memoryRoot = memoryRootOf(o.memoryRoot);
  const pod: PodFacts = { ...podFacts(record, o.node, o.hostIP), ...(o.podIP ? { podIP: o.podIP } : {}) };
  const disk = join(o.dir, 'volumes');
  const warnings: VolumeWarning[] = [];
  const volumes: PreparedVolume[] = [];
  let memoryDir: string | undefined;
  const onMemory = (name: string): string => {
    memoryDir ??= ensurePodMemoryDir(memoryRoot!, o.scope, record.uid);
    return join(memoryDir, name);
  };
  const onDisk = (name: string): string => {
    ensureOwnDir(disk, 0o700);
    return join(disk, name);
  };

  for (const v of specs) {
    const kind = kindOf(v);
    try {
      if ('emptyDir' in v) {
        const memory = v.emptyDir.medium === 'Memory';
        if (memory && !memoryRoot) {
          warnings.push({ reason: 'MemoryVolumeOnDisk', message: `volume ${v.name}: emptyDir medium Memory is on the node's disk: this node has no tmpfs (/dev/shm)` });
        }
        const path = memory && memoryRoot ? onMemory(v.name) : onDisk(v.name);
        // Made once, content kept; only the mode is set again, as the kubelet does.
        ensureOwnDir(path, EMPTY_DIR_MODE);
        volumes.push({ name: v.name, kind, hostPath: path, tmpfs: memory && !!memoryRoot, ...(v.emptyDir.sizeLimitBytes ? { sizeLimitBytes: v.emptyDir.sizeLimitBytes } : {}) });
      } else if ('configMap' in v || 'secret' in v) {
        const { kind: configKind, src } = configSource(v)!;
        const files = configFiles(configKind, src, record.namespace, versions);
        if ('error' in files) return { error: `volume ${v.name}: ${files.error}` };
        // A Secret goes to the tmpfs, so it never reaches a disk. A node without one (not Linux, an
        // agent in a container without /dev/shm) gets it in `<dir>/volumes` instead (0700, the
        // agent's own; removed with the pod), without a warning: such a node has no better place,
        // and a Warning at every start of every pod with a Secret there would be noise nobody can act on.
        const path = configKind === 'Secret' && memoryRoot ? onMemory(v.name) : onDisk(v.name);
        writeVolumeFiles(path, files.files);
        volumes.push({ name: v.name, kind, hostPath: path, tmpfs: configKind === 'Secret' && !!memoryRoot });
      } else if ('downwardAPI' in v) {
        const files = downwardFiles(v.downwardAPI.items, v.downwardAPI.defaultMode, pod);
        if ('error' in files) return { error: `volume ${v.name}: ${files.error}` };
        const path = onDisk(v.name);
        writeVolumeFiles(path, files.files);
        volumes.push({ name: v.name, kind, hostPath: path, tmpfs: false });
      } else {
        const problem = checkHostPath(v.hostPath.path, v.hostPath.type);
        if (problem) return { error: `volume ${v.name}: ${problem}` };
        volumes.push({ name: v.name, kind, hostPath: v.hostPath.path, tmpfs: false });
      }
    } catch (err) {
      // File-system errors name the syscall and path, never content.
      return { error: `volume ${v.name}: ${errorText(err)}` };
    }
  }

  for (const c of record.containers) {
    for (const m of c.volumeMounts ?? []) {
      const v = volumes.find((p) => p.name === m.name);
      if (!v) return { error: `container ${c.name}: volumeMount ${m.mountPath} names volume ${m.name}, which the pod does not have` };
      if (!m.subPath) continue;
      try {
        const sub = ensureSubPath(v.hostPath, m.subPath);
        if ('error' in sub) return { error: `container ${c.name}: volume ${m.name}: ${sub.error}` };
      } catch (err) {
        return { error: `container ${c.name}: volume ${m.name}: subPath "${m.subPath}": ${errorText(err)}` };
      }
    }
  }
  return { volumes, warnings };
}

/** `<root>/gantry-<scope>/<uid>`, 0700 each; the scope dir must be the agent's own real directory, since others can write the root. */
function ensurePodMemoryDir(memoryRoot: string, scope: string, uid: string): string {
  const scopeDir = join(memoryRoot, `gantry-${scope}`);
  try {
    mkdirSync(scopeDir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(scopeDir);
  const me = process.getuid?.();
  if (!st.isDirectory() || (me !== undefined && st.uid !== me)) throw new Error(`${scopeDir} is not a directory of this agent's user; refusing to put volumes there`);
  chmodSync(scopeDir, 0o700);
  const dir = join(scopeDir, uid);
  ensureOwnDir(dir, 0o700);
  return dir;
}

interface VolumeFile {
  /** Relative to the volume's root, checked to stay inside it. */
  path: string;
  data: Buffer | string;
  mode: number;
}

/** Writes a files volume: its root 0755, each file atomically, then what is not one of them removed. */
function writeVolumeFiles(root: string, files: readonly VolumeFile[]): void {
  ensureOwnDir(root, FILES_DIR_MODE);
  for (const f of files) writeFileAtomic(root, f.path, f.data, f.mode);
  pruneExcept(root, new Set(files.flatMap((f) => withParents(f.path))));
}

/** A file's path inside the volume, or why it is refused (the loader checked; a record is checked again before anything is written). */
function checkedPath(path: string, what: string): string | { error: string } {
  return insideRoot('/volume', path) ? path : { error: `${what} has path "${path}", which would leave the volume` };
}

/**
 * The files of a configMap or secret volume from its exact version: every key (a ConfigMap's
 * binaryData too) named after it, or only `items` at their paths. An optional volume whose version
 * or key is missing gives no file; a required one is an error naming object, key or version.
 */
function configFiles(kind: ConfigKind, src: ConfigVolumeSpec, namespace: string, versions: FetchedVersions): { files: VolumeFile[] } | { error: string } {
  const what = describe(kind, namespace, src.name);
  if (src.version === undefined) return src.optional ? { files: [] } : { error: `${what} has no version in the instance record` };
  const record: ConfigVersionRecord | undefined = versions.get(versionKey({ kind, name: src.name, version: src.version }));
  if (!record) return src.optional ? { files: [] } : { error: `${what} version ${src.version} is not stored` };
  // Bytes as the container reads them: ConfigMap data is text, binaryData and Secret data base64.
  const content = new Map<string, Buffer | string>();
  for (const [key, raw] of Object.entries(record.binaryData ?? {})) content.set(key, Buffer.from(raw, 'base64'));
  for (const [key, raw] of Object.entries(record.data)) content.set(key, kind === 'Secret' ? Buffer.from(raw, 'base64') : raw);
  const wanted = src.items ?? [...content.keys()].sort().map((key) => ({ key, path: key, mode: undefined }));
  const files: VolumeFile[] = [];
  for (const item of wanted) {
    const data = content.get(item.key);
    if (data === undefined) {
      if (src.optional) continue;
      return { error: `${what} has no key "${item.key}"` };
    }
    const path = checkedPath(item.path, `key "${item.key}"`);
    if (typeof path !== 'string') return path;
    files.push({ path, data, mode: item.mode ?? src.defaultMode });
  }
  return { files };
}

function downwardFiles(items: readonly DownwardAPIFileSpec[], defaultMode: number, pod: PodFacts): { files: VolumeFile[] } | { error: string } {
  const files: VolumeFile[] = [];
  for (const item of items) {
    const text = 'value' in item ? item.value : downwardFileText(item.fieldRef.fieldPath, pod);
    if (typeof text !== 'string') return { error: `item ${item.path}: ${text.error}` };
    const path = checkedPath(item.path, `item ${item.path}`);
    if (typeof path !== 'string') return path;
    files.push({ path, data: text, mode: item.mode ?? defaultMode });
  }
  return { files };
}

/** The fieldPaths a downwardAPI file can hold besides whole maps and one key of them. */
const DOWNWARD_FIELDS: Record<string, (p: PodFacts) => string> = {
  'metadata.name': (p) => p.name,
  'metadata.namespace': (p) => p.namespace,
  'metadata.uid': (p) => p.uid,
  'spec.nodeName': (p) => p.nodeName,
  'status.hostIP': (p) => p.hostIP,
  'status.podIP': (p) => p.podIP,
};

/** A downwardAPI fieldRef file's text, as the kubelet writes it (fieldpath.ExtractFieldPathAsString). */
export function downwardFileText(fieldPath: string, pod: PodFacts): string | { error: string } {
  if (fieldPath === 'metadata.labels') return formatDownwardMap(pod.labels);
  if (fieldPath === 'metadata.annotations') return formatDownwardMap(pod.annotations);
  const simple = DOWNWARD_FIELDS[fieldPath];
  if (simple) return simple(pod);
  // One key, as is; an absent one is an empty file, as in Kubernetes.
  const m = /^(metadata\.labels|metadata\.annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) {
    const map = m[1] === 'metadata.labels' ? pod.labels : pod.annotations;
    return Object.hasOwn(map, m[2]!) ? map[m[2]!]! : '';
  }
  const known = ['metadata.labels', 'metadata.annotations', ...Object.keys(DOWNWARD_FIELDS), "metadata.labels['KEY']", "metadata.annotations['KEY']"].join(', ');
  return { error: `fieldRef ${fieldPath} is not supported (supported: ${known})` };
}

/** fieldpath.FormatMap: `key="value"` lines sorted by key (bytewise, as Go sorts; keys are ASCII), values as Go's %q, no final newline. */
export function formatDownwardMap(map: Readonly<Record<string, string>>): string {
  return Object.keys(map)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${goQuote(map[k]!)}`)
    .join('\n');
}

/** Go's IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const GO_PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;
const GO_SHORT_ESCAPES: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r' };

/** Go's strconv.Quote (what %q prints for a string). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    let cp = ch.codePointAt(0)!;
    // A lone surrogate is not UTF-8; Go's JSON decoder would have made it U+FFFD, which prints.
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    const c = String.fromCodePoint(cp);
    if (c === '"' || c === '\\') out += `\\${c}`;
    else if (GO_PRINTABLE.test(c)) out += c;
    else if (GO_SHORT_ESCAPES[cp]) out += GO_SHORT_ESCAPES[cp];
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}

/** The volume path a mount reaches: the volume's root, or its subPath (refused when it would leave the volume). */
function mountSource(container: Pick<ContainerSpec, 'name'>, m: MountSpec, prepared: readonly PreparedVolume[]): { source: string; volume: PreparedVolume } {
  const volume = prepared.find((p) => p.name === m.name);
  if (!volume) throw new Error(`container ${container.name}: volumeMount ${m.mountPath} names volume ${m.name}, which was not prepared`);
  if (!m.subPath) return { source: volume.hostPath, volume };
  const source = insideRoot(volume.hostPath, m.subPath, true);
  if (!source) throw new Error(`container ${container.name}: volume ${m.name}: subPath "${m.subPath}" would leave the volume`);
  return { source, volume };
}

/**
 * The Engine's `Mounts` of a container (not `Binds` strings, so a path with a ':' works): each
 * volume, or its subPath, bound at mountPath; read-only when the mount says so, and always for
 * configMap, secret and downwardAPI volumes, as Kubernetes mounts them. Throws on a mount of a
 * volume that was not prepared or a subPath leaving its volume (the loader rejects both).
 */
export function dockerMounts(container: Pick<ContainerSpec, 'name' | 'volumeMounts'>, prepared: readonly PreparedVolume[]): Docker.MountSettings[] {
  return (container.volumeMounts ?? []).map((m) => {
    const { source, volume } = mountSource(container, m, prepared);
    return { Type: 'bind', Source: source, Target: m.mountPath, ReadOnly: m.readOnly === true || READ_ONLY_KINDS.has(volume.kind) };
  });
}

/** GANTRY_VOLUME_<NAME>: the volume name upper-cased, '-' as '_' (names are DNS labels, so no two volumes share one). */
export function volumeEnvName(volume: string): string {
  return `GANTRY_VOLUME_${volume.toUpperCase().replaceAll('-', '_')}`;
}

/**
 * A process has no mount namespace, so mountPath means nothing to it: it gets the path of each
 * volume it mounts (joined with subPath) in its environment instead. Throws as dockerMounts does.
 */
export function processVolumeEnv(container: Pick<ContainerSpec, 'name' | 'volumeMounts'>, prepared: readonly PreparedVolume[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of container.volumeMounts ?? []) env[volumeEnvName(m.name)] = mountSource(container, m, prepared).source;
  return env;
}

/**
 * Volumes over their emptyDir sizeLimit, measured as `du` does (allocated blocks), for the agent
 * to evict the pod as the kubelet does (EmptyDirSizeLimitExceeded). Cheap enough for every
 * resync: one walk of each limited emptyDir, and none of the others.
 */
export async function emptyDirOverLimit(prepared: readonly PreparedVolume[]): Promise<{ name: string; usedBytes: number; limitBytes: number }[]> {
  const over: { name: string; usedBytes: number; limitBytes: number }[] = [];
  for (const v of prepared) {
    if (v.kind !== 'emptyDir' || !v.sizeLimitBytes) continue;
    const usedBytes = await diskUsage(v.hostPath);
    if (usedBytes > v.sizeLimitBytes) over.push({ name: v.name, usedBytes, limitBytes: v.sizeLimitBytes });
  }
  return over;
}

/**
 * Removes what preparePodVolumes made: the pod's tmpfs directory (Secrets and Memory emptyDirs
 * must not outlive the pod on a tmpfs nobody cleans) and `<dir>/volumes`. For when the pod is done,
 * never between container restarts (emptyDir content lives as long as the pod). Safe to repeat.
 * `gantry-<scope>` stays: another agent of the installation on this host may be creating in it.
 */
/**
 * The memory-backed parts of pods this agent no longer runs (their instance dir went while no agent
 * watched it, or a crash came between): every `<memoryRoot>/gantry-<scope>/<uid>` whose uid is not
 * in `keep`. The scope is this agent's own, so agents sharing a host never sweep each other's.
 */
export function removeStrayPodMemory(o: { memoryRoot?: string | null; scope: string; keep: Set<string> }): string[] {
  const memoryRoot = memoryRootOf(o.memoryRoot);
  if (!memoryRoot || !SEGMENT.test(o.scope)) return [];
  const root = join(memoryRoot, `gantry-${o.scope}`);
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return [];
  }
  const stray = entries.filter((uid) => SEGMENT.test(uid) && !o.keep.has(uid));
  for (const uid of stray) rmSync(join(root, uid), { recursive: true, force: true });
  return stray;
}

export function removePodVolumes(o: { dir: string; memoryRoot?: string | null; scope: string; uid: string }): void {
  const memoryRoot = memoryRootOf(o.memoryRoot);
  if (memoryRoot && SEGMENT.test(o.scope) && SEGMENT.test(o.uid)) rmSync(podMemoryDir(memoryRoot, o.scope, o.uid), { recursive: true, force: true });
  rmSync(join(o.dir, 'volumes'), { recursive: true, force: true });
}
