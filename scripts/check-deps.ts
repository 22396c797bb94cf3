#!/usr/bin/env node
// Dependency rules between the top-level folders, plus "no import cycles", "every relative
// import resolves" and "no raw Redis calls outside state/". A small script rather than madge/dependency-cruiser, which cannot use
// TypeScript 7's compiler API. Usage: node --import tsx scripts/check-deps.ts
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folders whose `.ts` files are checked. */
export const SOURCE_FOLDERS = ['state', 'lib', 'reconciler', 'agents', 'cli', 'schemas', 'bench', 'scripts', 'test'];

/** Which top-level folders a folder may import: either an allow-list or a deny-list. */
export interface FolderRule {
  from: string;
  mayImportOnly?: string[];
  mustNotImport?: string[];
}

export const FOLDER_RULES: FolderRule[] = [
  { from: 'agents', mustNotImport: ['reconciler'] },
  { from: 'reconciler', mustNotImport: ['agents'] },
  { from: 'state', mayImportOnly: ['state', 'lib', 'schemas'] },
  { from: 'lib', mayImportOnly: ['lib'] },
  { from: 'schemas', mayImportOnly: ['schemas'] },
];

export interface Violation {
  file: string;
  line: number;
  /** The resolved repo path of the imported file (the raw specifier when it leaves the repo). */
  imported: string;
  message: string;
}

export interface ImportRef {
  specifier: string;
  line: number;
}

export const formatViolation = (v: Violation): string => `${v.file}:${v.line} imports ${v.imported}: ${v.message}`;

// ---- finding imports -------------------------------------------------------------------------

// After these words a `/` starts a regex literal; after any other word it divides.
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);

/**
 * Blanks out comments and the insides of string, template and regex literals (keeping every offset
 * and newline), so import-looking text inside them (test fixtures, docs) is never taken for code.
 * Returns the masked code and each plain string's value by the offset of its opening quote.
 */
export function maskLiterals(src: string): { code: string; strings: Map<number, string> } {
  const out = src.split('');
  const strings = new Map<number, string>();
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  const openSubstitutions: number[] = []; // brace depth at each `${` still open
  let depth = 0;
  let afterOperand = false; // a `/` here divides rather than starting a regex
  let i = src.startsWith('#!') ? src.indexOf('\n') : 0;
  if (i < 0) i = src.length;
  blank(0, i);

  // From just after a backtick (or the `}` closing a substitution) to just after the closing
  // backtick or the next `${`.
  const templatePart = (from: number): number => {
    let k = from;
    while (k < src.length && src[k] !== '`' && !(src[k] === '$' && src[k + 1] === '{')) k += src[k] === '\\' ? 2 : 1;
    blank(from, k);
    if (src[k] === '`') return k + 1;
    openSubstitutions.push(depth);
    return k + 2;
  };
  const quotedEnd = (from: number, quote: string): number => {
    let k = from + 1;
    while (k < src.length && src[k] !== quote && src[k] !== '\n') k += src[k] === '\\' ? 2 : 1;
    return k + 1;
  };
  const regexEnd = (from: number): number | undefined => {
    let inClass = false;
    for (let k = from + 1; k < src.length && src[k] !== '\n'; k++) {
      if (src[k] === '\\') k++;
      else if (src[k] === '[') inClass = true;
      else if (src[k] === ']') inClass = false;
      else if (src[k] === '/' && !inClass) {
        for (k++; /[a-z]/i.test(src[k] ?? ''); k++);
        return k;
      }
    }
    return undefined; // no closing `/` on the line: a division after all
  };

  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) i++;
    else if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      blank(i, (i = end < 0 ? src.length : end));
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      blank(i, (i = end < 0 ? src.length : end + 2));
    } else if (c === '"' || c === "'") {
      const end = quotedEnd(i, c);
      strings.set(i, src.slice(i + 1, end - 1));
      blank(i + 1, end - 1);
      [i, afterOperand] = [end, true];
    } else if (c === '`') {
      const end = templatePart(i + 1);
      if (src[end - 1] === '`') strings.set(i, src.slice(i + 1, end - 1));
      [i, afterOperand] = [end, true];
    } else if (c === '}' && openSubstitutions.at(-1) === depth) {
      openSubstitutions.pop();
      [i, afterOperand] = [templatePart(i + 1), true];
    } else if (c === '/' && !afterOperand && regexEnd(i) !== undefined) {
      const end = regexEnd(i)!;
      blank(i + 1, end);
      [i, afterOperand] = [end, true];
    } else if (/[\w$]/.test(c)) {
      const word = /[\w$]+/y;
      word.lastIndex = i;
      const w = word.exec(src)![0];
      [i, afterOperand] = [i + w.length, !REGEX_AFTER_WORD.has(w)];
    } else {
      if (c === '{') depth++;
      if (c === '}') depth--;
      [i, afterOperand] = [i + 1, c === ')' || c === ']' || c === '}'];
    }
  }
  return { code: out.join(''), strings };
}

// Each form ends just before the specifier's opening quote.
const IMPORT_FORMS = [
  /(?<![\w$.])(?:import|export)\b[\w$\s{},*]*?\bfrom\s*(?=['"])/g, // import x / type {…} / * as x from, export {…} / * from
  /(?<![\w$.])import\s*(?=['"])/g, // import './side-effect.ts'
  /(?<![\w$.])import\s*\(\s*(?=['"`])/g, // import('./x.ts'), also as a type: import('./x.ts').T
];

/** Every import/export specifier given as a literal string, with the line its statement starts on. */
export function findImports(src: string): ImportRef[] {
  const { code, strings } = maskLiterals(src);
  const found: { at: number; specifier: string }[] = [];
  for (const form of IMPORT_FORMS) {
    for (const m of code.matchAll(form)) {
      const specifier = strings.get(m.index + m[0].length);
      if (specifier !== undefined) found.push({ at: m.index, specifier });
    }
  }
  return found.sort((a, b) => a.at - b.at).map(({ at, specifier }) => ({ specifier, line: src.slice(0, at).split('\n').length }));
}

// ---- checking ------------------------------------------------------------------------------

const topFolder = (path: string): string => path.split('/')[0];

function folderRuleBroken(from: string, to: string): string | undefined {
  const [a, b] = [topFolder(from), topFolder(to)];
  for (const rule of FOLDER_RULES) {
    if (rule.from !== a) continue;
    if (rule.mustNotImport?.includes(b)) return `${a}/ must not import ${b}/`;
    if (rule.mayImportOnly && !rule.mayImportOnly.includes(b)) return `${a}/ may import only ${rule.mayImportOnly.map((f) => `${f}/`).join(', ')}`;
  }
  return undefined;
}

/**
 * Checks source files (repo-relative path -> text; `.ts` files are scanned) against the folder rules,
 * for unresolvable relative imports and for import cycles. `otherFiles` are paths that exist but are
 * not scanned (JSON and the like).
 */
export function checkDependencies(files: ReadonlyMap<string, string>, otherFiles: Iterable<string> = []): Violation[] {
  const others = new Set(otherFiles);
  const exists = (p: string) => files.has(p) || others.has(p);
  const violations: Violation[] = [];
  const graph = new Map<string, Map<string, number>>(); // file -> imported source file -> first line

  for (const [file, src] of files) {
    if (!file.endsWith('.ts')) continue;
    const edges = new Map<string, number>();
    graph.set(file, edges);
    for (const { specifier, line } of findImports(src)) {
      if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue;
      const path = posix.normalize(posix.join(posix.dirname(file), specifier));
      const target = [path, path.replace(/\.js$/, '.ts')].find(exists);
      if (path.startsWith('../') || target === undefined) {
        violations.push({ file, line, imported: path.startsWith('../') ? specifier : path, message: 'no such file' });
        continue;
      }
      const broken = folderRuleBroken(file, target);
      if (broken) violations.push({ file, line, imported: target, message: broken });
      if (files.has(target) && target.endsWith('.ts') && !edges.has(target)) edges.set(target, line);
    }
  }

  for (const cycle of findCycles(graph)) {
    const [file, imported] = cycle;
    violations.push({ file, line: graph.get(file)!.get(imported)!, imported, message: `import cycle ${cycle.join(' -> ')}` });
  }
  return violations.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.imported.localeCompare(b.imported));
}

// ---- Redis access ---------------------------------------------------------------------------

/** Folders whose code must reach Redis values only through the store modules of state/. */
export const STORE_ONLY_FOLDERS = ['reconciler', 'agents', 'cli', 'lib'];
/** Commands no other kind of object has: a call is a Redis call whatever it is called on. */
const REDIS_ONLY_METHODS = ['hget', 'hset', 'hgetall', 'hdel', 'hincrby', 'hmget', 'sadd', 'srem', 'smembers', 'sismember', 'scard', 'mget', 'mset', 'xadd', 'xrange', 'xrevrange', 'evalsha', 'pipeline', 'multi', 'incrby', 'pexpire', 'zadd', 'zrem', 'zrange', 'defineCommand'];
/** Names a Map or a client also has: a Redis call only on something called like a Redis connection. */
const AMBIGUOUS_METHODS = ['get', 'set', 'del', 'exists', 'publish', 'ping', 'eval', 'watch', 'incr', 'expire', 'keys', 'scan', 'type'];
const REDIS_CALL = new RegExp(
  `\\.\\s*(${REDIS_ONLY_METHODS.join('|')})\\s*\\(|\\b[\\w$]*(?:redis|Redis)[\\w$]*(?:\\(\\))?\\s*\\.\\s*(${AMBIGUOUS_METHODS.join('|')})\\s*\\(`,
  'g',
);

/**
 * Raw Redis command calls outside the store modules (state/): every Redis value is read and
 * written in one place, so its format, its keys and its atomicity are decided once.
 */
export function checkRedisAccess(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  for (const [file, src] of files) {
    if (!file.endsWith('.ts') || !STORE_ONLY_FOLDERS.includes(file.split('/')[0]!)) continue;
    const { code } = maskLiterals(src);
    for (const m of code.matchAll(REDIS_CALL)) {
      const line = code.slice(0, m.index).split('\n').length;
      violations.push({ file, line, imported: `redis.${m[1] ?? m[2]}`, message: 'a raw Redis call: only the store modules in state/ read or write Redis values' });
    }
  }
  return violations;
}

/** Tarjan's strongly connected components: each group of files that reach one another. */
function stronglyConnected(graph: Map<string, Map<string, number>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)!.keys()) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    components.push(component.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components;
}

/**
 * Cycles that together cover every import inside each strongly connected component: for each import
 * a -> b not yet covered, the shortest way back from b to a. Each is reported once, rotated to start
 * at its alphabetically first file: `a.ts -> b.ts -> a.ts`.
 */
function findCycles(graph: Map<string, Map<string, number>>): string[][] {
  const cycles: string[][] = [];
  for (const component of stronglyConnected(graph)) {
    const inside = new Set(component);
    const covered = new Set<string>();
    for (const a of component) {
      for (const b of [...graph.get(a)!.keys()].sort()) {
        if (!inside.has(b) || covered.has(`${a} ${b}`)) continue;
        const loop = [a, ...shortestPath(graph, b, a, inside)]; // a -> b -> … -> a
        for (let k = 1; k < loop.length; k++) covered.add(`${loop[k - 1]} ${loop[k]}`);
        const nodes = loop.slice(0, -1);
        const first = nodes.indexOf([...nodes].sort()[0]);
        cycles.push([...nodes.slice(first), ...nodes.slice(0, first), nodes[first]]);
      }
    }
  }
  return cycles;
}

/** Breadth-first path from `from` to `to` (both included) through files in `within`. */
function shortestPath(graph: Map<string, Map<string, number>>, from: string, to: string, within: Set<string>): string[] {
  const cameFrom = new Map<string, string | undefined>([[from, undefined]]);
  for (const queue = [from]; queue.length > 0 && !cameFrom.has(to); ) {
    const v = queue.shift()!;
    for (const w of [...graph.get(v)!.keys()].sort()) {
      if (within.has(w) && !cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  const path: string[] = [];
  for (let v: string | undefined = to; v !== undefined; v = cameFrom.get(v)) path.unshift(v);
  return path;
}

// ---- command line --------------------------------------------------------------------------

/** Reads the repository: `.ts` sources of SOURCE_FOLDERS, and the paths of every other file there. */
export function readRepository(root: string): { files: Map<string, string>; otherFiles: string[] } {
  const files = new Map<string, string>();
  const otherFiles: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const path = relative(root, full).split('\\').join('/');
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== '.git') walk(full);
      } else if (entry.name.endsWith('.ts')) files.set(path, readFileSync(full, 'utf8'));
      else otherFiles.push(path);
    }
  };
  for (const folder of SOURCE_FOLDERS) {
    try {
      walk(join(root, folder));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // lib/ may not exist yet
    }
  }
  return { files, otherFiles };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { files, otherFiles } = readRepository(fileURLToPath(new URL('..', import.meta.url)));
  const violations = [...checkDependencies(files, otherFiles), ...checkRedisAccess(files)];
  for (const v of violations) console.error(formatViolation(v));
  const summary = `dependency rules: ${files.size} files, ${violations.length} violation${violations.length === 1 ? '' : 's'}`;
  if (violations.length > 0) {
    console.error(summary);
    process.exit(1);
  }
  console.log(summary);
}
