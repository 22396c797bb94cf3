/**
 * Reads the manifest files of one commit straight from git objects (never a checkout), so
 * the desired state is exactly what was committed: uncommitted edits in a working tree,
 * the index and untracked files are invisible by construction.
 */
import * as fs from 'node:fs';
import { posix } from 'node:path';
import { readBlob, readCommit, readTree, type TreeEntry } from 'isomorphic-git';
import { GitSourceError, errorCode, errorMessage } from './errors.ts';
import type { CommitFiles } from './source-types.ts';

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

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

export interface ReadCommitOptions {
  gitdir: string;
  commit: string;
  /** Normalised with normalizeSubPath: '' is the repository root. */
  subPath: string;
  maxFileBytes: number;
}

export async function readCommitFiles(opts: ReadCommitOptions): Promise<CommitFiles> {
  const { gitdir, commit, subPath, maxFileBytes } = opts;
  // One cache per read: isomorphic-git keeps parsed packfiles in it, and holding them
  // across reads would pin whole packs in memory for the life of the process.
  const cache = {};

  let info;
  try {
    info = await readCommit({ fs, gitdir, oid: commit, cache });
  } catch (err) {
    throw new GitSourceError('COMMIT_NOT_FOUND', `commit ${commit} not found: ${errorMessage(err)}`, { commit });
  }

  let root: TreeEntry[];
  try {
    root = (await readTree({ fs, gitdir, oid: commit, filepath: subPath || undefined, cache })).tree;
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
  const walk = async (entries: TreeEntry[], prefix: string): Promise<void> => {
    for (const entry of entries) {
      const path = prefix ? `${prefix}/${entry.path}` : entry.path;
      if (entry.type === 'tree') {
        const sub = await readTree({ fs, gitdir, oid: entry.oid, cache });
        await walk(sub.tree, path);
      } else if (entry.type === 'blob' && REGULAR_FILE_MODES.has(entry.mode) && isManifestPath(path)) {
        // readBlob always inflates the whole object; an oversized blob is dropped right away
        // and reported with its real size so the loader can say FILE_TOO_LARGE.
        const { blob } = await readBlob({ fs, gitdir, oid: entry.oid, cache });
        const tooLarge = blob.byteLength > maxFileBytes;
        files.push({ path, content: tooLarge ? new Uint8Array(0) : blob, size: blob.byteLength });
      }
    }
  };
  try {
    await walk(root, subPath);
  } catch (err) {
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
