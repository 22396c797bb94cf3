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
import { isScalar, isSeq, LineCounter, parseAllDocuments, visit, type Document } from 'yaml';
import { ManifestError, type ManifestErrorCode } from './errors.ts';
import { ManifestWarning } from './warnings.ts';
import { IGNORE_FILE, ignoredBy, parseIgnoreFile } from './ignore-file.ts';
import { missingReferences } from './config-references.ts';
import { pullSecretProblems } from './pull-secrets.ts';
import { checkVolumes, volumeReferenceProblems } from './volume-checks.ts';
import { overlappingSelectors } from './selector.ts';
import { checkNodePortsAcross } from './checks.ts';
import { formatMemory } from './quantity.ts';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_REPLICAS } from './limits.ts';
import { deepNestingAt, depthProblem } from './nesting.ts';
import { DEFAULT_NAMESPACE, KINDS, type DeploymentObject, type LoadedManifest, type ManifestObject, type SourceLocation } from './types.ts';
import { identityOf, validateManifest } from './validator.ts';
import { offsetOf } from './yaml-positions.ts';

export interface ManifestFile {
  /** Repository-relative, with '/' separators: what error messages show. */
  path: string;
  content: Uint8Array | string;
  /** Size in bytes when known without reading the content (lets callers skip reading huge files). */
  size?: number;
}

export interface LoadOptions {
  /** Files larger than this are rejected without being parsed. Default 1 MiB. */
  maxFileBytes?: number;
  /** Most YAML aliases a document may use, and the limit on how much they may expand. Default 100. */
  maxAliasCount?: number;
  /** Most spec.replicas of a Deployment (the reconciler's `--max-replicas`). Default 10,000. */
  maxReplicas?: number;
  /** How deeply collections may nest in a document. Default 64. */
  maxDepth?: number;
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
}

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_ALIAS_COUNT = 100;
const MANIFEST_EXTENSIONS = /\.(ya?ml|json)$/;
/** Nesting the text is checked for before parsing: far above maxDepth, which is checked exactly after. */
const PRESCAN_DEPTH = 256;

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

/** One parsed document (or element of a JSON array) that should be a manifest. */
interface Candidate {
  data: unknown;
  source: SourceLocation;
  locate(pointer: string, key: boolean): { line: number; column: number };
}

/** Collects the candidates and errors of one file. */
class FileReader {
  readonly candidates: Candidate[] = [];
  readonly errors: ManifestError[] = [];
  private readonly lineCounter = new LineCounter();

  constructor(
    private readonly file: ManifestFile,
    private readonly opts: Required<LoadOptions>,
  ) {}

  private position(offset: number): { line: number; column: number } {
    // Before parsing (a file rejected by size or encoding) the counter knows no lines yet.
    if (this.lineCounter.lineStarts.length === 0) return { line: 1, column: 1 };
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, column: col };
  }

  private fail(code: ManifestErrorCode, offset: number, message: string): void {
    this.errors.push(new ManifestError({ code, file: this.file.path, ...this.position(offset), message }));
  }

  read(): void {
    const { file, opts } = this;
    const size = file.size ?? (typeof file.content === 'string' ? Buffer.byteLength(file.content) : file.content.byteLength);
    if (size > opts.maxFileBytes) {
      const limit = `${opts.maxFileBytes} bytes (${formatMemory(opts.maxFileBytes)})`;
      this.fail('FILE_TOO_LARGE', 0, `file is ${size} bytes (${formatMemory(size)}), larger than the limit of ${limit}`);
      return;
    }
    let text: string;
    try {
      text = typeof file.content === 'string' ? file.content : new TextDecoder('utf-8', { fatal: true }).decode(file.content);
    } catch {
      this.fail('YAML_SYNTAX', 0, 'file is not valid UTF-8 text');
      return;
    }
    if (text.startsWith('\uFEFF')) text = text.slice(1);
    // Nesting far beyond the limit costs the parser seconds and hundreds of MB per MiB: refused first.
    const deep = deepNestingAt(text, Math.max(PRESCAN_DEPTH, this.opts.maxDepth));
    if (deep) {
      this.lineCounter.addNewLine(0);
      for (let i = text.indexOf('\n'); i !== -1 && i < deep.offset; i = text.indexOf('\n', i + 1)) this.lineCounter.addNewLine(i + 1);
      this.fail('NESTING_TOO_DEEP', deep.offset, `collections nest deeper than the limit of ${this.opts.maxDepth} levels`);
      return;
    }

    const isJson = file.path.endsWith('.json');
    const docs = parseAllDocuments(text, { lineCounter: this.lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
    if (isJson && docs.length > 1) {
      this.fail('YAML_SYNTAX', docs[1]!.range[0], 'a JSON file must hold one object or an array of objects');
      return;
    }
    for (const doc of docs) this.readDocument(doc, isJson);
  }

  private readDocument(doc: Document.Parsed, isJson: boolean): void {
    if (doc.errors.length > 0) {
      // The parser gives up on nesting its stack cannot hold (a RangeError it catches): one clear
      // error for the document instead of one "Maximum call stack size exceeded" per level.
      const exhausted = doc.errors.find((e) => e.code === 'RESOURCE_EXHAUSTION');
      if (exhausted) {
        this.fail('NESTING_TOO_DEEP', exhausted.pos[0], `collections nest deeper than the limit of ${this.opts.maxDepth} levels`);
        return;
      }
      for (const e of doc.errors) this.fail('YAML_SYNTAX', e.pos[0], e.message.replace(/\s+/g, ' '));
      return;
    }
    const root = doc.contents;
    // Empty documents (a trailing `---`, only comments, or `~`) are skipped, as kubectl does.
    if (root === null || (isScalar(root) && root.value === null)) return;
    if (!this.checkAliases(doc)) return;
    if (!this.checkDepth(doc, root)) return;

    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount: this.opts.maxAliasCount });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ReferenceError && /alias/i.test(message)) {
        this.fail('ALIAS_LIMIT', root.range[0], `aliases expand beyond the limit of ${this.opts.maxAliasCount} (an alias bomb?)`);
      } else {
        this.fail('YAML_SYNTAX', root.range[0], message);
      }
      return;
    }
    if (isJson && isSeq(root) && Array.isArray(data)) {
      data.forEach((item, i) => this.addCandidate(doc, root.items[i], item));
    } else {
      this.addCandidate(doc, root, data);
    }
  }

  /** Counts aliases before anything expands them, and reports ones that point nowhere. */
  private checkAliases(doc: Document.Parsed): boolean {
    let count = 0;
    let ok = true;
    visit(doc, {
      Alias: (_key, alias) => {
        count++;
        if (!alias.resolve(doc)) {
          this.fail('YAML_SYNTAX', alias.range?.[0] ?? 0, `unresolved alias *${alias.source}`);
          ok = false;
        } else if (count === this.opts.maxAliasCount + 1) {
          this.fail('ALIAS_LIMIT', alias.range?.[0] ?? 0, `document has more than ${this.opts.maxAliasCount} aliases`);
          ok = false;
        }
      },
    });
    return ok;
  }

  /** Rejects nesting deeper than maxDepth before anything recursive (toJS, the validator, cloning) walks it. */
  private checkDepth(doc: Document.Parsed, root: unknown): boolean {
    const problem = depthProblem(doc, root, this.opts.maxDepth);
    if (problem) this.fail('NESTING_TOO_DEEP', problem.offset, problem.message);
    return !problem;
  }

  private addCandidate(doc: Document.Parsed, node: unknown, data: unknown): void {
    const locate = (pointer: string, key: boolean) => this.position(offsetOf(doc, node, pointer, key));
    this.candidates.push({ data, source: { file: this.file.path, ...locate('', false) }, locate });
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function objectOrder(o: ManifestObject): [number, string, string] {
  const namespace = o.kind === 'Namespace' ? '' : o.metadata.namespace;
  return [KINDS.indexOf(o.kind), namespace, o.metadata.name];
}

function compareObjects(a: LoadedManifest, b: LoadedManifest): number {
  const [ka, na, ma] = objectOrder(a.manifest);
  const [kb, nb, mb] = objectOrder(b.manifest);
  return ka - kb || compareStrings(na, nb) || compareStrings(ma, mb);
}

function compareErrors(a: ManifestError | ManifestWarning, b: ManifestError | ManifestWarning): number {
  return compareStrings(a.file, b.file) || a.line - b.line || a.column - b.column;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function identityKey(data: unknown): string | undefined {
  const { kind, namespace, name } = identityOf(data);
  if (kind === undefined || name === undefined || (kind !== 'Namespace' && namespace === undefined)) return undefined;
  return `${kind}\0${namespace ?? ''}\0${name}`;
}

function describeObject(data: unknown): string {
  const { kind, namespace, name } = identityOf(data);
  return kind === 'Namespace' ? `${kind} ${name}` : `${kind} ${namespace}/${name}`;
}

/** Parses and validates manifest files. Non-manifest files (by extension) are ignored. Never throws. */
export function loadManifests(files: ManifestFile[], options: LoadOptions = {}): LoadResult {
  const opts: Required<LoadOptions> = {
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    maxAliasCount: options.maxAliasCount ?? DEFAULT_MAX_ALIAS_COUNT,
    maxReplicas: options.maxReplicas ?? DEFAULT_MAX_REPLICAS,
    maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
  };
  const errors: ManifestError[] = [];
  const warnings: ManifestWarning[] = [];
  const candidates: Candidate[] = [];
  // Path order makes "first definition" of a duplicate independent of how files were listed.
  const sorted = files.filter((f) => isManifestPath(f.path)).sort((a, b) => compareStrings(a.path, b.path));
  const ignoreFiles = files.filter((f) => f.path === IGNORE_FILE || f.path.endsWith(`/${IGNORE_FILE}`)).map((f) => parseIgnoreFile(f.path, textOf(f, opts.maxFileBytes)));
  for (const file of sorted) {
    const skippedBy = ignoreFiles.length > 0 ? ignoredBy(file.path, ignoreFiles) : undefined;
    if (skippedBy) {
      warnings.push(new ManifestWarning({ code: 'SKIPPED', file: file.path, line: 1, column: 1, message: `skipped: matches ${JSON.stringify(skippedBy.pattern)} in ${skippedBy.path}` }));
      continue;
    }
    const reader = new FileReader(file, opts);
    try {
      reader.read();
    } catch (err) {
      // Not expected from any input; kept so one odd file cannot hide the errors of the others.
      const message = `file could not be parsed: ${err instanceof Error ? err.message : String(err)}`;
      errors.push(new ManifestError({ code: 'YAML_SYNTAX', file: file.path, line: 1, column: 1, message }));
      continue;
    }
    errors.push(...reader.errors);
    candidates.push(...reader.candidates);
  }

  /** `at` is what to point at in the source when it is not the value at `pointer` (such as a key). */
  const report = (c: Candidate, code: ManifestErrorCode, message: string, pointer = '', at = { pointer, key: false }) => {
    const { line, column } = c.locate(at.pointer, at.key);
    errors.push(new ManifestError({ code, file: c.source.file, line, column, ...identityOf(c.data), pointer, message }));
  };

  const declaredNamespaces = new Set([DEFAULT_NAMESPACE]);
  const firstDefinition = new Map<string, Candidate>();
  const valid: { candidate: Candidate; object: ManifestObject }[] = [];
  for (const c of candidates) {
    const { kind, name } = identityOf(c.data);
    const { object, issues, warnings: found, ignored } = checkVolumes(validateManifest(c.data), c, files);
    for (const w of found) {
      const { line, column } = c.locate((w.at ?? w).pointer, w.at?.key ?? false);
      const apiVersion = isRecord(c.data) && typeof c.data.apiVersion === 'string' ? c.data.apiVersion : undefined;
      warnings.push(new ManifestWarning({ code: w.code, file: c.source.file, line, column, apiVersion, ...identityOf(c.data), pointer: w.pointer, message: w.message }));
    }
    // Listed, not applied: neither a duplicate of what Gantry runs nor a namespace it declares.
    if (ignored) continue;
    // Counted even when the Namespace document is invalid: its own errors say what is wrong.
    if (kind === 'Namespace' && name !== undefined) declaredNamespaces.add(name);

    const key = identityKey(c.data);
    const first = key === undefined ? undefined : firstDefinition.get(key);
    if (key !== undefined && !first) firstDefinition.set(key, c);
    if (first) {
      const { file, line, column } = first.source;
      report(c, 'DUPLICATE', `duplicate ${describeObject(c.data)}, also defined at ${file}:${line}:${column}`);
    }

    for (const issue of issues) report(c, issue.code, issue.message, issue.pointer, issue.at);
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
  const deploymentsValid = valid.filter((v): v is { candidate: Candidate; object: DeploymentObject } => v.object.kind === 'Deployment');
  const keyOf = (d: DeploymentObject) => `${d.metadata.namespace}/${d.metadata.name}`;
  const byKey = new Map(deploymentsValid.map((v) => [keyOf(v.object), v.candidate]));
  const overlapping = new Set<Candidate>();
  for (const [first, later] of overlappingSelectors(deploymentsValid.map(({ object: d }) => ({ key: keyOf(d), selector: d.spec.selector, templateLabels: d.spec.template.metadata.labels })))) {
    const at = byKey.get(later.key)!;
    const { file, line, column } = byKey.get(first.key)!.source;
    report(at, 'INVALID_VALUE', `selector overlaps Deployment ${first.key} (${file}:${line}:${column}): each could own the other's instances; give their templates a label that tells them apart`, '/spec/selector');
    overlapping.add(at);
  }
  const objects: LoadedManifest[] = [];
  const nodePorts = new Map<number, string>(); // nodePort -> the Service that wrote it first (path order)
  for (const { candidate, object } of valid) {
    if (overlapping.has(candidate)) continue;
    if (object.kind === 'Deployment') {
      const missing = [...missingReferences(object, configs).map((m) => ({ ...m, code: 'REFERENCE_NOT_FOUND' as const })), ...pullSecretProblems(object, configs), ...volumeReferenceProblems(object, configs)];
      for (const m of missing) report(candidate, m.code, m.message, m.pointer);
      if (missing.length > 0) continue;
    }
    if (object.kind === 'Service') {
      const { file, line, column } = candidate.source;
      const clashes = checkNodePortsAcross(object, `Service ${object.metadata.namespace}/${object.metadata.name} at ${file}:${line}:${column}`, nodePorts);
      for (const m of clashes) report(candidate, m.code, m.message, m.pointer);
      if (clashes.length > 0) continue;
    }
    if (object.kind !== 'Namespace' && !declaredNamespaces.has(object.metadata.namespace)) {
      const message = `namespace "${object.metadata.namespace}" is not declared by any Namespace manifest`;
      report(candidate, 'NAMESPACE_NOT_DECLARED', message, '/metadata/namespace');
      continue;
    }
    objects.push({ manifest: object, ...candidate.source });
  }
  objects.sort(compareObjects);
  errors.sort(compareErrors);
  warnings.sort(compareErrors);
  return { objects, errors, warnings };
}
