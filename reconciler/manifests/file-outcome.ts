/**
 * What one manifest file yields on its own: its syntax errors, and for each document its identity,
 * where it starts, the validated object (defaults applied) or its issues, and its warnings, all
 * located. Nothing here looks at another file, so the outcome depends only on the file's path, its
 * bytes and the parse options: that is what lets manifest-cache.ts keep it by blob id and reuse it
 * for every commit that has the same blob at the same path. The checks across files (duplicates,
 * references, selector overlaps, namespaces, nodePorts, the replicas cap) stay in load-manifests.ts.
 *
 * Positions of what those later checks report are found on demand (`locate`): from the live parse
 * while the load that parsed the file runs, else by parsing the kept text again, which only an
 * error needs, so the parsed YAML trees are never kept between loads (they are many times the text).
 */
import { Composer, isScalar, isSeq, Lexer, LineCounter, Parser, visit, type Document } from 'yaml';
import { ManifestError, type ManifestErrorCode } from './errors.ts';
import { ManifestWarning } from './warnings.ts';
import { checkVolumes } from './volume-checks.ts';
import { formatMemory } from './quantity.ts';
import { depthProblem, mayNestDeeperThan, NestingWatch, treeDepthProblem, type NestingProblem } from './nesting.ts';
import type { LoadedManifest, ManifestObject, SourceLocation } from './types.ts';
import { missingReferences } from './config-references.ts';
import { pullSecretProblems } from './pull-secrets.ts';
import { volumeReferenceProblems } from './volume-checks.ts';
import { identityOf, validateManifest } from './validator.ts';
import { offsetOf } from './yaml-positions.ts';
import { fastDocuments } from './fast-yaml.ts';

export interface ManifestFile {
  /** Repository-relative, with '/' separators: what error messages show. */
  path: string;
  content: Uint8Array | string;
  /** Size in bytes when known without reading the content (lets callers skip reading huge files). */
  size?: number;
  /** The Git blob id of the content, when it came from Git: what a ManifestCache keys on. */
  oid?: string;
  /** Not read (empty content): a ManifestCache given to the load holds its outcome (tree-reader's `reuse`). */
  reused?: boolean;
}

/** The options that decide what one file yields (the replicas cap is judged across files). */
export interface ParseOptions {
  maxFileBytes: number;
  maxAliasCount: number;
  maxDepth: number;
}

/** Nesting the text is checked for before parsing: far above maxDepth, which is checked exactly after. */
const PRESCAN_DEPTH = 256;

/** What a fast-read candidate's `locate` throws: it knows no position but the document's start. */
class NeedsPositions extends Error {}

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
  private lineCounter = new LineCounter();
  /** Whether the file has an alias (or a token that may be one): only then are aliases counted and followed. */
  private aliases = false;

  /**
   * With `fast`, the documents are read by fast-yaml.ts and have no positions but where they start:
   * `read` answers false when the file needs the full reader, and a candidate's `locate` throws
   * NeedsPositions (the outcome then reads the file again with the full reader).
   */
  constructor(
    private readonly file: ManifestFile,
    private readonly opts: ParseOptions,
    private readonly fast = false,
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

  /** Reads the file; false (nothing read) when it was to be read fast and needs the full reader. */
  read(): boolean {
    const { file, opts } = this;
    const size = file.size ?? (typeof file.content === 'string' ? Buffer.byteLength(file.content) : file.content.byteLength);
    if (size > opts.maxFileBytes) {
      const limit = `${opts.maxFileBytes} bytes (${formatMemory(opts.maxFileBytes)})`;
      this.fail('FILE_TOO_LARGE', 0, `file is ${size} bytes (${formatMemory(size)}), larger than the limit of ${limit}`);
      return true;
    }
    let text: string;
    try {
      text = typeof file.content === 'string' ? file.content : new TextDecoder('utf-8', { fatal: true }).decode(file.content);
    } catch {
      this.fail('YAML_SYNTAX', 0, 'file is not valid UTF-8 text');
      return true;
    }
    if (text.startsWith('\uFEFF')) text = text.slice(1);
    const isJson = file.path.endsWith('.json');
    if (this.fast) return !isJson && this.readFast(text);
    const { docs, deep } = this.parse(text);
    if (deep) {
      this.lineCounter = new LineCounter();
      this.lineCounter.addNewLine(0);
      for (let i = text.indexOf('\n'); i !== -1 && i < deep.offset; i = text.indexOf('\n', i + 1)) this.lineCounter.addNewLine(i + 1);
      this.fail('NESTING_TOO_DEEP', deep.offset, `collections nest deeper than the limit of ${this.opts.maxDepth} levels`);
      return true;
    }

    if (isJson && docs.length > 1) {
      this.fail('YAML_SYNTAX', docs[1]!.range[0], 'a JSON file must hold one object or an array of objects');
      return true;
    }
    for (const doc of docs) this.readDocument(doc, isJson);
    return true;
  }

  /** The documents by fast-yaml.ts, each located at its start only (lines counted up to it). */
  private readFast(text: string): boolean {
    const docs = fastDocuments(text, this.opts.maxDepth);
    if (!docs) return false;
    let line = 1;
    let lineStart = 0;
    let scanned = 0;
    for (const { data, offset } of docs) {
      for (let i = text.indexOf('\n', scanned); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
        line++;
        lineStart = i + 1;
      }
      scanned = Math.max(scanned, offset);
      const locate = (): never => {
        throw new NeedsPositions();
      };
      this.candidates.push({ data, source: { file: this.file.path, line, column: offset - lineStart + 1 }, locate });
    }
    return true;
  }

  /**
   * parseAllDocuments (lexer, parser, composer) with the same options, the tokens watched on the
   * way: nesting far beyond the limit costs the parser seconds and hundreds of MB per MiB, so the
   * parse stops at the first token past it (the documents are then dropped); and whether any
   * token is an alias. One lexing of the text for both.
   */
  private parse(text: string): { docs: Document.Parsed[]; deep?: NestingProblem } {
    const watch = mayNestDeeperThan(text, Math.max(PRESCAN_DEPTH, this.opts.maxDepth)) ? new NestingWatch(Math.max(PRESCAN_DEPTH, this.opts.maxDepth)) : undefined;
    const parser = new Parser(this.lineCounter.addNewLine);
    const composer = new Composer({ lineCounter: this.lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
    let deep: NestingProblem | undefined;
    const reader = this;
    function* tokens() {
      reader.lineCounter.addNewLine(0);
      for (const token of new Lexer().lex(text)) {
        if (watch && (deep = watch.feed(token))) return;
        if (token.charCodeAt(0) === 0x2a) reader.aliases = true;
        yield* parser.next(token);
      }
      yield* parser.end();
    }
    const docs = Array.from(composer.compose(tokens())) as Document.Parsed[];
    return deep ? { docs: [], deep } : { docs };
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
    if (!this.aliases) return true;
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
    const problem = this.aliases ? depthProblem(doc, root, this.opts.maxDepth) : treeDepthProblem(root, this.opts.maxDepth);
    if (problem) this.fail('NESTING_TOO_DEEP', problem.offset, problem.message);
    return !problem;
  }

  private addCandidate(doc: Document.Parsed, node: unknown, data: unknown): void {
    const locate = (pointer: string, key: boolean) => this.position(offsetOf(doc, node, pointer, key));
    this.candidates.push({ data, source: { file: this.file.path, ...locate('', false) }, locate });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

type Identity = { kind?: string; namespace?: string; name?: string };

/** What duplicates are found by: kind, namespace and name (undefined when the document lacks them). */
export function identityKey({ kind, namespace, name }: Identity): string | undefined {
  if (kind === undefined || name === undefined || (kind !== 'Namespace' && namespace === undefined)) return undefined;
  return `${kind}\0${namespace ?? ''}\0${name}`;
}

const NO_CONFIGS: ReadonlyMap<string, ManifestObject> = new Map();

/**
 * Whether the reference checks across files can find anything in this deployment: they report a
 * reference only when the commit lacks what it names, so one that reports nothing against no
 * ConfigMaps and Secrets at all reports nothing against any (and is skipped by every load).
 */
function needsConfigs(object: ManifestObject | undefined): boolean {
  if (object?.kind !== 'Deployment') return false;
  return missingReferences(object, NO_CONFIGS).length + pullSecretProblems(object, NO_CONFIGS).length + volumeReferenceProblems(object, NO_CONFIGS).length > 0;
}

/** One document of a file, validated on its own. */
export interface DocOutcome {
  /** Its place among the file's documents: how `locate` finds it again. */
  readonly index: number;
  /** identityOf what was written (valid or not): what duplicates and errors are about. */
  readonly identity: Identity;
  /** identityKey(identity). */
  readonly key?: string;
  readonly source: SourceLocation;
  /** The manifest with defaults applied; absent when it has issues or is ignored. */
  readonly object?: ManifestObject;
  /** The object and where it starts, as loads return it (one per document, shared by every load). */
  readonly loaded?: LoadedManifest;
  /** A Deployment whose references to ConfigMaps and Secrets must be checked against the commit's. */
  readonly needsConfigs: boolean;
  /** A kind Gantry lists but does not apply (or one skipped on request). */
  readonly ignored: boolean;
  readonly issues: readonly ManifestError[];
  readonly warnings: readonly ManifestWarning[];
}

/** Each candidate of a read file validated and checked on its own, its issues and warnings located. */
function outcomesOf(reader: FileReader, file: ManifestFile): DocOutcome[] {
  // The volume checks read the file's own text (octal modes), and only its own.
  const own = [file];
  return reader.candidates.map((c, index): DocOutcome => {
    const identity = identityOf(c.data);
    const { object, issues, warnings: found, ignored } = checkVolumes(validateManifest(c.data), c, own);
    const apiVersion = isRecord(c.data) && typeof c.data.apiVersion === 'string' ? c.data.apiVersion : undefined;
    const warnings = found.map((w) => {
      const { line, column } = c.locate((w.at ?? w).pointer, w.at?.key ?? false);
      return new ManifestWarning({ code: w.code, file: c.source.file, line, column, apiVersion, ...identity, pointer: w.pointer, message: w.message });
    });
    const located = issues.map((issue) => {
      const at = issue.at ?? { pointer: issue.pointer, key: false };
      return new ManifestError({ code: issue.code, file: c.source.file, ...c.locate(at.pointer, at.key), ...identity, pointer: issue.pointer, message: issue.message });
    });
    const key = identityKey(identity);
    return { index, identity, ...(key !== undefined ? { key } : {}), source: c.source, ...(object ? { object, loaded: { manifest: object, ...c.source } } : {}), needsConfigs: needsConfigs(object), ignored: !!ignored, issues: located, warnings };
  });
}

export class FileOutcome {
  /** Syntax, encoding, size and nesting errors of the file (not of one valid-YAML document). */
  readonly errors: readonly ManifestError[];
  readonly docs: readonly DocOutcome[];
  /** The blob's size, for a reader that lists it without reading it (tree-reader's `reuse`). */
  readonly size: number;
  /** The parse `locate` uses: set while the load that parsed the file runs, or once an error needed it. */
  private live?: Candidate[];

  constructor(
    private readonly file: ManifestFile,
    private readonly opts: ParseOptions,
  ) {
    this.size = file.size ?? (typeof file.content === 'string' ? Buffer.byteLength(file.content) : file.content.byteLength);
    // The fast reader first; the full one whenever the file or anything checked in it needs more.
    try {
      const fast = new FileReader(file, opts, true);
      if (fast.read()) {
        this.docs = outcomesOf(fast, file);
        this.errors = fast.errors;
        return;
      }
    } catch {
      // NeedsPositions (an issue, a warning or an octal mode to locate), or anything unexpected:
      // the full reader below reads the file again and owns whatever it finds.
    }
    const reader = new FileReader(file, opts);
    try {
      reader.read();
    } catch (err) {
      // Not expected from any input; kept so one odd file cannot hide the errors of the others.
      const message = `file could not be parsed: ${err instanceof Error ? err.message : String(err)}`;
      this.errors = [new ManifestError({ code: 'YAML_SYNTAX', file: file.path, line: 1, column: 1, message })];
      this.docs = [];
      return;
    }
    this.errors = reader.errors;
    this.live = reader.candidates;
    this.docs = outcomesOf(reader, file);
  }

  /** Line and column of `pointer` in document `doc` (of its key when `key`), as the live parse finds them. */
  locate(doc: DocOutcome, pointer: string, key = false): { line: number; column: number } {
    if (!this.live) {
      // Parsing the same bytes with the same options gives the same documents in the same order.
      const reader = new FileReader(this.file, this.opts);
      reader.read();
      this.live = reader.candidates;
    }
    const c = this.live[doc.index];
    return c ? c.locate(pointer, key) : { line: doc.source.line, column: doc.source.column };
  }

  /** Drops the parse (the YAML trees): a cached outcome keeps only the text and what it found. */
  release(): void {
    this.live = undefined;
  }
}
