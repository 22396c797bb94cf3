/**
 * Pod volumes (spec.template.spec.volumes) and volumeMounts: what their schema cannot say.
 *
 * Two passes, as for env: `checkVolumes` runs on each document as the validator leaves it (names,
 * paths, modes, kinds, the hostPath warning), and `volumeReferenceProblems` runs once the whole
 * commit's ConfigMaps and Secrets are known (REFERENCE_NOT_FOUND, as config-references.ts).
 *
 * A volume of a kind Kubernetes defines and Gantry does not (persistentVolumeClaim, projected,
 * nfs...) has been dropped by the field walker with an "ignored" warning, leaving a volume with a
 * name and no kind. That is fine until a container mounts it: then the pod would run without what
 * it expects, so the mount is an error naming the kind. The raw document says which kind it was.
 * Pure, apart from rewriting octal modes and a kind-less volume's Kubernetes default in the object.
 */
import { posix } from 'node:path';
import type { ManifestIssue } from './manifest-issue.ts';
import type { DeploymentObject, ManifestObject } from './types.ts';
import type { ValidationResult, ValidationWarning } from './validator.ts';
import { readOctalModes, type LocatedDocument, type SourceFile } from './file-modes.ts';
import { parseMemory } from './quantity.ts';
import { MAX_MEMORY_BYTES } from './limits.ts';
import { podContainers } from './init-containers.ts';

const POD = '/spec/template/spec';
/** The kinds Gantry implements: the properties of $defs/volume besides `name`. */
const KINDS = ['emptyDir', 'configMap', 'secret', 'hostPath', 'downwardAPI'] as const;
const MAX_MODE = 0o777;
/** hostPath types of Kubernetes that Gantry cannot honour: a device node needs device access (Docker's --device), which a bind does not give. */
const DEVICE_TYPES = new Set(['CharDevice', 'BlockDevice']);

type Volume = NonNullable<DeploymentObject['spec']['template']['spec']['volumes']>[number];

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const invalid = (pointer: string, message: string, at?: ManifestIssue['at']): ManifestIssue => ({ code: 'INVALID_VALUE', pointer, message, ...(at ? { at } : {}) });

/** `at` of the raw document, an object at each step, or undefined. */
function dig(data: unknown, ...path: (string | number)[]): unknown {
  let node = data;
  for (const step of path) node = isRecord(node) || Array.isArray(node) ? (node as Record<string | number, unknown>)[step] : undefined;
  return node;
}

/** Keys of a raw element that the walker dropped (Kubernetes defines them, Gantry's schema lacks them). */
function dropped(raw: unknown, kept: object): string[] {
  return isRecord(raw) ? Object.keys(raw).filter((k) => !(k in kept)) : [];
}

/** Why a path inside a volume is wrong (undefined: fine): relative, no '..' element, as Kubernetes' validateLocalDescendingPath. */
function relativePathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return 'must be a relative path (inside the volume), not start with "/"';
  if (path.split('/').includes('..')) return 'must not contain ".." (it could leave the volume)';
  if (path.includes('\0')) return 'must not contain a NUL character';
  return undefined;
}

/** What the checks of one document share: its issues and warnings, and the modes it wrote as octal literals (file-modes.ts). */
interface Found {
  issues: ManifestIssue[];
  warnings: ValidationWarning[];
  octal: ReadonlySet<string>;
}

function checkMode(mode: number | undefined, pointer: string, { issues, octal }: Found): void {
  if (mode === undefined || mode <= MAX_MODE) return;
  // A decimal such as 644 is almost always an octal mode written without its leading 0 (one written as 01000 is not).
  const hint = !octal.has(pointer) && /^[0-7]+$/.test(String(mode)) && mode <= 777 ? `; for the octal mode write 0${mode} (read as octal, as Kubernetes does) or ${Number.parseInt(String(mode), 8)}` : '';
  issues.push(invalid(pointer, `must be a file mode between 0 and 0777 (511 in decimal); ${mode} is not${hint}`));
}

/** A configMap, secret or downwardAPI volume's items: paths and modes, each path once. */
function checkItems(items: readonly { path: string; mode?: number }[] | undefined, base: string, found: Found): void {
  const { issues } = found;
  const seen = new Map<string, number>();
  (items ?? []).forEach((item, j) => {
    const at = `${base}/items/${j}`;
    const problem = relativePathProblem(item.path);
    if (problem) issues.push(invalid(`${at}/path`, problem));
    const clean = posix.normalize(item.path);
    const first = seen.get(clean);
    if (first !== undefined) issues.push(invalid(`${at}/path`, `duplicate path "${item.path}", also written by ${base}/items/${first}`));
    else seen.set(clean, j);
    checkMode(item.mode, `${at}/mode`, found);
  });
}

function checkKind(v: Volume, base: string, containers: readonly { name: string }[], found: Found): void {
  const { issues, warnings } = found;
  if (v.emptyDir) {
    const { medium, sizeLimit } = v.emptyDir;
    if (medium !== undefined && medium !== '' && medium !== 'Memory') {
      issues.push(invalid(`${base}/emptyDir/medium`, `must be "" (the node's disk) or Memory (a tmpfs)${medium.startsWith('HugePages') ? '; Gantry does not support huge pages' : ''}`));
    }
    // The schema bounds numbers; a string is bounded once parsed (its pattern guarantees it parses).
    if (typeof sizeLimit === 'string' && parseMemory(sizeLimit) > MAX_MEMORY_BYTES) issues.push(invalid(`${base}/emptyDir/sizeLimit`, 'must be at most 1Pi'));
  }
  for (const kind of ['configMap', 'secret', 'downwardAPI'] as const) {
    const source = v[kind];
    if (!source) continue;
    checkMode(source.defaultMode, `${base}/${kind}/defaultMode`, found);
    checkItems(source.items, `${base}/${kind}`, found);
  }
  v.downwardAPI?.items?.forEach((item, j) => {
    const at = `${base}/downwardAPI/items/${j}`;
    if ((item.fieldRef === undefined) === (item.resourceFieldRef === undefined)) issues.push(invalid(at, 'must have exactly one of fieldRef and resourceFieldRef'));
    const r = item.resourceFieldRef;
    if (r && !containers.some((c) => c.name === r.containerName)) issues.push(invalid(`${at}/resourceFieldRef/containerName`, `no container "${r.containerName}" in this pod`));
  });
  if (v.hostPath) {
    const { path, type } = v.hostPath;
    if (!path.startsWith('/')) issues.push(invalid(`${base}/hostPath/path`, 'must be an absolute path on the node'));
    else if (path.split('/').includes('..')) issues.push(invalid(`${base}/hostPath/path`, 'must not contain ".."'));
    if (type !== undefined && DEVICE_TYPES.has(type)) {
      issues.push(invalid(`${base}/hostPath/type`, `${type} is not supported by Gantry: a container cannot use a device node bound into it without device access, which Gantry does not grant (use "", Directory, DirectoryOrCreate, File, FileOrCreate or Socket)`));
    }
    warnings.push({
      code: 'NODE_LOCAL',
      pointer: `${base}/hostPath`,
      message: `hostPath ${path} is node-local: each instance sees that path of the node it runs on, and what it writes stays on that node when the instance moves`,
      at: { pointer: `${base}/hostPath`, key: true },
    });
  }
}

/** Volumes of the pod: one kind each (a kind-less one becomes an emptyDir, as the API server defaults it), names once. Returns what each dropped volume was. */
function checkVolumeList(d: DeploymentObject, raw: unknown, found: Found): Map<string, string[]> {
  const { issues } = found;
  const pod = d.spec.template.spec;
  const unsupported = new Map<string, string[]>();
  const names = new Map<string, number>();
  (pod.volumes ?? []).forEach((v, i) => {
    const base = `${POD}/volumes/${i}`;
    const first = names.get(v.name);
    if (first !== undefined) issues.push(invalid(`${base}/name`, `duplicate volume name "${v.name}", also used by ${POD}/volumes/${first}`));
    else names.set(v.name, i);
    const kinds = KINDS.filter((k) => v[k] !== undefined);
    const others = dropped(dig(raw, 'spec', 'template', 'spec', 'volumes', i), v);
    if (kinds.length + others.length > 1) {
      const extra = [...kinds, ...others][1]!;
      issues.push(invalid(base, `must have exactly one kind, not ${[...kinds, ...others].join(' and ')}`, { pointer: `${base}/${extra}`, key: true }));
    } else if (others.length > 0) unsupported.set(v.name, others);
    else if (kinds.length === 0) v.emptyDir = {};
    // A downwardAPI file may name an init container's resources too, as env's resourceFieldRef may.
    checkKind(v, base, [...pod.containers, ...(pod.initContainers ?? [])], found);
  });
  return unsupported;
}

/** Each mount names a volume Gantry can provide, at an absolute path used once per container. */
function checkMounts(d: DeploymentObject, raw: unknown, unsupported: Map<string, string[]>, issues: ManifestIssue[]): void {
  const pod = d.spec.template.spec;
  const declared = (pod.volumes ?? []).map((v) => v.name);
  // Init containers mount the pod's volumes as containers do (often to fill an emptyDir for them).
  for (const { container: c, pointer, list, index } of podContainers(pod)) {
    const paths = new Map<string, number>();
    const mounted = new Map<string, number>();
    (c.volumeMounts ?? []).forEach((m, j) => {
      const base = `${pointer}/volumeMounts/${j}`;
      const kinds = unsupported.get(m.name);
      if (!declared.includes(m.name)) issues.push(invalid(`${base}/name`, `no volume "${m.name}" in ${POD.slice(1).replaceAll('/', '.')}.volumes (${declared.length > 0 ? `it has ${declared.join(', ')}` : 'it has none'})`));
      else if (kinds) issues.push(invalid(`${base}/name`, `volume ${m.name} is of a kind Gantry does not support (${kinds.join(', ')})`));
      if (!m.mountPath.startsWith('/')) issues.push(invalid(`${base}/mountPath`, 'must be an absolute path'));
      const clean = posix.normalize(m.mountPath).replace(/(.)\/$/, '$1');
      const earlier = paths.get(clean);
      if (earlier !== undefined) issues.push(invalid(`${base}/mountPath`, `duplicate mountPath "${m.mountPath}" in container "${c.name}", also used by ${pointer}/volumeMounts/${earlier}`));
      else paths.set(clean, j);
      const problem = m.subPath ? relativePathProblem(m.subPath) : undefined;
      if (problem) issues.push(invalid(`${base}/subPath`, problem));
      // Dropped, it would mount the volume's root instead of the expanded path.
      if (dig(raw, 'spec', 'template', 'spec', list, index, 'volumeMounts', j, 'subPathExpr') !== undefined) {
        issues.push(invalid(`${base}/subPathExpr`, 'is not supported by Gantry (the volume would be mounted whole): use subPath', { pointer: `${base}/subPathExpr`, key: true }));
      }
      // A process has no mounts: it gets each volume as one path, $GANTRY_VOLUME_<NAME>, so one mount per volume.
      const again = mounted.get(m.name);
      if (c.image === undefined && again !== undefined) {
        issues.push(invalid(`${base}/name`, `volume ${m.name} is already mounted by ${pointer}/volumeMounts/${again}: a container without an image gets each volume as one path ($GANTRY_VOLUME_*), so it can mount a volume once`));
      } else if (again === undefined) mounted.set(m.name, j);
    });
  }
}

/**
 * The volume checks of one document: runs after the validator (`result`), on a Deployment it
 * accepted. `doc` is the loader's candidate (raw data and positions), `files` the load's files
 * (the source text of modes). Issues take the object away, as the validator's own do.
 */
export function checkVolumes(result: ValidationResult, doc: LocatedDocument, files: readonly SourceFile[]): ValidationResult {
  const d = result.object;
  if (d?.kind !== 'Deployment') return result;
  const pod = d.spec.template.spec;
  if (!pod.volumes?.length && !podContainers(pod).some(({ container: c }) => c.volumeMounts?.length)) return result;
  const found: Found = { issues: [], warnings: [...result.warnings], octal: new Set(readOctalModes(d, doc, files)) };
  const unsupported = checkVolumeList(d, doc.data, found);
  checkMounts(d, doc.data, unsupported, found.issues);
  const { issues, warnings } = found;
  return issues.length > 0 ? { issues, warnings } : { ...result, warnings };
}

/**
 * configMap and secret volumes checked against the commit (`configs`: "<ns>/<kind>/<name>"), as
 * env references are: the object, and each key `items` names, must be there unless `optional`.
 * A ConfigMap's binaryData keys count (files can hold bytes; env cannot).
 */
export function volumeReferenceProblems(d: DeploymentObject, configs: ReadonlyMap<string, ManifestObject>): { code: 'REFERENCE_NOT_FOUND'; pointer: string; message: string }[] {
  const ns = d.metadata.namespace;
  const out: ReturnType<typeof volumeReferenceProblems> = [];
  (d.spec.template.spec.volumes ?? []).forEach((v, i) => {
    const ref = v.configMap ? { kind: 'ConfigMap', field: 'configMap', nameField: 'name', name: v.configMap.name, src: v.configMap } : v.secret ? { kind: 'Secret', field: 'secret', nameField: 'secretName', name: v.secret.secretName, src: v.secret } : undefined;
    if (!ref || ref.src.optional) return;
    const base = `${POD}/volumes/${i}/${ref.field}`;
    const o = configs.get(`${ns}/${ref.kind}/${ref.name}`);
    if (o?.kind !== 'ConfigMap' && o?.kind !== 'Secret') {
      out.push({ code: 'REFERENCE_NOT_FOUND', pointer: `${base}/${ref.nameField}`, message: `${ref.kind} ${ns}/${ref.name} is not defined in this commit (mark the volume optional: true if it may be missing)` });
      return;
    }
    const keys = new Set([...Object.keys(o.data), ...(o.kind === 'ConfigMap' ? Object.keys(o.binaryData) : [])]);
    (ref.src.items ?? []).forEach((item, j) => {
      if (!keys.has(item.key)) out.push({ code: 'REFERENCE_NOT_FOUND', pointer: `${base}/items/${j}/key`, message: `${ref.kind} ${ns}/${ref.name} has no key ${JSON.stringify(item.key)} (its keys: ${[...keys].sort().join(', ') || 'none'})` });
    });
  });
  return out;
}
