/**
 * Git sources: where Gantry's desired state comes from.
 *
 * A source is a repository (a local path, working or bare, or an http(s) URL), a branch and
 * a sub-path inside it. The desired state is always a commit: `resolve()` names the commit
 * the branch points at, `read()` returns the manifest files (*.yaml, *.yml, *.json) under
 * the sub-path at that commit, read from git objects without a checkout. `watch()` only
 * hints that the branch may have moved; the caller confirms with `resolve()`.
 *
 * Remote sources are cloned (no checkout) into `<dataDir>/git-cache/<hash of url>` and
 * fetched on each `resolve()`. Credentials come from `process.env[tokenEnv]` or from the
 * URL's userinfo and never appear in errors or `describe()`.
 */
import { LocalGitSource } from './local-source.ts';
import { RemoteGitSource } from './remote-source.ts';

export { GitSourceError, isGitSourceError, type GitSourceErrorCode } from './errors.ts';
export { redact, redactUrl } from './redact.ts';

export interface SourceConfig {
  /** Local path (working or bare repository) or http(s) URL, optionally with user:pass@. */
  repo: string;
  branch: string;
  /** Directory inside the repository holding the manifests; '.' is the root. */
  subPath: string;
  /** Remote clones are cached under <dataDir>/git-cache/<hash of url>. */
  dataDir: string;
  /** Hint period: remote default 60_000 (the poll), local default 10_000 (a safety net under the file watcher). */
  pollIntervalMs?: number;
  /** Name of the env var holding an HTTPS token; default GANTRY_GIT_TOKEN. Read at each fetch. */
  tokenEnv?: string;
  /** Blobs larger than this are listed with empty content and their size; default 1 MiB. */
  maxFileBytes?: number;
  /** Remote only: shallow clone/fetch depth. Omitted means full history. */
  depth?: number;
}

export interface CommitFile {
  /** Repo-relative posix path, e.g. apps/web.yaml. */
  path: string;
  /** Empty when size > maxFileBytes. */
  content: Uint8Array;
  /** Real blob size in bytes. */
  size: number;
}

export interface CommitFiles {
  commit: string;
  message: string;
  /** "Name <email>" */
  author: string;
  /** Author time, milliseconds since the epoch. */
  timestamp: number;
  /** Sorted by path. */
  files: CommitFile[];
}

export interface ReadOptions {
  maxFileBytes?: number;
}

export interface GitSource {
  readonly kind: 'local' | 'remote';
  /** e.g. "/tmp/repo@main:apps" or "https://***@host/repo.git@main"; never contains credentials. */
  describe(): string;
  /** Fetches if remote, then returns the branch's current commit sha. Throws GitSourceError. */
  resolve(): Promise<string>;
  /** Manifest files under subPath at `commit`. Throws GitSourceError. */
  read(commit: string, opts?: ReadOptions): Promise<CommitFiles>;
  /**
   * Makes any revision readable and returns its commit sha: a full ref (`refs/pull/7/head`,
   * `refs/merge-requests/7/head`), a branch name, or a (possibly short) sha. A remote source
   * fetches the ref first (objects only: no local ref is written for non-branch refs).
   * Throws GitSourceError (BRANCH_NOT_FOUND for an unknown ref, COMMIT_NOT_FOUND for a sha).
   */
  fetchRef(ref: string): Promise<string>;
  /** Calls onHint when the branch may have moved. Hints are advisory: they can be spurious or coalesced. */
  watch(onHint: () => void): void;
  /** Stops watching. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_TOKEN_ENV = 'GANTRY_GIT_TOKEN';

export function isRemoteRepo(repo: string): boolean {
  return /^https?:\/\//i.test(repo.trim());
}

export function createGitSource(cfg: SourceConfig): GitSource {
  return isRemoteRepo(cfg.repo) ? new RemoteGitSource(cfg) : new LocalGitSource(cfg);
}
