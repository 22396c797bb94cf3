/**
 * The checks across files, kept up to date from one load to the next instead of redone over every
 * document. Built after a load that found no error at all (load-manifests.ts); the next load that
 * uses the same cache hands it the documents of the files whose outcome changed, removed and added.
 * When those cannot change what any other document is judged by, and pass every check against the
 * rest, the result is the last one with them swapped in: the cost is that of the change, not of the
 * repository. Otherwise `update` says undefined and the load runs every check over every document,
 * which is also what names the errors (a problem found here is only a reason to do that).
 *
 * Why the shortcut gives what the full checks would (the last load had no error, so no duplicate,
 * overlap, missing reference, undeclared namespace or nodePort clash existed):
 * - Namespace, ConfigMap and Secret documents are what others are judged by: a change to a
 *   Namespace goes the full way; a ConfigMap or Secret change re-checks every deployment that
 *   refers to any (`needsConfigs`), against the new set.
 * - Removing documents frees names, selectors and nodePorts: it cannot make another one wrong.
 * - An added document is checked against all others: its name (duplicates), the replicas cap, its
 *   namespace, its references, its selector against the deployments an index says could overlap
 *   it (overlappingSelectors over those), and, for a Service, that it names no nodePort at all
 *   (which one of two clashing Services is wrong depends on path order: left to the full checks).
 */
import { missingReferences } from './config-references.ts';
import { pullSecretProblems } from './pull-secrets.ts';
import { volumeReferenceProblems } from './volume-checks.ts';
import { overlappingSelectors, type SelectorOwner } from './selector.ts';
import type { DocOutcome, FileOutcome } from './file-outcome.ts';
import { compareObjects } from './object-order.ts';
import type { DeploymentObject, LoadedManifest, ManifestObject } from './types.ts';
import type { ManifestWarning } from './warnings.ts';

const configKeyOf = (o: Extract<ManifestObject, { kind: 'ConfigMap' | 'Secret' }>) => `${o.metadata.namespace}/${o.kind}/${o.metadata.name}`;
const pairKey = (ns: string, k: string, v: string) => `${ns}\0${k}\0${v}`;

function add<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

function drop<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set?.delete(value) && set.size === 0) index.delete(key);
}

const owner = (d: DeploymentObject): SelectorOwner => ({ key: `${d.metadata.namespace}/${d.metadata.name}`, selector: d.spec.selector, templateLabels: d.spec.template.metadata.labels });

export class CrossFileIndex {
  /** The outcome each manifest path had in the last load. */
  private outcomes: Map<string, FileOutcome>;
  private readonly keys = new Map<string, DocOutcome>();
  private readonly declared: Set<string>;
  private readonly configs = new Map<string, ManifestObject>();
  /** Deployments whose references the config checks look at. */
  private readonly referring = new Set<DocOutcome>();
  /** "<ns>\0<key>\0<value>" of a template label -> deployments; of a selector's first matchLabels pair -> deployments. */
  private readonly labelPairs = new Map<string, Set<DocOutcome>>();
  private readonly firstPairs = new Map<string, Set<DocOutcome>>();
  /** Namespace -> deployments, and those of them whose selector has no matchLabels (it may select anything there). */
  private readonly inNamespace = new Map<string, Set<DocOutcome>>();
  private readonly expressionsOnly = new Map<string, Set<DocOutcome>>();

  /** From load number `load` of the cache, without errors: its files (path order), declared namespaces, sorted objects and documents' warnings. */
  constructor(
    private load: number,
    readonly maxReplicas: number,
    files: readonly { path: string; outcome: FileOutcome }[],
    declared: ReadonlySet<string>,
    private objects: LoadedManifest[],
    private warnings: ManifestWarning[],
  ) {
    this.outcomes = new Map(files.map((f) => [f.path, f.outcome]));
    this.declared = new Set(declared);
    for (const { outcome } of files) for (const doc of outcome.docs) this.insert(doc);
  }

  private insert(doc: DocOutcome): void {
    const o = doc.object;
    if (doc.ignored || !o) return;
    this.keys.set(doc.key!, doc);
    if (o.kind === 'ConfigMap' || o.kind === 'Secret') this.configs.set(configKeyOf(o), o);
    if (o.kind !== 'Deployment') return;
    if (doc.needsConfigs) this.referring.add(doc);
    const ns = o.metadata.namespace;
    add(this.inNamespace, ns, doc);
    for (const [k, v] of Object.entries(o.spec.template.metadata.labels)) add(this.labelPairs, pairKey(ns, k, v), doc);
    const first = Object.entries(o.spec.selector.matchLabels ?? {})[0];
    if (first) add(this.firstPairs, pairKey(ns, first[0], first[1]), doc);
    else add(this.expressionsOnly, ns, doc);
  }

  private remove(doc: DocOutcome): void {
    const o = doc.object;
    if (doc.ignored || !o) return;
    if (this.keys.get(doc.key!) === doc) this.keys.delete(doc.key!);
    if ((o.kind === 'ConfigMap' || o.kind === 'Secret') && this.configs.get(configKeyOf(o)) === o) this.configs.delete(configKeyOf(o));
    if (o.kind !== 'Deployment') return;
    this.referring.delete(doc);
    const ns = o.metadata.namespace;
    drop(this.inNamespace, ns, doc);
    for (const [k, v] of Object.entries(o.spec.template.metadata.labels)) drop(this.labelPairs, pairKey(ns, k, v), doc);
    const first = Object.entries(o.spec.selector.matchLabels ?? {})[0];
    if (first) drop(this.firstPairs, pairKey(ns, first[0], first[1]), doc);
    else drop(this.expressionsOnly, ns, doc);
  }

  private referencesHold(d: DeploymentObject): boolean {
    return missingReferences(d, this.configs).length === 0 && pullSecretProblems(d, this.configs).length === 0 && volumeReferenceProblems(d, this.configs).length === 0;
  }

  /** Deployments that could overlap `d`: it selects their labels, or they select its labels. */
  private overlapCandidates(d: DeploymentObject, into: Set<DocOutcome>): void {
    const ns = d.metadata.namespace;
    const first = Object.entries(d.spec.selector.matchLabels ?? {})[0];
    for (const c of first ? (this.labelPairs.get(pairKey(ns, first[0], first[1])) ?? []) : (this.inNamespace.get(ns) ?? [])) into.add(c);
    for (const [k, v] of Object.entries(d.spec.template.metadata.labels)) for (const c of this.firstPairs.get(pairKey(ns, k, v)) ?? []) into.add(c);
    for (const c of this.expressionsOnly.get(ns) ?? []) into.add(c);
  }

  /**
   * The objects of a load of `files` (path order, none skipped, every outcome free of file errors)
   * when the change from the last load passes (see the header); undefined otherwise, and then this
   * index is stale and must be dropped.
   */
  update(files: readonly { path: string; outcome: FileOutcome }[], maxReplicas: number, load: number): { objects: LoadedManifest[]; warnings: readonly ManifestWarning[]; since: number; removed: LoadedManifest[]; added: LoadedManifest[] } | undefined {
    if (maxReplicas !== this.maxReplicas) return undefined;
    const since = this.load;
    this.load = load;
    const gone = new Set(this.outcomes.values());
    const added: DocOutcome[] = [];
    for (const { path, outcome } of files) {
      if (outcome.errors.length > 0) return undefined;
      if (this.outcomes.get(path) === outcome) gone.delete(outcome);
      else added.push(...outcome.docs);
    }
    const removed = [...gone].flatMap((o) => o.docs);
    if (added.length === 0 && removed.length === 0) return { objects: [...this.objects], warnings: this.warnings, since, removed: [], added: [] };
    let configsChanged = false;
    for (const doc of [...removed, ...added]) {
      if (doc.ignored) continue;
      if (!doc.object || doc.issues.length > 0) return undefined;
      const kind = doc.object.kind;
      if (kind === 'Namespace') return undefined;
      if (kind === 'ConfigMap' || kind === 'Secret') configsChanged = true;
    }

    for (const doc of removed) this.remove(doc);
    const candidates = new Set<DocOutcome>();
    const fresh: DocOutcome[] = [];
    for (const doc of added) {
      const o = doc.object;
      if (doc.ignored || !o) continue;
      if (this.keys.has(doc.key!)) return undefined;
      if (o.kind !== 'Namespace' && !this.declared.has(o.metadata.namespace)) return undefined;
      if (o.kind === 'Service' && (o.spec.type === 'NodePort' || o.spec.type === 'LoadBalancer') && o.spec.ports.some((p) => p.nodePort !== undefined)) return undefined;
      if (o.kind === 'Deployment') {
        if (o.spec.replicas > this.maxReplicas) return undefined;
        this.overlapCandidates(o, candidates);
      }
      this.insert(doc);
      fresh.push(doc);
    }
    for (const doc of fresh) if (doc.object!.kind === 'Deployment') candidates.add(doc);
    const deployments = [...candidates].map((c) => owner(c.object as DeploymentObject));
    if (overlappingSelectors(deployments).length > 0) return undefined;
    // References: the new deployments, or, when a ConfigMap or Secret changed, all that refer to any.
    for (const doc of configsChanged ? this.referring : fresh.filter((d) => d.needsConfigs)) if (!this.referencesHold(doc.object as DeploymentObject)) return undefined;

    this.outcomes = new Map(files.map((f) => [f.path, f.outcome]));
    const lost = removed.flatMap((d) => (d.loaded && !d.ignored ? [d.loaded] : []));
    const out = new Set(lost);
    const kept = out.size > 0 ? this.objects.filter((o) => !out.has(o)) : this.objects;
    const incoming = fresh.map((d) => d.loaded!).sort(compareObjects);
    this.objects = merge(kept, incoming);
    // Warnings change only with documents that have some: then all are gathered again, in order.
    if ([...removed, ...added].some((d) => d.warnings.length > 0)) {
      this.warnings = files.flatMap(({ outcome }) => outcome.docs.flatMap((d) => d.warnings)).sort(compareLocations);
    }
    return { objects: [...this.objects], warnings: this.warnings, since, removed: lost, added: incoming };
  }
}

function compareLocations(a: ManifestWarning, b: ManifestWarning): number {
  return (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) || a.line - b.line || a.column - b.column;
}

/**
 * `b` (few) into `a` (many), both sorted by compareObjects: each found by binary search, so a change
 * of a few documents costs a copy of the list, not a comparison with each of its elements.
 */
function merge(a: readonly LoadedManifest[], b: readonly LoadedManifest[]): LoadedManifest[] {
  const out = [...a];
  for (const x of b) {
    let lo = 0;
    let hi = out.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareObjects(out[mid]!, x) <= 0) lo = mid + 1;
      else hi = mid;
    }
    out.splice(lo, 0, x);
  }
  return out;
}
