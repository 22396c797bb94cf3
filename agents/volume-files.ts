import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fchmodSync, lstatSync, mkdirSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync, statfsSync, writeFileSync, type Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { HostPathType } from '../state/records/instance.ts';

/**
 * The file-system side of pod volumes (pod-volumes.ts): paths kept inside a volume, directories
 * that are real directories, files written atomically with exact modes, stale entries pruned,
 * disk usage as `du` counts it, whether a path is on a tmpfs, and the hostPath type checks.
 * Sync where it writes (a few small files, done under the instance's mutex, so that no other
 * start interleaves with it); async where it walks what containers wrote (disk usage, at every
 * resync).
 */

/** statfs f_type of a tmpfs (linux/magic.h TMPFS_MAGIC); /dev/shm is one on Linux. */
const TMPFS_MAGIC = 0x01021994;

export function isTmpfs(path: string): boolean {
  try {
    return statfsSync(path).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** Where memory-backed volumes go when the agent is not told: /dev/shm when it exists and is a tmpfs, else none. */
export function defaultMemoryRoot(): string | undefined {
  return isTmpfs('/dev/shm') ? '/dev/shm' : undefined;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * `rel` resolved inside `root` (lexically), or undefined when it would leave it: absolute, or `..`
 * past the root. The root itself counts only with `allowRoot` (a subPath of "." mounts the root; a
 * file named "." would replace it).
 */
export function insideRoot(root: string, rel: string, allowRoot = false): string | undefined {
  const base = resolve(root);
  const abs = resolve(base, rel);
  if (abs === base) return allowRoot ? abs : undefined;
  return abs.startsWith(base.endsWith(sep) ? base : base + sep) ? abs : undefined;
}

/**
 * A directory the agent owns (a volume's root, a parent on the tmpfs) at `path`, with exactly
 * `mode`: created with its parents when missing; anything else in its place (a file, a symlink a
 * process left) is removed first, so nothing written into it follows a link elsewhere.
 */
export function ensureOwnDir(path: string, mode: number): void {
  const st = lstatOrUndefined(path);
  if (st && !st.isDirectory()) rmSync(path, { recursive: true, force: true });
  if (!st || !st.isDirectory()) mkdirSync(path, { recursive: true });
  // mkdir's mode is cut by the umask; the kubelet's modes are exact.
  chmodSync(path, mode);
}

/** The directories leading to `rel` under `root` (an own dir), created 0755 where missing, replacing what is not a directory. */
function ensureParentsIn(root: string, rel: string): void {
  let at = root;
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  for (const part of parts.slice(0, -1)) {
    at = join(at, part);
    const st = lstatOrUndefined(at);
    if (st?.isDirectory()) continue;
    if (st) rmSync(at, { recursive: true, force: true });
    mkdirSync(at);
    chmodSync(at, 0o755);
  }
}

/**
 * Writes `rel` under `root` as a temporary file renamed into place, so a container never reads
 * half a file, with exactly `mode` (fchmod: the open mode is cut by the umask). Parents are made;
 * a directory in the file's place is replaced. The caller has checked `rel` stays inside `root`.
 */
export function writeFileAtomic(root: string, rel: string, data: Buffer | string, mode: number): void {
  ensureParentsIn(root, rel);
  const path = resolve(root, rel);
  if (lstatOrUndefined(path)?.isDirectory()) rmSync(path, { recursive: true, force: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  // 0600 until written: the final mode may be wider, never readable before the content is whole.
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeFileSync(fd, data);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Removes what is under `root` but not in `keep` (relative paths of the files written and their
 * parent directories): files of an earlier write that this one no longer has, temporary files a
 * crash left, whatever a process put in a volume it could not be stopped from writing.
 */
export function pruneExcept(root: string, keep: ReadonlySet<string>, at = ''): void {
  for (const e of readdirSync(join(root, at), { withFileTypes: true })) {
    const rel = at === '' ? e.name : `${at}/${e.name}`;
    if (!keep.has(rel)) rmSync(join(root, rel), { recursive: true, force: true });
    else if (e.isDirectory()) pruneExcept(root, keep, rel);
  }
}

/** `rel` and each of its parent directories, as pruneExcept keeps them ("a/b/c" -> a, a/b, a/b/c). */
export function withParents(rel: string): string[] {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

/**
 * A mount's subPath inside a volume, as the kubelet treats it: used as it is when it exists (file
 * or directory), else made as directories with the mode of the volume's root. A symlink on the way
 * is followed only while it stays inside the volume (real paths compared), so a container cannot
 * point a subPath at the node's files. Returns the path, or why not (paths only).
 */
export function ensureSubPath(root: string, subPath: string): { path: string } | { error: string } {
  const lexical = insideRoot(root, subPath, true);
  if (!lexical) return { error: `subPath "${subPath}" would leave the volume` };
  const realRoot = realpathSync(root);
  const inside = (p: string) => p === realRoot || p.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
  const rootMode = lstatSync(realRoot).mode & 0o7777;
  const parts = relative(resolve(root), lexical).split(sep).filter((p) => p !== '');
  let at = realRoot;
  for (const [i, part] of parts.entries()) {
    const next = join(at, part);
    const st = lstatOrUndefined(next);
    if (!st) {
      mkdirSync(next);
      chmodSync(next, rootMode);
      at = next;
      continue;
    }
    at = st.isSymbolicLink() ? realpathSync(next) : next;
    if (!inside(at)) return { error: `subPath "${subPath}" leads out of the volume through a symbolic link` };
    // The last part may be a file (a configMap key mounted alone); the ones before it are directories.
    if (i < parts.length - 1 && !lstatSync(at).isDirectory()) return { error: `subPath "${subPath}": ${parts.slice(0, i + 1).join('/')} is not a directory` };
  }
  // The lexical path: what dockerMounts and processVolumeEnv compute. A link swapped in between this
  // check and the container's start is not caught (the kubelet binds through an open fd for that).
  return { path: lexical };
}

/**
 * Bytes a directory tree takes, as `du` counts them: allocated blocks (a sparse file counts what
 * it holds, not its length), each hard-linked file once, symlinks not followed, entries that
 * vanish during the walk skipped. Sequential, so a large tree costs time, not file descriptors.
 */
export async function diskUsage(path: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let st: Stats;
    try {
      st = await lstat(p);
    } catch {
      return;
    }
    if (st.nlink > 1 && !st.isDirectory()) {
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) return;
      seen.add(id);
    }
    total += st.blocks * 512;
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = await readdir(p);
    } catch {
      return;
    }
    for (const name of names) await walk(join(p, name));
  };
  await walk(path);
  return total;
}

/** The kubelet's hostPath type checks (pkg/volume/hostpath): undefined when it passes, else why. */
export function checkHostPath(path: string, type: HostPathType | undefined): string | undefined {
  if (type === undefined) return undefined;
  const st = statOrUndefined(path);
  const failed = (what: string) => `hostPath type check failed: ${path} is not ${what}${st ? '' : ' (it does not exist)'}`;
  switch (type) {
    case 'DirectoryOrCreate':
      if (!st) {
        makeDirs(path, 0o755);
        return undefined;
      }
      return st.isDirectory() ? undefined : failed('a directory');
    case 'Directory':
      return st?.isDirectory() ? undefined : failed('a directory');
    case 'FileOrCreate':
      if (!st) {
        // The parent must exist, as in Kubernetes: FileOrCreate makes the file, not its directory.
        const parent = statOrUndefined(join(path, '..'));
        if (!parent?.isDirectory()) return `hostPath type check failed: ${path} cannot be created: its parent directory does not exist`;
        const fd = openSync(path, 'wx', 0o644);
        closeSync(fd);
        chmodSync(path, 0o644);
        return undefined;
      }
      return st.isFile() ? undefined : failed('a file');
    case 'File':
      return st?.isFile() ? undefined : failed('a file');
    case 'Socket':
      return st?.isSocket() ? undefined : failed('a socket file');
  }
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** mkdir -p, each created level exactly `mode` (the umask would cut it). */
function makeDirs(path: string, mode: number): void {
  const first = mkdirSync(path, { recursive: true });
  if (first === undefined) return;
  let at = first;
  chmodSync(at, mode);
  for (const part of relative(first, path).split('/').filter((p) => p !== '')) {
    at = join(at, part);
    chmodSync(at, mode);
  }
}
