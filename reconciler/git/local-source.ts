/**
 * A Git source on the local filesystem: a working repository (a directory with .git) or a
 * bare one. Refs are resolved and trees read with isomorphic-git, so loose and packed refs
 * (after `git gc`) and packed objects all work, and the working tree is never consulted.
 */
import * as fs from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join, relative, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { expandOid, readCommit, resolveRef } from 'isomorphic-git';
import { GitSourceError, errorCode, errorMessage } from './errors.ts';
import { Hints } from './hints.ts';
import { DEFAULT_MAX_FILE_BYTES, normalizeSubPath, readCommitFiles } from './tree-reader.ts';
import type { CommitFiles, GitSource, ReadOptions, SourceConfig } from './source-types.ts';

const DEFAULT_LOCAL_POLL_MS = 10_000;
/** Long enough to merge the unlink/add/change burst of one ref update into one hint. */
const DEBOUNCE_MS = 20;

export class LocalGitSource implements GitSource {
  readonly kind = 'local' as const;
  readonly repoPath: string;
  readonly branch: string;
  readonly subPath: string;
  private readonly pollIntervalMs: number;
  private readonly maxFileBytes: number;
  private readonly limits: SourceConfig['limits'];
  private gitdirCache: string | undefined;
  private readonly hints = new Hints();
  private watcher: FSWatcher | undefined;
  private watcherStarting: Promise<void> | undefined;
  private closed = false;

  constructor(cfg: SourceConfig) {
    const repo = cfg.repo.startsWith('file://') ? fileURLToPath(cfg.repo) : cfg.repo;
    this.repoPath = resolvePath(repo);
    this.branch = normalizeBranch(cfg.branch);
    this.subPath = normalizeSubPath(cfg.subPath);
    this.pollIntervalMs = cfg.pollIntervalMs ?? DEFAULT_LOCAL_POLL_MS;
    this.maxFileBytes = cfg.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.limits = cfg.limits;
  }

  describe(): string {
    return `${this.repoPath}@${this.branch}${this.subPath ? `:${this.subPath}` : ''}`;
  }

  async resolve(): Promise<string> {
    const gitdir = await this.gitdir();
    try {
      return await resolveRef({ fs, gitdir, ref: `refs/heads/${this.branch}` });
    } catch (err) {
      if (errorCode(err) === 'NotFoundError') {
        throw new GitSourceError('BRANCH_NOT_FOUND', `branch "${this.branch}" not found in ${this.describe()}`, {
          source: this.describe(),
          branch: this.branch,
        });
      }
      throw new GitSourceError('READ_FAILED', `resolving ${this.describe()}: ${errorMessage(err)}`, {
        source: this.describe(),
      });
    }
  }

  async read(commit: string, opts: ReadOptions = {}): Promise<CommitFiles> {
    const gitdir = await this.gitdir();
    return readCommitFiles({
      gitdir,
      commit,
      subPath: this.subPath,
      maxFileBytes: opts.maxFileBytes ?? this.maxFileBytes,
      limits: { ...this.limits, ...opts.limits },
      reuse: opts.reuse,
    });
  }

  async fetchRef(ref: string): Promise<string> {
    return resolveRevision(await this.gitdir(), ref, this.describe());
  }

  watch(onHint: () => void): void {
    if (this.closed) throw new Error(`watch() after close() on ${this.describe()}`);
    this.hints.add(onHint);
    // File events can be missed or coalesced (editors, network filesystems, gc), so a slow
    // periodic hint backs the watcher up.
    this.hints.every(this.pollIntervalMs);
    this.watcherStarting ??= this.startWatcher();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.hints.stop();
    await this.watcherStarting;
    await this.watcher?.close();
    this.watcher = undefined;
  }

  private async startWatcher(): Promise<void> {
    let gitdir: string;
    try {
      gitdir = await this.gitdir();
    } catch {
      // Not a repository (yet): resolve() reports that; the periodic hint keeps asking.
      return;
    }
    if (this.closed) return;
    // Watching the whole gitdir with a filter, rather than the three paths, because
    // packed-refs and refs/heads/<nested>/ may not exist yet and must be picked up when
    // created; the filter keeps chokidar out of objects/ and logs/.
    const watcher = chokidarWatch(gitdir, {
      ignoreInitial: true,
      ignored: (path: string) => !isRefPath(gitdir, path),
    });
    // Raw fs.watch events are the trigger, not chokidar's add/change: git updates a ref by
    // writing <ref>.lock and renaming it over <ref>, and chokidar 5 reports only every other
    // such replacement as a change (measured: 30 of 60 commits). chokidar still earns its
    // keep by watching new ref directories and a packed-refs that appears later.
    watcher.on('raw', (_event, filename, details) => {
      if (isRawRefEvent(gitdir, filename, details)) this.hints.debounce(DEBOUNCE_MS);
    });
    watcher.on('all', () => this.hints.debounce(DEBOUNCE_MS));
    // The branch may have moved between the caller's last resolve() and the watcher being
    // armed; one hint when ready closes that gap.
    watcher.on('ready', () => this.hints.emit());
    // Watch errors (e.g. the repo was deleted) are not fatal: the periodic hint continues
    // and resolve() reports the real problem.
    watcher.on('error', () => {});
    this.watcher = watcher;
  }

  private async gitdir(): Promise<string> {
    this.gitdirCache ??= await locateGitdir(this.repoPath, this.describe());
    return this.gitdirCache;
  }
}

/** Accepts "main" or "refs/heads/main". */
export function normalizeBranch(branch: string): string {
  const b = (branch || 'main').trim().replace(/^refs\/heads\//, '');
  if (!b) throw new GitSourceError('INVALID_CONFIG', 'branch must not be empty');
  return b;
}

const SHA = /^[0-9a-f]{4,40}$/i;

/**
 * Refuses revisions that could never name a ref or commit (they come from webhook payloads and
 * API queries): empty, whitespace, `..`, a leading `-`, control characters.
 */
export function assertRevision(ref: string): void {
  if (!ref || ref.length > 255 || /[\s\x00-\x1f\x7f~^:?*[\\]/.test(ref) || ref.includes('..') || ref.startsWith('-') || ref.startsWith('/') || ref.endsWith('/')) {
    throw new GitSourceError('INVALID_CONFIG', `invalid ref ${JSON.stringify(ref.slice(0, 80))}`, { ref: ref.slice(0, 80) });
  }
}

export function isShaLike(ref: string): boolean {
  return SHA.test(ref);
}

/**
 * The commit a revision names in `gitdir`: a (short) sha whose commit is present, else a ref
 * resolved as git does (`refs/...` as is, then refs/heads, refs/tags, refs/remotes...).
 */
export async function resolveRevision(gitdir: string, ref: string, label: string): Promise<string> {
  assertRevision(ref);
  if (isShaLike(ref)) {
    try {
      const oid = await expandOid({ fs, gitdir, oid: ref.toLowerCase() });
      await readCommit({ fs, gitdir, oid });
      return oid;
    } catch {
      // Not a commit here; a shorter one may still be a ref with a hex-looking name.
      if (ref.length === 40) throw new GitSourceError('COMMIT_NOT_FOUND', `commit "${ref}" not found in ${label}`, { source: label, ref });
    }
  }
  try {
    return await resolveRef({ fs, gitdir, ref });
  } catch (err) {
    if (errorCode(err) === 'NotFoundError') {
      const code = isShaLike(ref) ? 'COMMIT_NOT_FOUND' : 'BRANCH_NOT_FOUND';
      throw new GitSourceError(code, `${isShaLike(ref) ? 'commit' : 'ref'} "${ref}" not found in ${label}`, { source: label, ref });
    }
    throw new GitSourceError('READ_FAILED', `resolving "${ref}" in ${label}: ${errorMessage(err)}`, { source: label, ref });
  }
}

/** Paths whose change can move a branch: HEAD, packed-refs and refs/heads/**, minus lock files. */
function isRefPath(gitdir: string, path: string): boolean {
  const rel = relative(gitdir, path).split(sep).join('/');
  if (rel === '') return true;
  // git writes <ref>.lock and renames it into place; the rename is the event that matters.
  if (rel.endsWith('.lock')) return false;
  return (
    rel === 'HEAD' || rel === 'packed-refs' || rel === 'refs' || rel === 'refs/heads' || rel.startsWith('refs/heads/')
  );
}

/**
 * A raw event names a file relative to a watched directory, or is about a watched file
 * itself (then `filename` is its basename). Either way, did a ref path change?
 */
function isRawRefEvent(gitdir: string, filename: string, details: unknown): boolean {
  const watchedPath = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
  if (typeof watchedPath !== 'string' || !filename) return false;
  const candidates = [join(watchedPath, filename)];
  if (basename(watchedPath) === filename) candidates.push(watchedPath);
  return candidates.some((path) => path !== gitdir && isRefPath(gitdir, path));
}

async function locateGitdir(repoPath: string, label: string): Promise<string> {
  const notRepo = (why: string) =>
    new GitSourceError('NOT_A_REPOSITORY', `${label}: ${why}`, { source: label });
  const dotgit = join(repoPath, '.git');
  const dotgitStat = await stat(dotgit).catch(() => undefined);
  if (dotgitStat?.isDirectory()) return dotgit;
  if (dotgitStat?.isFile()) {
    // Submodules point .git at their real gitdir. Linked worktrees do too, but keep refs
    // in a "commondir" that isomorphic-git does not follow, so refuse them clearly.
    const match = /^gitdir:\s*(.+)$/m.exec(await readFile(dotgit, 'utf8'));
    if (!match) throw notRepo('.git file has no "gitdir:" line');
    const target = resolvePath(repoPath, match[1]!.trim());
    if (await isFile(join(target, 'commondir'))) {
      throw notRepo('linked worktrees are not supported; use the main repository path');
    }
    return target;
  }
  if ((await isFile(join(repoPath, 'HEAD'))) && (await isDir(join(repoPath, 'objects')))) return repoPath;
  throw notRepo('not a git repository (no .git directory, and not a bare repository)');
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}
