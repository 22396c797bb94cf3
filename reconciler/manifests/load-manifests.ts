/**
 * Turns the files of a repository into validated manifest objects, or precise errors.
 *
 * Pure: callers pass file contents (from a Git tree, or from disk via validate-directory.ts). The
 * loader never throws on bad input and never stops at the first problem: every file and document
 * is checked and all errors are returned together, sorted by position.
 *
 * Objects are only returned for documents without errors; callers should not apply a result that
 * has errors, since whatever a bad document describes is missing from `objects`.
 */
import { ManifestError, type ManifestErrorCode } from './errors.ts';
import { ManifestWarning } from './warnings.ts';
import { IGNORE_FILE, ignoredBy, parseIgnoreFile } from './ignore-file.ts';
import { missingReferences } from './config-references.ts';
import { pullSecretProblems } from './pull-secrets.ts';
import { volumeReferenceProblems } from './volume-checks.ts';
import { overlappingSelectors } from './selector.ts';
import { checkNodePortsAcross } from './checks.ts';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_REPLICAS } from './limits.ts';
import { DEFAULT_NAMESPACE, type DeploymentObject, type LoadedManifest, type ManifestObject } from './types.ts';
import { FileOutcome, type DocOutcome, type ManifestFile, type ParseOptions } from './file-outcome.ts';
import type { ManifestCache } from './manifest-cache.ts';
import { CrossFileIndex } from './cross-file-index.ts';
import { compareObjects, compareStrings } from './object-order.ts';

export type { ManifestFile } from './file-outcome.ts';

export interface LoadOptions {
  /** Files larger than this are rejected without being parsed. Default 1 MiB. */
  maxFileBytes?: number;
  /** Most YAML aliases a document may use, and the limit on how much they may expand. Default 100. */
  maxAliasCount?: number;
  /** Most spec.replicas of a Deployment (the reconciler's `--max-replicas`). Default 10,000. */
  maxReplicas?: number;
  /** How deeply collections may nest in a document. Default 64. */
  maxDepth?: number;
  /**
   * Outcomes of files by path and blob id (files with an `oid`): a file whose blob the cache holds
   * is neither parsed nor validated again, and a `reused` file (not read) must be in it. The
   * checks across files always run over the whole set. See manifest-cache.ts.
   */
  cache?: ManifestCache;
}

export interface LoadResult {
  /** Valid manifests with defaults applied, sorted by kind (Namespace first), namespace and name. */
  objects: LoadedManifest[];
  /** Sorted by file, line and column. */
  errors: ManifestError[];
  /**
   * Sorted by file, line and column: objects of kinds Gantry does not run (IGNORED_KIND) or skipped
   * (SKIPPED), fields it does not honour (IGNORED_FIELD), deprecated apiVersions. Never a rejection.
   */
  warnings: ManifestWarning[];
  /**
   * With a cache: `load` numbers this load among the cache's. When the checks across files were
   * incremental, `since` is the load this one changed, and `removed` / `added` what changed between
   * their objects (the others are the same LoadedManifest objects): what desired state can be
   * updated from, rather than rebuilt (reconciler/desired/desired-index.ts).
   */
  changes?: { load: number; since?: number; removed?: LoadedManifest[]; added?: LoadedManifest[] };
}

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_ALIAS_COUNT = 100;
const MANIFEST_EXTENSIONS = /\.(ya?ml|json)$/;
export function isManifestPath(path: string): boolean {
  return MANIFEST_EXTENSIONS.test(path);
}

/** Files the loader reads: manifests, and the .gantryignore files that say which to skip. */
export function isLoaderInput(path: string): boolean {
  return isManifestPath(path) || path === IGNORE_FILE || path.endsWith(`/${IGNORE_FILE}`);
}

/** A small text file's content (an oversized one counts as empty: it has been listed, not read). */
function textOf(file: ManifestFile, maxBytes: number): string {
  if (typeof file.content === 'string') return file.content.length > maxBytes ? '' : file.content;
  return file.content.byteLength > maxBytes ? '' : new TextDecoder().decode(file.content);
}

function compareErrors(a: ManifestError | ManifestWarning, b: ManifestError | ManifestWarning): number {
  return compareStrings(a.file, b.file) || a.line - b.line || a.column - b.column;
}

type Identity = DocOutcome['identity'];

function describeObject({ kind, namespace, name }: Identity): string {
  return kind === 'Namespace' ? `${kind} ${name}` : `${kind} ${namespace}/${name}`;
}

/** A document of the load, with the file outcome that can locate pointers in it. */
interface Doc {
  doc: DocOutcome;
  file: FileOutcome;
}

/** The outcome of one file: from the cache when its blob is there, else parsed (and kept there). */
function outcomeOf(file: ManifestFile, opts: ParseOptions, cache: ManifestCache | undefined): FileOutcome {
  const cached = cache && file.oid !== undefined ? cache.get(file.path, file.oid) : undefined;
  if (cached) return cached;
  // A file listed without its content can only be judged from the cache: parsing the empty
  // content instead would quietly drop everything the file declares.
  if (file.reused) throw new Error(`${file.path}: listed without its content (reused), but the manifest cache has no outcome for blob ${file.oid ?? '?'}`);
  const outcome = new FileOutcome(file, opts);
  cache?.parsed();
  if (cache && file.oid !== undefined) cache.set(file.path, file.oid, outcome);
  return outcome;
}

/**
 * Parses and validates manifest files. Non-manifest files (by extension) are ignored. Never throws
 * (but for a `reused` file its cache does not hold, which is the caller's mistake).
 */
export function loadManifests(files: ManifestFile[], options: LoadOptions = {}): LoadResult {
  const opts = {
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    maxAliasCount: options.maxAliasCount ?? DEFAULT_MAX_ALIAS_COUNT,
    maxReplicas: options.maxReplicas ?? DEFAULT_MAX_REPLICAS,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
  };
  const cache = options.cache;
  cache?.begin(opts);
  try {
    return loadWith(files, opts, cache);
  } finally {
    cache?.end();
  }
}

function loadWith(files: ManifestFile[], opts: ParseOptions & { maxReplicas: number }, cache: ManifestCache | undefined): LoadResult {
  const errors: ManifestError[] = [];
  const skipped: ManifestWarning[] = [];
  const read: { path: string; outcome: FileOutcome }[] = [];
  // Path order makes "first definition" of a duplicate independent of how files were listed.
  const sorted = files.filter((f) => isManifestPath(f.path)).sort((a, b) => compareStrings(a.path, b.path));
  const ignoreFiles = files.filter((f) => f.path === IGNORE_FILE || f.path.endsWith(`/${IGNORE_FILE}`)).map((f) => parseIgnoreFile(f.path, textOf(f, opts.maxFileBytes)));
  for (const file of sorted) {
    const skippedBy = ignoreFiles.length > 0 ? ignoredBy(file.path, ignoreFiles) : undefined;
    if (skippedBy) {
      skipped.push(new ManifestWarning({ code: 'SKIPPED', file: file.path, line: 1, column: 1, message: `skipped: matches ${JSON.stringify(skippedBy.pattern)} in ${skippedBy.path}` }));
      continue;
    }
    const outcome = outcomeOf(file, opts, cache);
    read.push({ path: file.path, outcome });
    errors.push(...outcome.errors);
  }

  // The last load of this cache had no error: only the documents of changed files are checked (a
  // file skipped by a .gantryignore now, or no more, counts as removed, or added).
  const known = cache?.crossFile;
  if (known && errors.length === 0) {
    const found = known.update(read, opts.maxReplicas, cache!.loads);
    if (found) {
      cache!.last.incremental = true;
      const { objects, warnings, removed, added } = found;
      // Skipped files and documents are never in the same file: sorting keeps each group's order.
      return { objects, errors, warnings: skipped.length > 0 ? [...skipped, ...warnings].sort(compareErrors) : [...warnings], changes: { since: found.since, load: cache!.loads, removed, added } };
    }
  }
  if (cache) cache.crossFile = undefined;
  const candidates: Doc[] = [];
  const docWarnings: ManifestWarning[] = [];
  for (const { outcome } of read) {
    for (const doc of outcome.docs) {
      candidates.push({ doc, file: outcome });
      docWarnings.push(...doc.warnings);
    }
  }
  docWarnings.sort(compareErrors);
  const warnings = skipped.length > 0 ? [...skipped, ...docWarnings].sort(compareErrors) : docWarnings;

  /** `at` is what to point at in the source when it is not the value at `pointer` (such as a key). */
  const report = (c: Doc, code: ManifestErrorCode, message: string, pointer = '', at = { pointer, key: false }) => {
    const { line, column } = c.file.locate(c.doc, at.pointer, at.key);
    errors.push(new ManifestError({ code, file: c.doc.source.file, line, column, ...c.doc.identity, pointer, message }));
  };

  const declaredNamespaces = new Set([DEFAULT_NAMESPACE]);
  const firstDefinition = new Map<string, Doc>();
  const valid: { candidate: Doc; object: ManifestObject }[] = [];
  for (const c of candidates) {
    const { identity, object, ignored } = c.doc;
    const { kind, name } = identity;
    // Listed, not applied: neither a duplicate of what Gantry runs nor a namespace it declares.
    if (ignored) continue;
    // Counted even when the Namespace document is invalid: its own errors say what is wrong.
    if (kind === 'Namespace' && name !== undefined) declaredNamespaces.add(name);

    const key = c.doc.key;
    const first = key === undefined ? undefined : firstDefinition.get(key);
    if (key !== undefined && !first) firstDefinition.set(key, c);
    if (first) {
      const { file, line, column } = first.doc.source;
      report(c, 'DUPLICATE', `duplicate ${describeObject(identity)}, also defined at ${file}:${line}:${column}`);
    }

    errors.push(...c.doc.issues);
    // The reconciler's cap, below the schema's hard maximum: a check, so its message names the setting.
    if (object?.kind === 'Deployment' && object.spec.replicas > opts.maxReplicas) {
      report(c, 'INVALID_VALUE', `must be at most ${opts.maxReplicas}, the reconciler's limit on replicas (--max-replicas)`, '/spec/replicas');
      continue;
    }
    if (object && !first) valid.push({ candidate: c, object });
  }
  const configs = new Map<string, ManifestObject>();
  for (const { object } of valid) if (object.kind === 'ConfigMap' || object.kind === 'Secret') configs.set(`${object.metadata.namespace}/${object.kind}/${object.metadata.name}`, object);
  // Two deployments whose selectors select each other's instances would fight over them.
  const deploymentsValid = valid.filter((v): v is { candidate: Doc; object: DeploymentObject } => v.object.kind === 'Deployment');
  const keyOf = (d: DeploymentObject) => `${d.metadata.namespace}/${d.metadata.name}`;
  const byKey = new Map(deploymentsValid.map((v) => [keyOf(v.object), v.candidate]));
  const overlapping = new Set<Doc>();
  for (const [first, later] of overlappingSelectors(deploymentsValid.map(({ object: d }) => ({ key: keyOf(d), selector: d.spec.selector, templateLabels: d.spec.template.metadata.labels })))) {
    const at = byKey.get(later.key)!;
    const { file, line, column } = byKey.get(first.key)!.doc.source;
    report(at, 'INVALID_VALUE', `selector overlaps Deployment ${first.key} (${file}:${line}:${column}): each could own the other's instances; give their templates a label that tells them apart`, '/spec/selector');
    overlapping.add(at);
  }
  const objects: LoadedManifest[] = [];
  const nodePorts = new Map<number, string>(); // nodePort -> the Service that wrote it first (path order)
  for (const { candidate, object } of valid) {
    if (overlapping.has(candidate)) continue;
    if (object.kind === 'Deployment' && candidate.doc.needsConfigs) {
      const missing = [...missingReferences(object, configs).map((m) => ({ ...m, code: 'REFERENCE_NOT_FOUND' as const })), ...pullSecretProblems(object, configs), ...volumeReferenceProblems(object, configs)];
      for (const m of missing) report(candidate, m.code, m.message, m.pointer);
      if (missing.length > 0) continue;
    }
    if (object.kind === 'Service') {
      const { file, line, column } = candidate.doc.source;
      const clashes = checkNodePortsAcross(object, `Service ${object.metadata.namespace}/${object.metadata.name} at ${file}:${line}:${column}`, nodePorts);
      for (const m of clashes) report(candidate, m.code, m.message, m.pointer);
      if (clashes.length > 0) continue;
    }
    if (object.kind !== 'Namespace' && !declaredNamespaces.has(object.metadata.namespace)) {
      const message = `namespace "${object.metadata.namespace}" is not declared by any Namespace manifest`;
      report(candidate, 'NAMESPACE_NOT_DECLARED', message, '/metadata/namespace');
      continue;
    }
    objects.push(candidate.doc.loaded!);
  }
  objects.sort(compareObjects);
  errors.sort(compareErrors);
  if (cache && errors.length === 0) cache.crossFile = new CrossFileIndex(cache.loads, opts.maxReplicas, read, declaredNamespaces, [...objects], [...docWarnings]);
  return { objects, errors, warnings, ...(cache ? { changes: { load: cache.loads } } : {}) };
}
