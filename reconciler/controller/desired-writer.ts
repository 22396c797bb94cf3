import { randomUUID } from 'node:crypto';
import type { LoadedManifest } from '../manifests/types.ts';
import type { LoadResult } from '../manifests/load-manifests.ts';
import { countEntries, DesiredBuilder, type DesiredBuild, type DesiredEntry } from '../desired/desired-index.ts';
import { immutableChanges } from '../desired/config-refs.ts';
import { CHECKS_PER_KIND, checksum, desiredId, type DesiredWrite } from '../../state/desired-store.ts';
import type { ConfigVersionRecord } from '../../state/records/config.ts';
import { MAIN_OWNER } from '../../state/records/deployment.ts';
import type { SourceStatus } from '../../state/records/status.ts';
import type { Store } from '../../state/store.ts';

/**
 * The tracked branch's desired state in Redis, written incrementally (SourceSync's write side).
 *
 * It keeps what it wrote last in memory (`written`), and trusts it while desired-checksums' @token
 * is still the one it wrote; otherwise (it just started, Redis lost its data, something else wrote)
 * it reads the stored records back first and rewrites every checksum with its next write. A commit
 * is then compared with that, object by object (reconciler/desired/desired-index.ts), and only
 * what differs is written: in one MULTI with the source status, as the whole commit or nothing.
 *
 * repair() is the periodic resync's look at drift: lua/desired-drift-1.lua compares every stored
 * value with its checksum inside Redis; the records of failed checks are rewritten as this process
 * wrote them. When that cannot be trusted (checks missing, or nothing in memory after a restart),
 * the applied commit is loaded again (from the manifest cache when warm) and compared with what is
 * stored record by record, which reads everything once: only then, not every resync.
 */

interface Written {
  token: string;
  commit: string;
  entries: ReadonlyMap<string, DesiredEntry>;
}

/** A commit built against what is stored, ready to write (or rejected for its immutable configs). */
export interface DesiredPlan {
  commit: string;
  build: DesiredBuild;
  /** The stored checksums are not known to match: all are rewritten. */
  resetChecksums: boolean;
  /** Changes of immutable ConfigMaps and Secrets: the commit must be rejected. */
  immutable: string[];
}

export interface DesiredWriteResult {
  /** Ids of the records written, and removed ("deployment/<ns>/<name>", ...). */
  written: string[];
  removed: string[];
  /** Deployments whose record was written or removed: what to reconcile. */
  deployments: string[];
}

const checkCount = (counts: DesiredBuild['counts']) => Object.entries(counts).reduce((n, [kind, count]) => n + CHECKS_PER_KIND[kind as keyof typeof counts] * count, 0);

export class DesiredWriter {
  private readonly builder = new DesiredBuilder();
  private written?: Written;

  constructor(private readonly store: Store) {}

  /** What is stored: in memory when @token says it is current (one HGET), else read back. */
  private async stored(force = false): Promise<{ entries: ReadonlyMap<string, DesiredEntry>; fromStore: boolean }> {
    const w = this.written;
    if (!force && w && (await this.store.desired.readToken()) === w.token) return { entries: w.entries, fromStore: false };
    this.builder.forget();
    const entries = new Map<string, DesiredEntry>();
    for (const { item, raw } of await this.store.desired.readStored(MAIN_OWNER)) {
      const id = desiredId(item);
      entries.set(id, { ...item, id, sum: checksum(raw) } as DesiredEntry);
    }
    return { entries, fromStore: true };
  }

  /** Builds `commit`'s validated objects against what is stored. Writes nothing. */
  async plan(objects: LoadedManifest[], commit: string, message: string, opts: { force?: boolean; changes?: LoadResult['changes'] } = {}): Promise<DesiredPlan> {
    const { entries, fromStore } = await this.stored(opts.force);
    const build = this.builder.build(objects, commit, message, entries, opts.changes);
    // Immutable ConfigMaps and Secrets keep their content, as the Kubernetes API server enforces:
    // only those whose record changed can have changed.
    const configs = build.upsert.filter((u) => u.entry.kind === 'config');
    const immutable = configs.length === 0 ? [] : immutableChanges(objects, configs.map((u) => u.entry.record as ConfigVersionRecord), configs.flatMap((u) => (u.before?.kind === 'config' ? [u.before.record] : [])));
    return { commit, build, resetChecksums: fromStore, immutable };
  }

  /** Writes what `plan` found different (and `also`: records to write again), with the source status. */
  async write(plan: DesiredPlan, sourceStatus?: SourceStatus, also: DesiredEntry[] = []): Promise<DesiredWriteResult> {
    const { build } = plan;
    const upsert: DesiredWrite[] = build.upsert.map((u) => ({ item: u.entry, json: u.json, ...(u.before ? { before: u.before } : {}) }));
    const planned = new Set(upsert.map((u) => desiredId(u.item)));
    for (const e of also) if (!planned.has(e.id)) upsert.push({ item: e, json: JSON.stringify(e.record) });
    const token = randomUUID();
    await this.store.desired.write({
      upsert,
      remove: build.remove,
      ...(plan.resetChecksums ? { resetChecksums: [...build.entries.values()].map((e) => ({ item: e, sum: e.sum })) } : {}),
      token,
      count: checkCount(build.counts),
      ...(sourceStatus ? { sourceStatus } : {}),
    });
    this.written = { token, commit: plan.commit, entries: build.entries };
    const written = upsert.map((u) => desiredId(u.item));
    const removed = build.remove.map((e) => e.id);
    const deployments = [...written, ...removed].filter((id) => id.startsWith('deployment/')).map((id) => id.slice('deployment/'.length));
    return { written, removed, deployments };
  }

  /**
   * Rewrites desired records that differ from their checksums (deleted, changed, of another type)
   * as `commit` (the applied one) has them. `load` gives its validated objects, when needed.
   * Undefined when there is no drift; nothing is written when `load` fails.
   */
  async repair(commit: string, load: () => Promise<{ objects: LoadedManifest[]; message: string; changes?: LoadResult['changes'] } | undefined>): Promise<DesiredWriteResult | undefined> {
    const drift = await this.store.desired.findDrift();
    const lost = drift.count === undefined || drift.checks !== drift.count;
    if (!lost && drift.failed.length === 0) return undefined;
    const failed = new Set(drift.failed);
    const owners = (entries: ReadonlyMap<string, DesiredEntry>) => [...entries.values()].filter((e) => this.store.desired.checksOf(e, e.sum).some(([f]) => failed.has(f)));
    const w = this.written;
    if (!lost && w && w.token === drift.token && w.commit === commit) {
      // What this process wrote is what should be there: the records of failed checks, again.
      const again = owners(w.entries);
      const owned = new Set(again.flatMap((e) => this.store.desired.checksOf(e, e.sum).map(([f]) => f)));
      const build: DesiredBuild = { entries: new Map(w.entries), desired: { commit, namespaces: [], deployments: [] }, upsert: [], remove: [], rebuilt: 0, diff: { added: [], changed: [], removed: [], unchanged: 0, summary: '' }, counts: countEntries(w.entries.values()) };
      // A failed check no record owns (left behind): the checksums are rewritten whole.
      return this.write({ commit, build, resetChecksums: drift.failed.some((f) => !owned.has(f)), immutable: [] }, undefined, again);
    }
    // Nothing to trust in memory, or checks went missing: the commit against every stored record.
    const loaded = await load();
    if (!loaded) return undefined;
    const plan = await this.plan(loaded.objects, commit, loaded.message, { force: true, changes: loaded.changes });
    return this.write(plan, undefined, owners(plan.build.entries));
  }
}
