/**
 * Reads the manifest files of one commit straight from git objects (never a checkout), so
 * the desired state is exactly what was committed: uncommitted edits in a working tree,
 * the index and untracked files are invisible by construction.
 */
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { readBlob, readCommit, readTree } from 'isomorphic-git';
import { GitSourceError, errorCode, errorMessage } from './errors.ts';
import { ObjectSizes } from './object-size.ts';
import { ObjectStore, type TreeEntry } from './object-store.ts';
import type { CommitFiles, CommitLimits, ReadOptions } from './source-types.ts';

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

/**
 * What one commit may hold under the sub-path before it is rejected whole (COMMIT_TOO_LARGE): the
 * reader stops there, so neither its memory nor its time grows with what a commit throws at it.
 */
export const DEFAULT_COMMIT_LIMITS: Readonly<CommitLimits> = Object.freeze({
  maxFiles: 10_000,
  maxTotalBytes: 64 * 1024 * 1024,
  maxEntries: 100_000,
  maxDepth: 32,
  maxTreeBytes: 16 * 1024 * 1024,
});

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];
const EMPTY = new Uint8Array(0);

/** Git tree modes of regular files; symlinks (120000) and submodules (160000) are skipped. */
const REGULAR_FILE_MODES = new Set(['100644', '100755']);

/**
 * Normalises a configured sub-path to a repo-relative posix path, '' meaning the root.
 * Rejects paths that would leave the repository.
 */
export function normalizeSubPath(subPath: string): string {
  const cleaned = posix.normalize(subPath.replaceAll('\\', '/').trim() || '.').replace(/^\/+|\/+$/g, '');
  if (cleaned === '.' || cleaned === '') return '';
  if (cleaned === '..' || cleaned.startsWith('../')) {
    throw new GitSourceError('INVALID_CONFIG', `sub-path "${subPath}" points outside the repository`, { subPath });
  }
  return cleaned;
}

export function isManifestPath(path: string): boolean {
  const lower = path.toLowerCase();
  return MANIFEST_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Manifests, and the .gantryignore files saying which of them to skip (reconciler/manifests/ignore-file.ts). */
export function isLoaderInput(path: string): boolean {
  return isManifestPath(path) || path === '.gantryignore' || path.endsWith('/.gantryignore');
}

export interface ReadCommitOptions {
  gitdir: string;
  commit: string;
  /** Normalised with normalizeSubPath: '' is the repository root. */
  subPath: string;
  maxFileBytes: number;
  /** Defaults: DEFAULT_COMMIT_LIMITS. */
  limits?: Partial<CommitLimits>;
  /** See ReadOptions.reuse: blobs the caller holds the parse of are listed, not read. */
  reuse?: ReadOptions['reuse'];
}

function mib(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

export async function readCommitFiles(opts: ReadCommitOptions): Promise<CommitFiles> {
  const { gitdir, commit, subPath, maxFileBytes } = opts;
  const limits: CommitLimits = { ...DEFAULT_COMMIT_LIMITS, ...opts.limits };
  // One cache per read: isomorphic-git keeps parsed packfiles in it, and holding them
  // across reads would pin whole packs in memory for the life of the process.
  const cache = {};
  const sizes = new ObjectSizes(gitdir);
  try {
    return await readWithin(opts, limits, cache, sizes);
  } finally {
    await sizes.close();
  }
}

async function readWithin(opts: ReadCommitOptions, limits: CommitLimits, cache: object, sizes: ObjectSizes): Promise<CommitFiles> {
  const { gitdir, commit, subPath, maxFileBytes } = opts;

  // The commit object is inflated whole as well; a full sha can be sized first.
  const commitSize = /^[0-9a-f]{40}$/.test(commit) ? await sizes.sizeOf(commit) : undefined;
  if (commitSize !== undefined && commitSize > limits.maxTreeBytes) {
    throw new GitSourceError('COMMIT_TOO_LARGE', `commit ${commit.slice(0, 7)} rejected: the commit object is ${commitSize} bytes, more than the limit of ${mib(limits.maxTreeBytes)}`, { commit, limit: 'maxTreeBytes' });
  }
  let info;
  try {
    info = await readCommit({ fs, gitdir, oid: commit, cache });
  } catch (err) {
    throw new GitSourceError('COMMIT_NOT_FOUND', `commit ${commit} not found: ${errorMessage(err)}`, { commit });
  }

  // Trees and blobs from the object store directly (object-store.ts); isomorphic-git for what it
  // does not hold (it then reports what is wrong the way it always has).
  const objects = new ObjectStore(gitdir, Math.max(limits.maxTreeBytes, maxFileBytes, limits.maxTotalBytes));
  const treeOf = async (oid: string): Promise<TreeEntry[]> => (await objects.readTree(oid)) ?? ((await readTree({ fs, gitdir, oid, cache })).tree as TreeEntry[]);
  // Packed objects are sized from the pack in memory; loose ones (and the commit) by ObjectSizes.
  const sizeOf = async (oid: string): Promise<number | undefined> => (await objects.packedSize(oid)) ?? (await sizes.sizeOf(oid));
  const blobOf = async (oid: string): Promise<Uint8Array> => {
    const obj = await objects.read(oid);
    if (obj?.type === 'blob') return obj.data;
    return (await readBlob({ fs, gitdir, oid, cache })).blob;
  };
  let root: TreeEntry[];
  try {
    root = await treeOf(info.commit.tree);
    for (const segment of subPath ? subPath.split('/') : []) {
      const entry = root.find((e) => e.path === segment);
      if (entry?.type !== 'tree') throw Object.assign(new Error(`no directory ${segment}`), { code: 'NotFoundError' });
      root = await treeOf(entry.oid);
    }
  } catch (err) {
    const code = errorCode(err);
    if (code === 'NotFoundError' || code === 'ObjectTypeError') {
      // A missing directory is an error, not an empty desired state: treating it as empty
      // would let a typo or a bad rename prune everything the source deploys.
      throw new GitSourceError('SUBPATH_NOT_FOUND', `sub-path "${subPath}" is not a directory at commit ${commit}`, {
        commit,
        subPath,
      });
    }
    throw new GitSourceError('READ_FAILED', `reading tree of ${commit}: ${errorMessage(err)}`, { commit });
  }

  const files: CommitFiles['files'] = [];
  const short = info.oid.slice(0, 7);
  const where = subPath ? ` under "${subPath}"` : '';
  const tooLarge = (limit: string, message: string, data: Record<string, unknown> = {}) =>
    new GitSourceError('COMMIT_TOO_LARGE', `commit ${short} rejected: ${message}`, { commit: info.oid, limit, ...data });
  let entriesSeen = root.length;
  let totalBytes = 0;
  const walk = async (entries: TreeEntry[], prefix: string, depth: number): Promise<void> => {
    if (entriesSeen > limits.maxEntries) {
      throw tooLarge('maxEntries', `more than ${limits.maxEntries} files and directories${where} (the limit per commit); point the source's path at the folder of the manifests`);
    }
    for (const entry of entries) {
      const path = prefix ? `${prefix}/${entry.path}` : entry.path;
      if (entry.type === 'tree') {
        if (depth >= limits.maxDepth) {
          throw tooLarge('maxDepth', `${path} is more than ${limits.maxDepth} directories deep${where} (the limit)`, { path });
        }
        // A tree is inflated whole too: its size first.
        const treeSize = await sizeOf(entry.oid);
        if (treeSize !== undefined && treeSize > limits.maxTreeBytes) {
          throw tooLarge('maxTreeBytes', `directory ${path} is a tree of ${treeSize} bytes, more than the limit of ${mib(limits.maxTreeBytes)}`, { path });
        }
        const sub = await treeOf(entry.oid);
        entriesSeen += sub.length;
        await walk(sub, path, depth + 1);
      } else if (entry.type === 'blob' && REGULAR_FILE_MODES.has(entry.mode) && isLoaderInput(path)) {
        if (files.length >= limits.maxFiles) {
          throw tooLarge('maxFiles', `more than ${limits.maxFiles} manifest files${where} (the limit per commit)`);
        }
        // A blob whose parse the caller holds (same path, same oid) is not read at all: a commit
        // that changes one file of thousands reads one blob. Its size counts as a read one's would.
        const known = opts.reuse?.(path, entry.oid);
        if (known !== undefined) {
          if (known <= maxFileBytes) totalBytes += known;
          if (totalBytes > limits.maxTotalBytes) {
            throw tooLarge('maxTotalBytes', `manifest files${where} add up to more than ${mib(limits.maxTotalBytes)} (the limit per commit), at ${path}`, { path });
          }
          files.push({ path, content: EMPTY, size: known, oid: entry.oid, reused: true });
          continue;
        }
        // readBlob inflates the whole object, so its size comes first, from the object store: an
        // oversized blob is never inflated, only listed with its size, so the loader can say
        // FILE_TOO_LARGE however far it would inflate.
        const size = await sizeOf(entry.oid);
        if (size !== undefined && size > maxFileBytes) {
          files.push({ path, content: new Uint8Array(0), size, oid: entry.oid });
          continue;
        }
        const blob = await blobOf(entry.oid);
        const over = blob.byteLength > maxFileBytes;
        if (!over) totalBytes += blob.byteLength;
        if (totalBytes > limits.maxTotalBytes) {
          throw tooLarge('maxTotalBytes', `manifest files${where} add up to more than ${mib(limits.maxTotalBytes)} (the limit per commit), at ${path}`, { path });
        }
        files.push({ path, content: over ? new Uint8Array(0) : blob, size: blob.byteLength, oid: entry.oid });
      }
    }
  };
  try {
    await walk(root, subPath, 0);
  } catch (err) {
    if (err instanceof GitSourceError) throw err;
    throw new GitSourceError('READ_FAILED', `reading files of ${commit}: ${errorMessage(err)}`, { commit });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const { commit: c } = info;
  return {
    commit: info.oid,
    message: c.message,
    author: `${c.author.name} <${c.author.email}>`,
    timestamp: c.author.timestamp * 1000,
    files,
  };
}
