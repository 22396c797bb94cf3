/**
 * A Git source behind smart HTTP(S). The first resolve() clones the branch, without a
 * checkout, into <dataDir>/git-cache/<hash of url>; later ones fetch into it. Files are then
 * read from that object store exactly as for a local repository.
 *
 * Credentials: URL userinfo (stripped before the URL reaches isomorphic-git, so it is never
 * written to the cache's git config) or else the token in process.env[tokenEnv], read at each
 * fetch so a rotated token is picked up. Both are scrubbed from every error.
 */
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { clone, fetch as gitFetch, resolveRef, type GitAuth } from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { GitSourceError, errorCode, errorMessage, type GitSourceErrorCode } from './errors.ts';
import { Hints } from './hints.ts';
import { DEFAULT_FETCH_LIMITS, FetchGuard, type FetchLimits } from './pack-guard.ts';
import { assertRevision, isShaLike, normalizeBranch, resolveRevision } from './local-source.ts';
import { basicAuthForms, redact, redactData, redactUrl, splitCredentials } from './redact.ts';
import { DEFAULT_MAX_FILE_BYTES, normalizeSubPath, readCommitFiles } from './tree-reader.ts';
import { DEFAULT_TOKEN_ENV, type CommitFiles, type FetchRefOptions, type GitSource, type ReadOptions, type SourceConfig } from './source-types.ts';

const DEFAULT_REMOTE_POLL_MS = 60_000;
/** Username sent with a bare token; GitHub requires it for app tokens, others ignore it. */
const TOKEN_USERNAME = 'x-access-token';
/** Refs remembered as fetched before (so not rate-limited as unknown); the oldest go first. */
const MAX_KNOWN_REFS = 1000;

/**
 * Per cache directory, the tail of the chain of operations on it. Sources for the same URL
 * (e.g. several sub-paths of one repository) share a cache, and isomorphic-git does not lock
 * refs or packfiles against a concurrent fetch into the same gitdir.
 */
const cacheLocks = new Map<string, Promise<unknown>>();

function withCacheLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = cacheLocks.get(dir) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  cacheLocks.set(dir, tail);
  void tail.then(() => {
    if (cacheLocks.get(dir) === tail) cacheLocks.delete(dir);
  });
  return next;
}

export class RemoteGitSource implements GitSource {
  readonly kind = 'remote' as const;
  /** The URL without credentials. */
  readonly url: string;
  readonly branch: string;
  readonly subPath: string;
  readonly cacheDir: string;
  private readonly displayUrl: string;
  private readonly urlUsername: string | undefined;
  private readonly urlPassword: string | undefined;
  private readonly tokenEnv: string;
  private readonly pollIntervalMs: number;
  private readonly maxFileBytes: number;
  private readonly limits: SourceConfig['limits'];
  private readonly depth: number | undefined;
  private readonly fetchLimits: FetchLimits;
  private readonly hints = new Hints();
  private inflight: Promise<string> | undefined;
  /** Refs outside the tracked branch that were fetched (found) before, oldest first. */
  private readonly knownRefs = new Set<string>();

  constructor(cfg: SourceConfig) {
    const split = splitCredentials(cfg.repo.trim());
    this.url = split.url;
    this.urlUsername = split.username;
    this.urlPassword = split.password;
    this.displayUrl = redactUrl(cfg.repo.trim());
    this.branch = normalizeBranch(cfg.branch);
    this.subPath = normalizeSubPath(cfg.subPath);
    this.tokenEnv = cfg.tokenEnv ?? DEFAULT_TOKEN_ENV;
    this.pollIntervalMs = cfg.pollIntervalMs ?? DEFAULT_REMOTE_POLL_MS;
    this.maxFileBytes = cfg.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.limits = cfg.limits;
    this.depth = cfg.depth;
    this.fetchLimits = { ...DEFAULT_FETCH_LIMITS, ...cfg.fetchLimits };
    // Keyed by the credential-free URL so rotating a token keeps the cache.
    const key = createHash('sha256').update(this.url).digest('hex').slice(0, 16);
    this.cacheDir = join(resolvePath(cfg.dataDir), 'git-cache', key);
  }

  describe(): string {
    return `${this.displayUrl}@${this.branch}${this.subPath ? `:${this.subPath}` : ''}`;
  }

  /** Concurrent callers share one fetch: a burst of hints must not become a burst of fetches. */
  resolve(): Promise<string> {
    this.inflight ??= withCacheLock(this.cacheDir, () => this.sync()).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  async read(commit: string, opts: ReadOptions = {}): Promise<CommitFiles> {
    // Under the cache lock: a fetch writes packfiles and refs the reader would otherwise
    // see half-written.
    return withCacheLock(this.cacheDir, () =>
      readCommitFiles({
        gitdir: this.cacheDir,
        commit,
        subPath: this.subPath,
        maxFileBytes: opts.maxFileBytes ?? this.maxFileBytes,
        limits: { ...this.limits, ...opts.limits },
        reuse: opts.reuse,
      }),
    );
  }

  /**
   * A branch or full ref is fetched by name (objects only for refs outside refs/heads, such as
   * refs/pull/7/head); a sha is looked up in the cache, after fetching every branch if it is not
   * there yet (smart HTTP servers do not serve arbitrary shas).
   */
  fetchRef(ref: string, opts: FetchRefOptions = {}): Promise<string> {
    assertRevision(ref);
    return withCacheLock(this.cacheDir, async () => {
      const guard = new FetchGuard(this.fetchLimits);
      try {
        if (!(await exists(join(this.cacheDir, 'config')))) await this.cloneFresh(guard);
      } catch (err) {
        throw guard.stopped ? this.tooLargeError(guard) : this.fetchError(err);
      }
      if (isShaLike(ref)) {
        const found = await resolveRevision(this.cacheDir, ref, this.describe()).catch(() => undefined);
        if (found) return found;
        opts.beforeFetch?.(ref);
        await this.fetchRemote({ remoteRef: `refs/heads/${this.branch}`, singleBranch: false });
        return resolveRevision(this.cacheDir, ref, this.describe());
      }
      const remoteRef = ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
      if (remoteRef !== `refs/heads/${this.branch}` && !this.knownRefs.has(remoteRef)) opts.beforeFetch?.(ref);
      const fetched = await this.fetchRemote({ remoteRef, singleBranch: true });
      if (!fetched) throw this.error('BRANCH_NOT_FOUND', `ref "${ref}" not found in ${this.describe()}`, { ref });
      this.rememberRef(remoteRef);
      return fetched;
    });
  }

  private rememberRef(remoteRef: string): void {
    if (remoteRef === `refs/heads/${this.branch}`) return;
    this.knownRefs.delete(remoteRef);
    this.knownRefs.add(remoteRef);
    if (this.knownRefs.size > MAX_KNOWN_REFS) this.knownRefs.delete(this.knownRefs.values().next().value!);
  }

  /** One fetch into the cache; the tracked branch's commit is offered as a "have". */
  private async fetchRemote(opts: { remoteRef?: string; singleBranch: boolean }): Promise<string | null> {
    const guard = new FetchGuard(this.fetchLimits);
    try {
      const res = await gitFetch({
        fs,
        http: guard.wrap(http),
        gitdir: this.cacheDir,
        url: this.url,
        remote: 'origin',
        ref: `refs/remotes/origin/${this.branch}`,
        remoteRef: opts.remoteRef,
        singleBranch: opts.singleBranch,
        tags: false,
        depth: this.depth,
        onAuth: () => this.auth(),
      });
      return res.fetchHead;
    } catch (err) {
      if (guard.stopped) throw this.tooLargeError(guard);
      if (opts.remoteRef && errorCode(err) === 'NotFoundError') {
        throw this.error('BRANCH_NOT_FOUND', `ref "${opts.remoteRef}" not found in ${this.describe()}`, { ref: opts.remoteRef });
      }
      throw this.fetchError(err);
    }
  }

  watch(onHint: () => void): void {
    this.hints.add(onHint);
    this.hints.every(this.pollIntervalMs);
  }

  async close(): Promise<void> {
    this.hints.stop();
    await this.inflight?.catch(() => undefined);
  }

  private async sync(): Promise<string> {
    const guard = new FetchGuard(this.fetchLimits);
    try {
      if (await exists(join(this.cacheDir, 'config'))) {
        await gitFetch({
          fs,
          http: guard.wrap(http),
          gitdir: this.cacheDir,
          url: this.url,
          remote: 'origin',
          // `ref` names the local ref whose commit is offered as a "have", so only new
          // objects are sent; `remoteRef` is the branch asked for.
          ref: `refs/remotes/origin/${this.branch}`,
          remoteRef: `refs/heads/${this.branch}`,
          singleBranch: true,
          tags: false,
          depth: this.depth,
          onAuth: () => this.auth(),
        });
      } else {
        await this.cloneFresh(guard);
      }
    } catch (err) {
      if (guard.stopped) throw this.tooLargeError(guard);
      throw this.fetchError(err);
    }
    try {
      return await resolveRef({ fs, gitdir: this.cacheDir, ref: `refs/remotes/origin/${this.branch}` });
    } catch {
      // An empty remote repository clones "successfully" with no refs at all.
      throw this.error('BRANCH_NOT_FOUND', `branch "${this.branch}" not found in ${this.describe()}`);
    }
  }

  /** Clones next to the cache and renames into place, so a crash never leaves a half clone. */
  private async cloneFresh(guard = new FetchGuard(this.fetchLimits)): Promise<void> {
    const partial = `${this.cacheDir}.partial`;
    await mkdir(dirname(this.cacheDir), { recursive: true });
    await rm(partial, { recursive: true, force: true });
    await clone({
      fs,
      http: guard.wrap(http),
      // The typings require `dir`; with noCheckout nothing is written to it.
      dir: partial,
      gitdir: partial,
      url: this.url,
      ref: this.branch,
      singleBranch: true,
      noCheckout: true,
      noTags: true,
      depth: this.depth,
      onAuth: () => this.auth(),
    });
    await rename(partial, this.cacheDir);
  }

  private auth(): GitAuth | undefined {
    if (this.urlPassword !== undefined) return { username: this.urlUsername ?? TOKEN_USERNAME, password: this.urlPassword };
    // https://<token>@host/...: a username without password is a token.
    if (this.urlUsername !== undefined) return { username: TOKEN_USERNAME, password: this.urlUsername };
    const token = process.env[this.tokenEnv];
    // Returning nothing makes isomorphic-git give up with the server's 401.
    return token ? { username: TOKEN_USERNAME, password: token } : undefined;
  }

  private secrets(): string[] {
    const token = process.env[this.tokenEnv];
    // A username next to a password is usually a fixed word ("oauth2", "x-access-token")
    // and masking it would garble messages; a long one is probably a token-as-username.
    const userIsSecret =
      this.urlUsername !== undefined && (this.urlPassword === undefined || this.urlUsername.length >= 20);
    return [
      ...(token ? [token, ...basicAuthForms(TOKEN_USERNAME, token)] : []),
      ...(this.urlPassword ? [this.urlPassword] : []),
      ...(userIsSecret && this.urlUsername ? [this.urlUsername] : []),
      ...basicAuthForms(this.urlUsername, this.urlPassword),
      ...(this.urlUsername && this.urlPassword === undefined ? basicAuthForms(TOKEN_USERNAME, this.urlUsername) : []),
    ];
  }

  private error(code: GitSourceErrorCode, message: string, data: Record<string, unknown> = {}): GitSourceError {
    const secrets = this.secrets();
    return new GitSourceError(
      code,
      redact(message, secrets),
      redactData({ source: this.describe(), ...data }, secrets),
    );
  }

  /** A fetch stopped by a limit of pack-guard.ts: nothing it brought was kept. */
  private tooLargeError(guard: FetchGuard): GitSourceError {
    const stop = guard.stopped!;
    return this.error('FETCH_TOO_LARGE', `fetching ${this.describe()} stopped: ${stop.message} (nothing fetched was kept; the commit before it keeps serving)`, { limit: stop.limit, ...stop.data });
  }

  private fetchError(err: unknown): GitSourceError {
    const code = errorCode(err);
    const cause = { code, message: errorMessage(err) };
    if (err instanceof GitSourceError) return err;
    if (code === 'HttpError') {
      const status = (err as { data?: { statusCode?: number } }).data?.statusCode;
      if (status === 401 || status === 403) {
        const hint = this.auth() ? 'credentials were rejected' : `no credentials: set $${this.tokenEnv}`;
        return this.error('AUTH_FAILED', `authentication failed for ${this.describe()} (HTTP ${status}): ${hint}`, {
          status,
        });
      }
      if (status === 404) {
        return this.error('NOT_A_REPOSITORY', `no repository at ${this.describe()} (HTTP 404)`, { status });
      }
      return this.error('FETCH_FAILED', `fetching ${this.describe()} failed: HTTP ${status}`, { status, cause });
    }
    if (code === 'SmartHttpError') {
      return this.error('NOT_A_REPOSITORY', `${this.describe()} is not a git smart HTTP endpoint`, { cause });
    }
    if (code === 'NotFoundError') {
      return this.error('BRANCH_NOT_FOUND', `branch "${this.branch}" not found in ${this.describe()}`, { cause });
    }
    if (code === 'UserCanceledError') {
      return this.error('AUTH_FAILED', `authentication failed for ${this.describe()}`, { cause });
    }
    return this.error('FETCH_FAILED', `fetching ${this.describe()} failed: ${cause.message}`, { cause });
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}
