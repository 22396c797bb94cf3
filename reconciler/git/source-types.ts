/**
 * The shapes every Git source shares: its configuration, the files of a commit and the GitSource
 * interface. Kept apart from source.ts, which picks an implementation, so the implementations
 * (local-source.ts, remote-source.ts) and tree-reader.ts can use them without an import cycle.
 */
import type { FetchLimits } from './pack-guard.ts';

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
  /** What one commit may hold; defaults in tree-reader.ts (DEFAULT_COMMIT_LIMITS). */
  limits?: Partial<CommitLimits>;
  /** Remote only: what one fetch may bring; defaults in pack-guard.ts (DEFAULT_FETCH_LIMITS). */
  fetchLimits?: Partial<FetchLimits>;
  /** Remote only: shallow clone/fetch depth. Omitted means full history. */
  depth?: number;
}

/** Caps on one commit under the sub-path; past any of them it is rejected whole (COMMIT_TOO_LARGE). */
export interface CommitLimits {
  /** Manifest files (*.yaml, *.yml, *.json). */
  maxFiles: number;
  /** Bytes of all manifest files read (each also at most maxFileBytes). */
  maxTotalBytes: number;
  /** Files and directories of every kind walked. */
  maxEntries: number;
  /** Directory levels below the sub-path. */
  maxDepth: number;
  /** Size of one tree object (a directory listing) or of the commit object. */
  maxTreeBytes: number;
}

export interface CommitFile {
  /** Repo-relative posix path, e.g. apps/web.yaml. */
  path: string;
  /** Empty when size > maxFileBytes. */
  content: Uint8Array;
  /** Real blob size in bytes. */
  size: number;
  /** The blob's object id: the same id is the same content, whatever commit it is read from. */
  oid: string;
  /**
   * Listed without being read (empty content), because the reader's `reuse` said the caller
   * already holds what it made of this blob at this path (see ReadOptions.reuse).
   */
  reused?: true;
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

export interface FetchRefOptions {
  /**
   * Called just before a fetch for a ref this source does not know yet (not the tracked branch,
   * not a ref fetched before, not a sha already present); throwing refuses the fetch. A rate limit
   * hooks in here (GET /api/v1/plan?ref=).
   */
  beforeFetch?: (ref: string) => void;
}

export interface ReadOptions {
  maxFileBytes?: number;
  limits?: Partial<CommitLimits>;
  /**
   * Asked for every manifest blob before it is read: the size of that blob when the caller already
   * holds what it made of it at that path (a parse cache keyed by blob id), undefined to read it.
   * A reused blob is listed with empty content (`reused: true`) and counts towards the limits with
   * that size, so a commit is judged the same whether its blobs are read or reused.
   */
  reuse?: (path: string, oid: string) => number | undefined;
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
  fetchRef(ref: string, opts?: FetchRefOptions): Promise<string>;
  /** Calls onHint when the branch may have moved. Hints are advisory: they can be spurious or coalesced. */
  watch(onHint: () => void): void;
  /** Stops watching. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_TOKEN_ENV = 'GANTRY_GIT_TOKEN';
