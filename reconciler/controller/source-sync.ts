import { CoalescedRunner } from '../../lib/coalesced-runner.ts';
import { WaitingError } from '../../lib/errors/index.ts';
import { TokenBucket } from '../../lib/token-bucket.ts';
import { GitSourceError } from '../git/errors.ts';
import type { GitSource } from '../git/source.ts';
import { loadManifests, type LoadResult } from '../manifests/index.ts';
import { ManifestCache } from '../manifests/manifest-cache.ts';
import { buildDesiredState, type DesiredState, type DesiredDiff } from '../desired/desired-state.ts';
import { diffObjects } from '../desired/object-diff.ts';
import { immutableChanges } from '../desired/config-refs.ts';
import { MAIN_OWNER, ownerOf, type DeploymentRecord } from '../../state/records/deployment.ts';
import { firstErrors, joinErrors, type SourceStatus } from '../../state/records/status.ts';
import type { Store } from '../../state/store.ts';
import { shortSha as short } from '../../lib/short-sha.ts';
import type { HeadDiff } from '../../state/records/preview.ts';
import { DesiredWriter } from './desired-writer.ts';

/**
 * Turns the branch's newest commit into desired state in Redis, whole or not at all.
 *
 * A commit whose manifests all validate makes the desired state its own in one MULTI (namespaces,
 * deployments, services, config versions, source status). A commit with any error applies nothing:
 * its errors go to the source status and an event, and the last good commit keeps running. Syncs
 * are serialized; a sync asked for while one runs is run once more afterwards, so the newest
 * commit is never missed.
 *
 * Each commit costs what it changed: blobs the ManifestCache holds the parse of are neither read
 * nor parsed nor validated again, the checks across files look at the changed documents against an
 * index of the others (all of them, when that cannot be trusted), records of unchanged objects are reused, only records that differ from what is stored are written
 * (DesiredWriter, with their checksums) and only deployments whose record was written or removed
 * are enqueued. repairDrift(), run by the periodic resync, rewrites what changed behind Gantry's back.
 *
 * It owns only the records of the tracked branch (owner 'main'): preview environments of pull
 * requests keep theirs beside them (owner 'pr-<N>'), and a sync never replaces or prunes those.
 */

export type SyncResult =
  | { outcome: 'unchanged'; commit: string }
  /** written / removed: desired records of every kind; enqueued: deployments whose record was one of them. */
  | { outcome: 'applied'; commit: string; diff: DesiredDiff; written: number; removed: number; enqueued: number }
  /** errors: the first MAX_REPORTED_ERRORS (state/records/status.ts); errorCount: all of them. */
  | { outcome: 'rejected'; commit: string; errors: string[]; errorCount: number }
  | { outcome: 'failed'; error: string };

export interface SourceSyncDeps {
  store: Store;
  source: GitSource;
  branch: string;
  maxFileBytes?: number;
  /** The cap on a Deployment's replicas (default 10,000; manifests/limits.ts). */
  maxReplicas?: number;
  /**
   * Fetches of refs the source does not know yet, asked for with `rateLimited` (GET
   * /api/v1/plan?ref=): `burst` at once, refilled at `perMinute`. Default 5 and 5.
   */
  refFetchLimit?: { burst: number; perMinute: number };
  /** Called with every deployment key whose desired state may have changed. */
  enqueue: (key: string) => void;
  log?: (line: string) => void;
  /** The parse cache of the branch's files (default: a new one); tests and benchmarks count parses with it. */
  manifestCache?: ManifestCache;
  /** Called after each sync with its result and how long it took (metrics). */
  onSynced?: (result: SyncResult, seconds: number) => void;
}

type Loaded = { commit: string; message: string; loaded: LoadResult } | { commit: string; tooLarge: string };

export class SourceSync {
  private readonly syncs = new CoalescedRunner(() =>
    this.exclusive(async () => {
      const t0 = performance.now();
      const result = await this.syncOnce();
      this.deps.onSynced?.(result, (performance.now() - t0) / 1000);
      return result;
    }),
  );
  private readonly refFetches: TokenBucket;
  private readonly manifests: ManifestCache;
  private readonly writer: DesiredWriter;
  /** Syncs and drift repairs run one at a time: both use the manifest cache and the writer. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: SourceSyncDeps) {
    this.refFetches = new TokenBucket(deps.refFetchLimit?.burst ?? 5, deps.refFetchLimit?.perMinute ?? 5);
    this.manifests = deps.manifestCache ?? new ManifestCache();
    this.writer = new DesiredWriter(deps.store);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => {});
    return run;
  }

  /**
   * The files of `commit`, loaded. With `cache`, blobs it holds are listed without being read and
   * are not parsed again. Past a limit of the commit as a whole (files, bytes, depth) the commit is
   * rejected like invalid manifests (`tooLarge`).
   */
  private async load(commit: string, cache?: ManifestCache): Promise<Loaded> {
    let files;
    try {
      files = await this.deps.source.read(commit, cache ? { reuse: (path, oid) => cache.sizeOf(path, oid) } : {});
    } catch (err) {
      if (err instanceof GitSourceError && err.code === 'COMMIT_TOO_LARGE') return { commit: typeof err.data.commit === 'string' ? err.data.commit : commit, tooLarge: err.message };
      throw err;
    }
    return { commit: files.commit, message: files.message, loaded: loadManifests(files.files, { maxFileBytes: this.deps.maxFileBytes, maxReplicas: this.deps.maxReplicas, cache }) };
  }

  /**
   * Syncs now, or, when a sync is in flight, once right after it: every caller gets the result of
   * a sync that began after its call, and any number of calls meanwhile share one follow-up.
   */
  sync(): Promise<SyncResult> {
    return this.syncs.run();
  }

  /**
   * Reads and validates the branch head without applying it. `errors` are the first
   * MAX_REPORTED_ERRORS, `errorCount` says how many there are: a commit with 100,000 errors must
   * not become a status, an event or an API answer of that size.
   */
  async preview(ref?: string, current?: DeploymentRecord[]): Promise<{ commit: string; desired?: DesiredState; errors: string[]; errorCount: number; warnings: string[]; warningCount: number }> {
    const read = await this.load(ref ?? (await this.deps.source.resolve()));
    if ('tooLarge' in read) return { commit: read.commit, errors: [read.tooLarge], errorCount: 1, warnings: [], warningCount: 0 };
    const { loaded } = read;
    const files = { commit: read.commit, message: read.message };
    const { errors: warnings, errorCount: warningCount } = firstErrors(loaded.warnings.map((w) => w.toString()));
    if (loaded.errors.length > 0) return { commit: files.commit, ...firstErrors(loaded.errors.map((e) => e.toString())), warnings, warningCount };
    const desired = buildDesiredState(loaded.objects, files.commit, current ?? (await this.mainDeployments()));
    // Immutable ConfigMaps and Secrets keep their content, as the Kubernetes API server enforces.
    const immutable = immutableChanges(loaded.objects, desired.configs ?? [], await this.deps.store.configs.readApplied());
    if (immutable.length > 0) return { commit: files.commit, ...firstErrors(immutable), warnings, warningCount };
    // The subject line names the revision in `gantry rollout history`.
    for (const d of desired.deployments) d.commitMessage = files.message.split('\n')[0];
    return { commit: files.commit, desired, errors: [], errorCount: 0, warnings, warningCount };
  }

  /** What syncing the branch head (or `ref`) would change, without changing anything. */
  async diffHead(ref?: string): Promise<HeadDiff> {
    return (await this.planRevision(ref)).diff;
  }

  /**
   * Makes any ref or sha of the source readable (fetching it if remote); its commit sha. With
   * `rateLimited` (a ref named by an API caller), fetches of refs the source does not know yet take
   * from a token bucket, so nobody can make Gantry fetch arbitrary refs over and over; an empty
   * bucket throws FETCH_RATE_LIMITED, saying when to try again.
   */
  fetchRef(ref: string, opts: { rateLimited?: boolean } = {}): Promise<string> {
    if (!opts.rateLimited) return this.deps.source.fetchRef(ref);
    return this.deps.source.fetchRef(ref, {
      beforeFetch: () => {
        const waitMs = this.refFetches.take();
        if (waitMs > 0) {
          const { capacity, perMinute } = this.refFetches;
          throw new WaitingError('FETCH_RATE_LIMITED', `too many fetches of refs not fetched before (at most ${capacity} at once, ${perMinute} a minute): try again in ${Math.ceil(waitMs / 1000)}s`, waitMs, { ref: ref.slice(0, 80) });
        }
      },
    });
  }

  /** The deployments the tracked branch owns (not those of previews). */
  async mainDeployments(): Promise<DeploymentRecord[]> {
    return (await this.deps.store.readDeployments()).filter((d) => ownerOf(d) === MAIN_OWNER);
  }

  /** diffHead, plus the desired state of that revision when it is valid (read once for both). */
  async planRevision(ref?: string): Promise<{ diff: HeadDiff; desired?: DesiredState }> {
    const [current, status] = await Promise.all([this.mainDeployments(), this.deps.store.readSourceStatus()]);
    const p = await this.preview(ref, current);
    const base = status?.lastAppliedCommit;
    const warned = p.warningCount > 0 ? { warnings: p.warnings, warningCount: p.warningCount } : {};
    if (!p.desired) return { diff: { commit: p.commit, base, valid: false, errors: p.errors, errorCount: p.errorCount, ...warned, summary: 'invalid', added: [], changed: [], removed: [] } };
    // Every kind, field by field, against what the branch applied (previews own none of these).
    const [namespaces, services, configs] = await Promise.all([this.deps.store.readNamespaces(), this.deps.store.services.readServices(), this.deps.store.configs.readApplied()]);
    const rows = diffObjects(
      { namespaces: namespaces.filter((n) => ownerOf(n) === MAIN_OWNER), deployments: current, services, configs },
      { namespaces: p.desired.namespaces, deployments: p.desired.deployments, services: p.desired.services, configs: p.desired.configs },
    );
    const diff: HeadDiff = {
      commit: p.commit,
      base,
      valid: true,
      errors: [],
      ...warned,
      summary: `+${rows.added.length} ~${rows.changed.length} -${rows.removed.length}`,
      ...rows,
    };
    return { diff, desired: p.desired };
  }

  private async syncOnce(): Promise<SyncResult> {
    const { store, source, log } = this.deps;
    const prev = (await store.readSourceStatus()) ?? { source: source.describe(), branch: this.deps.branch };
    const now = Date.now();
    let commit: string;
    try {
      commit = await source.resolve();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (prev.lastFetchError !== message) {
        await store.writeSourceStatus({ ...prev, lastFetchError: message });
        await store.events.record({ type: 'Warning', reason: 'FetchFailed', object: 'source', message });
        log?.(`source: fetch failed: ${message}`);
      }
      return { outcome: 'failed', error: message };
    }
    if (commit === prev.lastAppliedCommit || commit === prev.rejectedCommit) {
      if (prev.lastFetchError) await store.writeSourceStatus({ ...prev, lastFetchError: undefined });
      return { outcome: 'unchanged', commit };
    }

    const base: SourceStatus = { ...prev, source: source.describe(), branch: this.deps.branch, lastAttemptedCommit: commit, lastAttemptedAt: now, lastFetchError: undefined };
    const reject = async (found: { errors: string[]; errorCount: number }): Promise<SyncResult> => {
      const { errors, errorCount } = found;
      await store.writeSourceStatus({ ...base, rejectedCommit: commit, errors, errorCount, lastError: `${errorCount} error(s): ${errors[0]}` });
      await store.events.record({ type: 'Warning', reason: 'CommitRejected', object: 'source', message: `commit ${short(commit)} rejected, keeping ${short(prev.lastAppliedCommit)}: ${errorCount} error(s): ${joinErrors(errors, errorCount)}` });
      log?.(`source: commit ${short(commit)} rejected (${errorCount} error(s)), keeping ${short(prev.lastAppliedCommit)}:\n  ${joinErrors(errors, errorCount, '\n  ')}`);
      // Every deployment's status says that the branch's head was rejected.
      for (const key of await store.deploymentKeys()) this.deps.enqueue(key);
      return { outcome: 'rejected', commit, errors, errorCount };
    };

    const read = await this.load(commit, this.manifests);
    if ('tooLarge' in read) return reject({ errors: [read.tooLarge], errorCount: 1 });
    const { loaded } = read;
    if (loaded.errors.length > 0) return reject(firstErrors(loaded.errors.map((e) => e.toString())));
    const plan = await this.writer.plan(loaded.objects, commit, read.message, { changes: loaded.changes });
    if (plan.immutable.length > 0) return reject(firstErrors(plan.immutable));

    const { errors: warnings, errorCount: warningCount } = firstErrors(loaded.warnings.map((w) => w.toString()));
    const diff = plan.build.diff;
    const status: SourceStatus = {
      ...base, lastAppliedCommit: commit, lastAppliedAt: now, rejectedCommit: undefined, errors: undefined, errorCount: undefined, lastError: undefined,
      warnings: warningCount > 0 ? warnings : undefined, warningCount: warningCount > 0 ? warningCount : undefined,
    };
    const result = await this.writer.write(plan, status);

    await store.events.record({ type: 'Normal', reason: 'CommitApplied', object: 'source', message: `commit ${short(commit)} applied: ${diff.summary}` });
    log?.(`source: commit ${short(commit)} applied: ${diff.summary} (${result.written.length} record(s) written, ${result.removed.length} removed, ${plan.build.rebuilt} object(s) built, ${this.manifests.last.parsed} file(s) parsed)`);
    if (warningCount > 0) {
      // Said once per applied commit: what was listed but not applied (ignored kinds and fields).
      const text = joinErrors(warnings.slice(0, 10), warningCount);
      await store.events.record({ type: 'Warning', reason: 'ManifestWarnings', object: 'source', message: `commit ${short(commit)}: ${warningCount} warning(s): ${text}` });
      log?.(`source: commit ${short(commit)}: ${warningCount} warning(s):\n  ${joinErrors(warnings, warningCount, '\n  ')}`);
    }
    // Only what the commit changed: an unchanged deployment has nothing new to converge to.
    for (const key of result.deployments) this.deps.enqueue(key);
    return { outcome: 'applied', commit, diff, written: result.written.length, removed: result.removed.length, enqueued: result.deployments.length };
  }

  /**
   * The periodic resync's repair of desired state: records of the applied commit that were deleted
   * or changed behind Gantry's back (found by their checksums, inside Redis) are written again, and
   * their deployments enqueued. Costs one pass of a Lua script over the checksums when nothing
   * drifted; ids of what it rewrote otherwise.
   */
  repairDrift(): Promise<string[]> {
    return this.exclusive(async () => {
      const { store, log } = this.deps;
      const commit = (await store.readSourceStatus())?.lastAppliedCommit;
      if (!commit) return [];
      const result = await this.writer.repair(commit, async () => {
        const read = await this.load(commit, this.manifests);
        if ('tooLarge' in read || read.loaded.errors.length > 0) {
          log?.(`source: desired state drifted, but commit ${short(commit)} no longer loads (${'tooLarge' in read ? read.tooLarge : read.loaded.errors[0]!.toString()}); the next commit rewrites it`);
          return undefined;
        }
        return { objects: read.loaded.objects, message: read.message, changes: read.loaded.changes };
      });
      if (!result) return [];
      const repaired = [...result.written, ...result.removed];
      if (repaired.length > 0) {
        const list = joinErrors(repaired.slice(0, 10), repaired.length);
        await store.events.record({ type: 'Warning', reason: 'DesiredStateRepaired', object: 'source', message: `desired state of commit ${short(commit)} had drifted in Redis: rewrote ${repaired.length} record(s): ${list}` });
        log?.(`source: desired state drifted: rewrote ${repaired.length} record(s) of commit ${short(commit)}: ${list}`);
      }
      for (const key of result.deployments) this.deps.enqueue(key);
      return repaired;
    });
  }
}
