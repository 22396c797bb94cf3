/**
 * File modes of volumes (defaultMode, items[].mode) read as Kubernetes reads them.
 *
 * Kubernetes parses manifests as YAML 1.1, where `0400` is an octal literal: 256, r--------. The
 * yaml library parses YAML 1.2, where `0400` is the decimal 400: 0620, rw--w----, a valid mode
 * that would quietly make a Secret's files group-writable. Manifests say `defaultMode: 0400` all
 * the time, so for these fields only the loader looks at what was written and reads a leading-zero
 * literal as octal, as kubectl does. Decimal (`256`, `420`), YAML 1.2's `0o400` and hex mean what
 * they mean in both versions and are left alone; JSON has no leading zeros. Every other number
 * keeps YAML 1.2's reading (nothing else in a pod spec is written in octal). Pure.
 */
import type { DeploymentObject } from './types.ts';

/** A manifest file as the loader got it (load-manifests.ts ManifestFile, which imports this module). */
export interface SourceFile {
  path: string;
  content: Uint8Array | string;
}

/** Where the loader found a document (its Candidate): the file, and pointers mapped to positions. */
export interface LocatedDocument {
  data: unknown;
  source: { file: string };
  locate(pointer: string, key: boolean): { line: number; column: number };
}

/** A YAML 1.1 octal integer: a 0 then octal digits (`0` alone is zero either way). */
const OCTAL_LITERAL = /^0[0-7]+$/;
/** A plain scalar ends at whitespace, a flow indicator or a comment. */
const PLAIN_TOKEN = /^[^\s,\]}#]+/;

/** Per load (its files list): the files by path, and the lines of those read, each decoded once. */
const cache = new WeakMap<readonly SourceFile[], { files: Map<string, SourceFile>; lines: Map<string, string[]> }>();

function linesOf(files: readonly SourceFile[], path: string): string[] | undefined {
  let entry = cache.get(files);
  if (!entry) cache.set(files, (entry = { files: new Map(files.map((f) => [f.path, f])), lines: new Map() }));
  const known = entry.lines.get(path);
  if (known) return known;
  const file = entry.files.get(path);
  if (!file) return undefined;
  let text = typeof file.content === 'string' ? file.content : new TextDecoder().decode(file.content);
  // The parser saw the text without its BOM, so positions on line 1 are counted without it.
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  const lines = text.split('\n');
  entry.lines.set(path, lines);
  return lines;
}

/**
 * The literal written for the node at `line`:`column` (1-based). Positions of aliases are the
 * alias's (`mode: *m`): its value is the literal after the nearest `&m` before it, as YAML resolves it.
 */
function literalAt(lines: readonly string[], line: number, column: number): string | undefined {
  const token = lines[line - 1]?.slice(column - 1).match(PLAIN_TOKEN)?.[0];
  if (!token?.startsWith('*')) return token;
  const anchor = new RegExp(`&${token.slice(1).replace(/[^\w-]/g, '\\$&')}\\s+([^\\s,\\]}#]+)`, 'g');
  for (let i = line - 1; i >= 0; i--) {
    const text = i === line - 1 ? lines[i]!.slice(0, column - 1) : lines[i]!;
    const found = [...text.matchAll(anchor)].at(-1);
    if (found) return found[1];
  }
  return undefined;
}

/** The value at `pointer` read as YAML 1.1 would, when it was written as a leading-zero literal. */
function octalAt(doc: LocatedDocument, files: readonly SourceFile[], pointer: string): number | undefined {
  const { line, column } = doc.locate(pointer, false);
  const lines = linesOf(files, doc.source.file);
  const token = lines && literalAt(lines, line, column);
  return token !== undefined && OCTAL_LITERAL.test(token) ? Number.parseInt(token, 8) : undefined;
}

/**
 * Rewrites, in the loaded deployment, each volume file mode written as a leading-zero literal to
 * its octal value, before the modes are checked and hashed. Returns the pointers rewritten.
 */
export function readOctalModes(d: DeploymentObject, doc: LocatedDocument, files: readonly SourceFile[]): string[] {
  const rewritten: string[] = [];
  const fix = <T extends { mode?: number; defaultMode?: number }>(holder: T, field: 'mode' | 'defaultMode', pointer: string) => {
    if (holder[field] === undefined) return;
    const octal = octalAt(doc, files, pointer);
    if (octal !== undefined && octal !== holder[field]) {
      holder[field] = octal;
      rewritten.push(pointer);
    }
  };
  (d.spec.template.spec.volumes ?? []).forEach((v, i) => {
    for (const kind of ['configMap', 'secret', 'downwardAPI'] as const) {
      const source = v[kind];
      if (!source) continue;
      const base = `/spec/template/spec/volumes/${i}/${kind}`;
      fix(source, 'defaultMode', `${base}/defaultMode`);
      (source.items ?? []).forEach((item, j) => fix(item, 'mode', `${base}/items/${j}/mode`));
    }
  });
  return rewritten;
}
