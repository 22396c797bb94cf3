/**
 * Generates reconciler/manifests/kubernetes/fields.generated.ts: the field set of Kubernetes' API
 * types, read from the TypeScript declarations of the `kubernetes-types` package.
 *
 *   npm run gen:kubernetes
 *
 * Why a hand-written parser: the installed TypeScript is version 7 (the Go port), which has no JS
 * compiler API. The package's .d.ts files are machine-generated and very regular (named imports,
 * interfaces of properties, a few type aliases), so a tokenizer and a small recursive-descent
 * parser read them. Anything outside that grammar throws with file and line, so a new package
 * version can never be misread silently.
 *
 * `generateKubernetesFields()` returns the file's text so test/unit/kubernetes-fields.test.ts can
 * detect drift; the file is only written when this module is run as a script.
 */
import { mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The kinds whose field trees are tabulated, as `${apiVersion}/${kind}`. Extend here. */
export const ROOTS: readonly string[] = [
  ...['apps/v1/Deployment', 'apps/v1/StatefulSet', 'apps/v1/DaemonSet'],
  ...['batch/v1/Job', 'batch/v1/CronJob'],
  ...['v1/Service', 'v1/ConfigMap', 'v1/Secret', 'v1/Namespace', 'v1/Pod', 'v1/PersistentVolumeClaim', 'v1/ServiceAccount'],
];

/**
 * Interfaces whose value is free-form JSON ('any'). The .d.ts declares them empty, or, for
 * JSONSchemaProps, incomplete (it lacks every `x-kubernetes-*` property, which are not
 * identifiers), so their declared fields must never be used to reject anything.
 */
const FREE_FORM = new Set(['apiextensions/v1.JSON', 'apiextensions/v1.JSONSchemaProps', 'meta/v1.FieldsV1', 'meta/v1.Patch', 'runtime.RawExtension']);

/**
 * Interfaces that are empty because the Kubernetes struct really has no fields. An empty
 * interface in neither list is an error: the .d.ts cannot tell "no fields" from "free-form".
 */
const EMPTY_STRUCTS = new Set(['apiextensions/v1.CustomResourceSubresourceStatus', 'apiserverinternal/v1alpha1.StorageVersionSpec']);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_PACKAGE_DIR = path.join(ROOT, 'node_modules/kubernetes-types');
export const OUTPUT_PATH = 'reconciler/manifests/kubernetes/fields.generated.ts';

/** The FieldType written into the generated file; not imported from it, so the generator still runs when that file is missing or broken. */
export type FieldType = 'scalar' | 'any' | string | { array: FieldType } | { map: FieldType };

// ---- parsing -----------------------------------------------------------------------------------

type TypeExpr =
  | { t: 'primitive'; name: string }
  | { t: 'literal'; value: string }
  | { t: 'ref'; name: string }
  | { t: 'array'; of: TypeExpr }
  | { t: 'map'; of: TypeExpr }
  | { t: 'union'; of: TypeExpr[] };

interface Property {
  name: string;
  type: TypeExpr;
  /** `file:line`, for error messages. */
  at: string;
}

interface Module {
  name: string;
  /** Local name → qualified name (`module.Name`) of what it imports. */
  imports: Map<string, string>;
  interfaces: Map<string, Property[]>;
  aliases: Map<string, { type: TypeExpr; at: string }>;
}

/** `object` is free-form; the rest are scalars. Nothing else is taken for a primitive. */
const PRIMITIVES = new Set(['string', 'number', 'boolean', 'object']);

interface Token {
  text: string;
  kind: 'ident' | 'string' | 'punct';
  offset: number;
}

// Whitespace and comments are skipped; doc comments hold no `*/` in this package, and strings in
// code never contain a quote or backslash, so these simple patterns are exact. Any other
// character fails the scan.
const TOKEN = /(\s+|\/\*[\s\S]*?\*\/|\/\/[^\n]*)|([A-Za-z_$][\w$]*)|("[^"\\\n]*")|([{}[\]<>;:,|?=])/y;

function tokenize(file: string, src: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    const offset = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m) throw new Error(`${file}:${lineOf(src, offset)}: unexpected character ${JSON.stringify(src[offset])}`);
    if (m[2]) tokens.push({ text: m[2], kind: 'ident', offset });
    else if (m[3]) tokens.push({ text: m[3].slice(1, -1), kind: 'string', offset });
    else if (m[4]) tokens.push({ text: m[4], kind: 'punct', offset });
  }
  return tokens;
}

const lineOf = (src: string, offset: number): number => src.slice(0, offset).split('\n').length;

class Parser {
  private pos = 0;
  constructor(
    private readonly file: string,
    private readonly src: string,
    private readonly tokens: Token[],
  ) {}

  at(): string {
    const token = this.tokens[this.pos];
    return `${this.file}:${token ? lineOf(this.src, token.offset) : 'end'}`;
  }
  fail(message: string): never {
    const token = this.tokens[this.pos];
    throw new Error(`${this.at()}: ${message} (at ${token ? JSON.stringify(token.text) : 'end of file'})`);
  }
  done = (): boolean => this.pos >= this.tokens.length;
  peek = (ahead = 0): Token | undefined => this.tokens[this.pos + ahead];
  isPunct = (text: string, ahead = 0): boolean => this.peek(ahead)?.kind === 'punct' && this.peek(ahead)?.text === text;
  /** Consumes the next token if it is this punctuation or keyword. */
  eat(text: string): boolean {
    const token = this.peek();
    if (token === undefined || token.kind === 'string' || token.text !== text) return false;
    this.pos++;
    return true;
  }
  expect(...texts: string[]): void {
    for (const text of texts) if (!this.eat(text)) this.fail(`expected ${JSON.stringify(text)}`);
  }
  /** The text of the next token, which must be of this kind. */
  take(kind: 'ident' | 'string'): string {
    if (this.peek()?.kind !== kind) this.fail(kind === 'ident' ? 'expected a name' : 'expected a string');
    return this.tokens[this.pos++]!.text;
  }
  ident = (): string => this.take('ident');

  /** type := primary ('|' primary)* */
  type(): TypeExpr {
    const members = [this.primary()];
    while (this.eat('|')) members.push(this.primary());
    return members.length === 1 ? members[0]! : { t: 'union', of: members };
  }

  /** primary := "lit" | '{' '[' name ':' 'string' ']' ':' type ';' '}' | Array<type> | Name ('[' ']')* */
  private primary(): TypeExpr {
    if (this.peek()?.kind === 'string') return { t: 'literal', value: this.take('string') };
    if (this.eat('{')) {
      this.expect('[');
      this.ident();
      this.expect(':', 'string', ']', ':');
      const of = this.type();
      this.expect(';', '}');
      return { t: 'map', of };
    }
    const name = this.ident();
    let type: TypeExpr;
    if (name === 'Array' && this.eat('<')) {
      type = { t: 'array', of: this.type() };
      this.expect('>');
    } else if (this.isPunct('<')) this.fail(`generic type ${name}<...> is not understood`);
    else type = PRIMITIVES.has(name) ? { t: 'primitive', name } : { t: 'ref', name };
    while (this.isPunct('[') && this.isPunct(']', 1)) {
      this.pos += 2;
      type = { t: 'array', of: type };
    }
    return type;
  }
}

/** Parses one .d.ts file: `import {...} from "...";`, `export interface`, `export type`. */
function parseModule(name: string, file: string, src: string): Module {
  const p = new Parser(file, src, tokenize(file, src));
  const mod: Module = { name, imports: new Map(), interfaces: new Map(), aliases: new Map() };
  const declare = (local: string) => {
    if (mod.imports.has(local) || mod.interfaces.has(local) || mod.aliases.has(local)) p.fail(`${local} is declared twice`);
  };
  while (!p.done()) {
    const keyword = p.ident();
    if (keyword === 'import') {
      p.expect('{');
      const names = [p.ident()];
      while (p.eat(',')) names.push(p.ident());
      p.expect('}', 'from');
      const specifier = p.take('string');
      if (!specifier.startsWith('.')) p.fail(`import from outside the package: ${specifier}`);
      const target = path.posix.join(path.posix.dirname(name), specifier);
      p.expect(';');
      for (const local of names) {
        declare(local);
        mod.imports.set(local, `${target}.${local}`);
      }
    } else if (keyword === 'export' && p.eat('interface')) {
      const typeName = p.ident();
      declare(typeName);
      p.expect('{');
      const props: Property[] = [];
      while (!p.isPunct('}')) {
        const at = p.at();
        // `readonly` is a modifier when a property name follows it, else it is the name itself.
        if (p.peek()?.text === 'readonly' && p.peek(1)?.kind === 'ident') p.eat('readonly');
        const prop = p.ident();
        if (props.some((q) => q.name === prop)) p.fail(`property ${typeName}.${prop} is declared twice`);
        p.eat('?');
        p.expect(':');
        props.push({ name: prop, type: p.type(), at });
        p.expect(';');
      }
      p.expect('}');
      mod.interfaces.set(typeName, props);
    } else if (keyword === 'export' && p.eat('type')) {
      const typeName = p.ident();
      declare(typeName);
      const at = p.at();
      p.expect('=');
      mod.aliases.set(typeName, { type: p.type(), at });
      p.expect(';');
    } else p.fail('expected an import, an exported interface or an exported type');
  }
  return mod;
}

/** Every `.d.ts` under dir, as module names relative to it ('core/v1', 'runtime'), sorted. */
function moduleNames(dir: string, prefix = ''): string[] {
  return readdirSync(path.join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      if (entry.isDirectory()) return moduleNames(dir, rel);
      return entry.name.endsWith('.d.ts') ? [rel.slice(0, -'.d.ts'.length)] : [];
    })
    .sort(byCodeUnit);
}

// ---- resolving ---------------------------------------------------------------------------------

/** Locale-independent order, so the output is the same on every machine. */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type Declaration = { qname: string; module: Module } & ({ props: Property[] } | { alias: TypeExpr });

/** 'core/v1.Container' → ['core/v1', 'Container']. */
function splitName(qname: string): [string, string] {
  const dot = qname.lastIndexOf('.');
  return [qname.slice(0, dot), qname.slice(dot + 1)];
}

function lookup(modules: Map<string, Module>, mod: Module, local: string, at: string): Declaration {
  let target = mod;
  let name = local;
  const imported = mod.imports.get(local);
  if (imported !== undefined) {
    const [from, importedName] = splitName(imported);
    const found = modules.get(from);
    if (!found) throw new Error(`${at}: ${local} is imported from ${from}, which does not exist`);
    target = found;
    name = importedName;
  }
  const qname = `${target.name}.${name}`;
  const props = target.interfaces.get(name);
  if (props) return { qname, module: target, props };
  const alias = target.aliases.get(name);
  if (alias) return { qname, module: target, alias: alias.type };
  throw new Error(`${at}: type ${local} is not declared${imported ? ` in ${target.name}` : ''}`);
}

const describe = (f: FieldType): string => JSON.stringify(f);
/** The aliases being expanded by fieldType(), to catch a recursive one. */
const expanding = new Set<string>();

/** Maps a parsed type to a FieldType; `reach` is told of every interface it names. */
function fieldType(modules: Map<string, Module>, mod: Module, type: TypeExpr, at: string, reach: (qname: string) => void): FieldType {
  const recur = (t: TypeExpr, m = mod): FieldType => fieldType(modules, m, t, at, reach);
  switch (type.t) {
    case 'primitive':
      return type.name === 'object' ? 'any' : 'scalar';
    case 'literal':
      return 'scalar';
    case 'array':
      return { array: recur(type.of) };
    case 'map':
      return { map: recur(type.of) };
    case 'union': {
      // IntOrString is `number | string`; the JSONSchemaPropsOr* aliases mix a free-form type
      // with others, which stays free-form. Any other mix has no FieldType: refuse it.
      const members = type.of.map((t) => recur(t));
      if (members.every((m) => m === 'scalar')) return 'scalar';
      if (members.some((m) => m === 'any')) return 'any';
      throw new Error(`${at}: union ${members.map(describe).join(' | ')} is neither all scalars nor free-form`);
    }
    case 'ref': {
      const decl = lookup(modules, mod, type.name, at);
      if ('alias' in decl) {
        // An alias naming itself would recurse forever; none does, but refuse rather than hang.
        if (expanding.has(decl.qname)) throw new Error(`${at}: type alias ${decl.qname} is recursive`);
        expanding.add(decl.qname);
        try {
          return recur(decl.alias, decl.module);
        } finally {
          expanding.delete(decl.qname);
        }
      }
      if (FREE_FORM.has(decl.qname)) return 'any';
      if (decl.props.length === 0 && !EMPTY_STRUCTS.has(decl.qname)) {
        throw new Error(`${at}: ${decl.qname} is an empty interface; list it in FREE_FORM or EMPTY_STRUCTS`);
      }
      reach(decl.qname);
      return decl.qname;
    }
  }
}

interface Tables {
  version: string;
  kinds: Map<string, string[]>;
  types: Map<string, [string, FieldType][]>;
  roots: Map<string, string>;
}

function buildTables(packageDir: string): Tables {
  const pkg = JSON.parse(readFileSync(path.join(packageDir, 'package.json'), 'utf8')) as { name?: string; version?: string };
  if (pkg.name !== 'kubernetes-types' || typeof pkg.version !== 'string') throw new Error(`${packageDir} is not the kubernetes-types package`);
  const modules = new Map<string, Module>();
  for (const name of moduleNames(packageDir)) {
    const src = readFileSync(path.join(packageDir, `${name}.d.ts`), 'utf8');
    modules.set(name, parseModule(name, `kubernetes-types/${name}.d.ts`, src));
  }
  if (!modules.has('core/v1') || !modules.has('meta/v1')) throw new Error(`${packageDir} has no core/v1.d.ts or meta/v1.d.ts`);

  for (const qname of [...FREE_FORM, ...EMPTY_STRUCTS]) {
    const [modName, name] = splitName(qname);
    const props = modules.get(modName)?.interfaces.get(name);
    if (!props) throw new Error(`${qname} (in FREE_FORM or EMPTY_STRUCTS) is not an interface of the package`);
    if (EMPTY_STRUCTS.has(qname) && props.length > 0) throw new Error(`${qname} is in EMPTY_STRUCTS but has fields now`);
  }

  // Kinds: interfaces whose apiVersion and kind are both string literals. Every interface's
  // properties are converted here too, so a type the generator does not understand fails the run
  // even outside the ROOTS' trees.
  const kinds = new Map<string, string[]>();
  const kindOwner = new Map<string, string>();
  for (const mod of modules.values()) {
    for (const [name, props] of mod.interfaces) {
      for (const prop of props) fieldType(modules, mod, prop.type, prop.at, () => {});
      const literal = (field: string) => {
        const type = props.find((p) => p.name === field)?.type;
        return type?.t === 'literal' ? type.value : undefined;
      };
      const apiVersion = literal('apiVersion');
      const kind = literal('kind');
      if (apiVersion === undefined || kind === undefined) continue;
      const key = `${apiVersion}/${kind}`;
      const earlier = kindOwner.get(key);
      if (earlier) throw new Error(`${key} is declared by both ${earlier} and ${mod.name}.${name}`);
      kindOwner.set(key, `${mod.name}.${name}`);
      kinds.set(apiVersion, [...(kinds.get(apiVersion) ?? []), kind]);
    }
  }

  const roots = new Map<string, string>();
  for (const root of ROOTS) {
    const qname = kindOwner.get(root);
    if (!qname) throw new Error(`ROOTS names ${root}, which kubernetes-types does not declare`);
    roots.set(root, qname);
  }

  // Breadth-first from the roots, keeping only the types a manifest of those kinds can contain.
  const types = new Map<string, [string, FieldType][]>();
  const queue = [...roots.values()];
  while (queue.length > 0) {
    const qname = queue.shift()!;
    if (types.has(qname)) continue;
    const [modName, name] = splitName(qname);
    const mod = modules.get(modName)!;
    const props = mod.interfaces.get(name)!;
    const fields = props.map((p): [string, FieldType] => [p.name, fieldType(modules, mod, p.type, p.at, (q) => queue.push(q))]);
    types.set(qname, fields.sort(([a], [b]) => byCodeUnit(a, b)));
  }
  return { version: pkg.version, kinds, types, roots };
}

// ---- emitting ----------------------------------------------------------------------------------

const MAX_LINE = 120;

function quote(s: string): string {
  if (/['\\\n]/.test(s)) throw new Error(`cannot quote ${JSON.stringify(s)}`);
  return `'${s}'`;
}
const key = (s: string): string => (/^[A-Za-z_$][\w$]*$/.test(s) ? s : quote(s));

function code(f: FieldType): string {
  if (typeof f === 'string') return quote(f);
  return 'array' in f ? `{ array: ${code(f.array)} }` : `{ map: ${code(f.map)} }`;
}

/** `  head open items close,` on one line when it fits, else items packed on indented lines. */
function entry(head: string, open: string, items: string[], close: string): string {
  const pad = open === '{' ? ' ' : ''; // Prettier's style: `{ a: 1 }` but `['a']`
  const one = `  ${head}${open}${pad}${items.join(', ')}${pad}${close},`;
  if (items.length === 0) return `  ${head}${open}${close},`;
  if (one.length <= MAX_LINE) return one;
  const lines = [`  ${head}${open}`];
  let line = '   ';
  for (const item of items) {
    if (line.length > 3 && line.length + item.length + 2 > MAX_LINE) {
      lines.push(line);
      line = '   ';
    }
    line += ` ${item},`;
  }
  lines.push(line, `  ${close},`);
  return lines.join('\n');
}

function emit({ version, kinds, types, roots }: Tables): string {
  const sorted = <T>(map: Map<string, T>): [string, T][] => [...map].sort(([a], [b]) => byCodeUnit(a, b));
  return [
    '/*',
    ` * Generated by \`npm run gen:kubernetes\` (scripts/gen-kubernetes-fields.ts) from kubernetes-types ${version}.`,
    ' * Do not edit by hand: test/unit/kubernetes-fields.test.ts fails when this file differs from what the',
    ' * generator produces. See README.md beside this file.',
    ' */',
    '',
    "/** A field's type: 'scalar' (string, number, boolean, Quantity, IntOrString, Time, ... any alias of a primitive or a union of primitives/literals), 'any' (free-form: RawExtension, JSON, JSONSchemaProps-like or `object`), the name of a type in KUBERNETES_TYPES, or an array / string-keyed map of one. */",
    "export type FieldType = 'scalar' | 'any' | string | { array: FieldType } | { map: FieldType };",
    '',
    '/** The version of the kubernetes-types package this table was generated from. */',
    `export const KUBERNETES_TYPES_VERSION = ${quote(version)};`,
    '',
    "/** Every apiVersion Kubernetes defines → its kinds (interfaces whose apiVersion and kind are string literals), List kinds included. Core group is 'v1'. */",
    'export const KUBERNETES_KINDS: Readonly<Record<string, readonly string[]>> = {',
    ...sorted(kinds).map(([apiVersion, list]) => entry(`${quote(apiVersion)}: `, '[', [...list].sort(byCodeUnit).map(quote), ']')),
    '};',
    '',
    "/** `${apiVersion}/${kind}` → the root type name, for the kinds in the generator's ROOTS. */",
    'export const KUBERNETES_ROOTS: Readonly<Record<string, string>> = {',
    ...sorted(roots).map(([root, qname]) => `  ${quote(root)}: ${quote(qname)},`),
    '};',
    '',
    "/** Type name (qualified by module: 'core/v1.Container') → its fields, for the types reachable from KUBERNETES_ROOTS. */",
    'export const KUBERNETES_TYPES: Readonly<Record<string, Readonly<Record<string, FieldType>>>> = {',
    ...sorted(types).map(([qname, fields]) => entry(`${quote(qname)}: `, '{', fields.map(([n, f]) => `${key(n)}: ${code(f)}`), '}')),
    '};',
    '',
  ].join('\n');
}

/** The text of fields.generated.ts for the kubernetes-types package in packageDir. */
export function generateKubernetesFields(packageDir: string = DEFAULT_PACKAGE_DIR): string {
  return emit(buildTables(packageDir));
}

const invokedPath = process.argv[1] ? pathToFileURL(realpathSync(process.argv[1])).href : '';
if (import.meta.url === invokedPath) {
  try {
    const text = generateKubernetesFields();
    mkdirSync(path.dirname(path.join(ROOT, OUTPUT_PATH)), { recursive: true });
    writeFileSync(path.join(ROOT, OUTPUT_PATH), text);
    console.log(`wrote ${OUTPUT_PATH} (${text.split('\n').length - 1} lines)`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
}
