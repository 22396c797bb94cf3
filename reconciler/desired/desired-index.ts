/**
 * Desired state built incrementally: a commit's validated objects -> the records of the tracked
 * branch, reusing what the last commit built for objects that did not change, and saying which
 * records differ from what is stored (to write, and for deployments to reconcile). Pure.
 *
 * - An object whose manifest is the very object the loader gave last time (its file's blob was
 *   reused: manifests/manifest-cache.ts), at the same place, with the same versions of the
 *   ConfigMaps and Secrets it looked up, keeps its entry as it is: no hashing, no JSON.
 * - Any other object is built again (toDeploymentRecord etc., as buildDesiredState does); if the
 *   record equals the stored one but for the commit it came from, the stored one is kept.
 *
 * - Given what changed since the load it last built from (LoadResult.changes, when the loader's
 *   checks were incremental), only the changed objects, and the deployments that looked up a
 *   ConfigMap or Secret that changed, are looked at: the others keep their entries without even a
 *   lookup, so a commit costs what it changed, not the size of the repository.
 *
 * So a record's `commit` (and `commitMessage`) is the commit that last changed it, not the newest
 * commit applied: a commit that changes one deployment writes one record, and the others, not
 * rewritten, keep saying where their spec comes from (the source status says what is applied).
 */
import type { ManifestObject } from '../manifests/types.ts';
import type { ConfigVersionRecord } from '../../state/records/config.ts';
import { checksum, desiredId, type DesiredItem } from '../../state/desired-store.ts';
import { diffDesired, toDeploymentRecord, toServiceRecord, type DesiredDiff, type DesiredState, type LoadedObject } from './desired-state.ts';
import { configKey, toConfigVersion, type ConfigVersions } from './config-refs.ts';
import type { LoadResult } from '../manifests/load-manifests.ts';

/** A record of the branch's desired state, with its id and the checksum of its JSON as stored. */
export type DesiredEntry = DesiredItem & { id: string; sum: string };

export interface DesiredBuild {
  /** Every entry of the commit, by id. */
  entries: Map<string, DesiredEntry>;
  /** The records, in the load's order (built on first use: a sync needs only what changed). */
  readonly desired: DesiredState;
  /** Entries that differ from `prev` (new or changed), with their JSON and what they replace. */
  upsert: { entry: DesiredEntry; json: string; before?: DesiredEntry }[];
  /** Entries of `prev` the commit no longer has. */
  remove: DesiredEntry[];
  /** Objects built again (the others were reused untouched). */
  rebuilt: number;
  /** diffDesired of the deployments before and after, from the changed ones alone. */
  diff: DesiredDiff;
  /** How many entries of each kind. */
  counts: Readonly<Record<DesiredItem['kind'], number>>;
}

interface Memo {
  file: string;
  line: number;
  entry: DesiredEntry;
  /** The config lookups the record depends on: key -> version found (undefined: none). */
  deps?: [string, string | undefined][];
}

/** What the last build was made from and gave: what the next one can start from. */
interface Last {
  /** The manifest cache's load it was built from (LoadResult.changes.load). */
  load: number;
  entries: ReadonlyMap<string, DesiredEntry>;
  configs: ConfigVersions;
  /** Config key -> the objects of deployments that looked it up. */
  dependents: Map<string, Set<LoadedObject>>;
  counts: Record<DesiredItem['kind'], number>;
}

/** The commit's config versions, recording which keys a deployment looked up (config-refs only calls get). */
class RecordingVersions extends Map<string, ConfigVersionRecord> {
  readonly seen = new Map<string, string | undefined>();
  constructor(private readonly all: ConfigVersions) {
    super();
  }
  override get(key: string): ConfigVersionRecord | undefined {
    const v = this.all.get(key);
    this.seen.set(key, v?.version);
    return v;
  }
}

/** desiredId of the record `m` becomes. */
function idOf(m: ManifestObject): string {
  if (m.kind === 'Namespace') return `namespace/${m.metadata.name}`;
  if (m.kind === 'ConfigMap' || m.kind === 'Secret') return `config/${m.metadata.namespace}/${m.kind}/${m.metadata.name}`;
  return `${m.kind === 'Deployment' ? 'deployment' : 'service'}/${m.metadata.namespace}/${m.metadata.name}`;
}

const KIND_OF: Record<ManifestObject['kind'], DesiredItem['kind']> = { Namespace: 'namespace', ConfigMap: 'config', Secret: 'config', Deployment: 'deployment', Service: 'service' };
/** How many entries of each kind `entries` holds. */
export function countEntries(entries: Iterable<DesiredEntry>): Record<DesiredItem['kind'], number> {
  const counts = { namespace: 0, deployment: 0, service: 0, config: 0 };
  for (const e of entries) counts[e.kind]++;
  return counts;
}

export class DesiredBuilder {
  private memo = new WeakMap<ManifestObject, Memo>();
  private last?: Last;

  /** Forgets what was built (when the stored state is read back instead of trusted). */
  forget(): void {
    this.memo = new WeakMap();
    this.last = undefined;
  }

  /**
   * The commit's entries against `prev` (what is stored). `changes` (the load's LoadResult.changes)
   * lets it look only at what changed, when `prev` is what the last build gave for `changes.since`.
   */
  build(objects: readonly LoadedObject[], commit: string, message: string, prev: ReadonlyMap<string, DesiredEntry>, changes?: LoadResult['changes']): DesiredBuild {
    const last = this.last;
    const delta = changes?.since !== undefined && last !== undefined && last.load === changes.since && last.entries === prev;
    const entries = delta ? new Map(prev) : new Map<string, DesiredEntry>();
    const configs: ConfigVersions = delta ? new Map(last.configs) : new Map();
    const dependents = delta ? last.dependents : new Map<string, Set<LoadedObject>>();
    const upsert: DesiredBuild['upsert'] = [];
    let rebuilt = 0;

    /** `fresh`, or the stored entry when only the commit it names differs. */
    const settle = (fresh: DesiredItem): DesiredEntry => {
      const id = desiredId(fresh);
      const before = prev.get(id);
      if (before?.kind === fresh.kind) {
        const asBefore = { ...fresh.record, commit: before.record.commit, ...(fresh.kind === 'deployment' && before.kind === 'deployment' ? { commitMessage: before.record.commitMessage } : {}) };
        if (checksum(JSON.stringify(asBefore)) === before.sum) return before;
      }
      const json = JSON.stringify(fresh.record);
      const entry = { ...fresh, id, sum: checksum(json) } as DesiredEntry;
      upsert.push({ entry, json, ...(before ? { before } : {}) });
      return entry;
    };
    const depsHold = (m: Memo) => (m.deps ?? []).every(([key, version]) => configs.get(key)?.version === version);
    const forgetDeps = (o: LoadedObject) => {
      for (const [key] of this.memo.get(o.manifest)?.deps ?? []) dependents.get(key)?.delete(o);
    };
    const track = (o: LoadedObject, deps: Memo['deps'] = []) => {
      for (const [key] of deps) {
        const set = dependents.get(key);
        if (set) set.add(o);
        else dependents.set(key, new Set([o]));
      }
    };
    /** The entry of `o`: the one built from this very manifest last time if it still holds, else built now. */
    const entryOf = (o: LoadedObject): DesiredEntry => {
      const m = o.manifest;
      const memo = this.memo.get(m);
      if (memo && memo.file === o.file && memo.line === o.line && prev.get(memo.entry.id) === memo.entry && (m.kind !== 'Deployment' || depsHold(memo))) {
        entries.set(memo.entry.id, memo.entry);
        // A full build starts the index of who looked up what afresh (a delta one keeps it).
        if (!delta) track(o, memo.deps);
        return memo.entry;
      }
      rebuilt++;
      let entry: DesiredEntry;
      let deps: Memo['deps'];
      if (m.kind === 'ConfigMap' || m.kind === 'Secret') entry = settle({ kind: 'config', record: toConfigVersion(m, commit) });
      else if (m.kind === 'Namespace') entry = settle({ kind: 'namespace', record: { name: m.metadata.name, commit, labels: m.metadata.labels, annotations: m.metadata.annotations } });
      else if (m.kind === 'Service') entry = settle({ kind: 'service', record: toServiceRecord(m, commit, o.file, o.line) });
      else {
        const before = prev.get(idOf(m));
        const looked = new RecordingVersions(configs);
        const record = toDeploymentRecord(m, commit, o.file, o.line, before?.kind === 'deployment' ? before.record : undefined, looked);
        // The subject line names the revision in `gantry rollout history`.
        record.commitMessage = message.split('\n')[0];
        entry = settle({ kind: 'deployment', record });
        deps = [...looked.seen];
        forgetDeps(o);
        track(o, deps);
      }
      this.memo.set(m, { file: o.file, line: o.line, entry, ...(deps ? { deps } : {}) });
      entries.set(entry.id, entry);
      return entry;
    };

    let counts: Record<DesiredItem['kind'], number>;
    const remove: DesiredEntry[] = [];
    let desired: DesiredState | undefined;
    if (delta) {
      // Only what changed: removed objects out, added ones in (config versions first: deployments
      // look them up), and the deployments that looked up a ConfigMap or Secret that changed.
      const removed = changes.removed ?? [];
      const added = changes.added ?? [];
      const changedConfigs = new Set<string>();
      for (const o of removed) {
        const m = o.manifest;
        entries.delete(idOf(m));
        if (m.kind === 'ConfigMap' || m.kind === 'Secret') {
          const key = configKey(m.metadata.namespace, m.kind, m.metadata.name);
          configs.delete(key);
          changedConfigs.add(key);
        }
        if (m.kind === 'Deployment') forgetDeps(o);
      }
      for (const o of added) {
        const m = o.manifest;
        if (m.kind !== 'ConfigMap' && m.kind !== 'Secret') continue;
        const key = configKey(m.metadata.namespace, m.kind, m.metadata.name);
        configs.set(key, entryOf(o).record as ConfigVersionRecord);
        changedConfigs.add(key);
      }
      const gone = new Set<LoadedObject>(removed);
      const again = new Set<LoadedObject>();
      for (const key of changedConfigs) for (const o of dependents.get(key) ?? []) if (!gone.has(o)) again.add(o);
      for (const o of added) if (o.manifest.kind !== 'ConfigMap' && o.manifest.kind !== 'Secret') again.add(o);
      for (const o of again) entryOf(o);
      counts = { ...last.counts };
      for (const o of removed) {
        const id = idOf(o.manifest);
        if (!entries.has(id) && prev.has(id)) {
          remove.push(prev.get(id)!);
          counts[KIND_OF[o.manifest.kind]]--;
        }
      }
      for (const o of added) if (!prev.has(idOf(o.manifest))) counts[KIND_OF[o.manifest.kind]]++;
    } else {
      for (const o of objects) {
        const m = o.manifest;
        if (m.kind === 'ConfigMap' || m.kind === 'Secret') configs.set(configKey(m.metadata.namespace, m.kind, m.metadata.name), entryOf(o).record as ConfigVersionRecord);
      }
      desired = { commit, namespaces: [], deployments: [], services: [], configs: [...configs.values()] };
      for (const o of objects) {
        const kind = o.manifest.kind;
        if (kind === 'Namespace') desired.namespaces.push(entryOf(o).record as DesiredState['namespaces'][number]);
        else if (kind === 'Deployment') desired.deployments.push(entryOf(o).record as DesiredState['deployments'][number]);
        else if (kind === 'Service') desired.services!.push(entryOf(o).record as NonNullable<DesiredState['services']>[number]);
      }
      for (const e of prev.values()) if (!entries.has(e.id)) remove.push(e);
      counts = countEntries(entries.values());
    }
    if (changes) this.last = { load: changes.load, entries, configs, dependents, counts };

    // Deployments not written are the same as before (specHash too): unchanged, without looking.
    const deploymentsOf = (es: readonly (DesiredEntry | undefined)[]) => es.flatMap((e) => (e?.kind === 'deployment' ? [e.record] : []));
    const written = deploymentsOf(upsert.map((u) => u.entry));
    const part = diffDesired(deploymentsOf([...upsert.map((u) => u.before), ...remove]), { commit, namespaces: [], deployments: written });
    const diff = { ...part, unchanged: part.unchanged + counts.deployment - written.length };
    const inOrder = (): DesiredState => {
      const state: DesiredState = { commit, namespaces: [], deployments: [], services: [], configs: [] };
      for (const o of objects) {
        const e = entries.get(idOf(o.manifest))!;
        if (e.kind === 'config') state.configs!.push(e.record);
        else if (e.kind === 'namespace') state.namespaces.push(e.record);
        else if (e.kind === 'deployment') state.deployments.push(e.record);
        else state.services!.push(e.record);
      }
      return state;
    };
    return {
      entries,
      get desired() {
        return (desired ??= inOrder());
      },
      upsert,
      remove,
      rebuilt,
      diff,
      counts,
    };
  }
}
