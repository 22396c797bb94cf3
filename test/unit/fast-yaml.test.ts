/**
 * fast-yaml.ts is a shortcut past the `yaml` library, so it must never say anything the full reader
 * would not: wherever it answers, `yaml` (with the loader's options) must read the same documents
 * without an error, with the same data, starting at the same offsets. Checked on every manifest in
 * the repository, on the benchmark's generated ones, on a table of spellings where YAML libraries
 * are known to differ, and on thousands of seeded mutations of all of them (most mutations make
 * something fast-yaml must hand over, which is the other half of the property).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { fastDocuments } from '../../reconciler/manifests/fast-yaml.ts';
import { FileOutcome } from '../../reconciler/manifests/file-outcome.ts';
import { manifestFiles } from '../../bench/fixtures.ts';

const root = new URL('../..', import.meta.url).pathname;
const MAX_DEPTH = 64;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

/** What the full reader makes of `text`: its documents' data and starts, or undefined on any error. */
function fullRead(text: string): { data: unknown; offset: number }[] | undefined {
  const docs = parseAllDocuments(text, { prettyErrors: false, merge: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.some((d) => d.errors.length > 0)) return undefined;
  return list.flatMap((d) => {
    const data = d.toJS({ maxAliasCount: 1000 });
    return data === null || data === undefined ? [] : [{ data, offset: (d.contents as { range: number[] }).range[0]! }];
  });
}

/** The property: where fast-yaml answers, the full reader answers the same. Returns whether it answered. */
function agrees(text: string, what: string): boolean {
  const fast = fastDocuments(text, MAX_DEPTH);
  if (!fast) return false;
  const full = fullRead(text);
  assert.ok(full, `${what}: fast-yaml read a text the full reader rejects:\n${text.slice(0, 400)}`);
  assert.deepEqual(fast, full, `${what}: documents differ:\n${text.slice(0, 400)}`);
  return true;
}

const corpus: [string, string][] = [
  ...yamlFiles(join(root, 'examples-repo')).map((p): [string, string] => [p, readFileSync(p, 'utf8')]),
  ...yamlFiles(join(root, 'test/fixtures')).map((p): [string, string] => [p, readFileSync(p, 'utf8')]),
  ...manifestFiles(40, 2).map((f): [string, string] => [f.path, typeof f.content === 'string' ? f.content : new TextDecoder().decode(f.content)]),
];

test('every manifest in the repository and the benchmark is read fast, as the full reader reads it', () => {
  assert.ok(corpus.length >= 20, `corpus has ${corpus.length} files`);
  const slow = corpus.filter(([path, text]) => !agrees(text, path)).map(([path]) => path);
  // Only files that use anchors, tags or the like may go to the full reader.
  for (const path of slow) assert.match(readFileSync(path, 'utf8'), /[&*!]|<<|^%/m, `${path} went to the full reader`);
});

test('spellings where YAML libraries differ are read the same or handed to the full reader', () => {
  const cases = [
    'a: 0755', 'a: 0o17', 'a: 0x1F', 'a: 1_000', 'a: +12', 'a: -0', 'a: .5', 'a: 1.', 'a: 1e3', 'a: 1E-3', 'a: 12345678901234567890',
    'a: .inf', 'a: -.Inf', 'a: .NaN', 'a: yes', 'a: on', 'a: Off', 'a: ~', 'a: Null', 'a: TRUE', 'a: 2024-01-01', 'a: 12:30:00', 'a: 0b101',
    'a: "\\u00e9\\x41\\t"', "a: 'it''s'", 'a: |+\n  x\n\n', 'a: >-\n  x\n  y\n', 'a: |2\n    x\n', 'a: >\n  x\n\n  y\n', 'a: b\n  c\n  d',
    'a: "multi\n  line"', '1: x', 'null: x', 'true: x', '~: x', '"": x', '? a\n: b', '? [a]\n: b', 'a:\n- 1\n- 2', 'a: [1, {b: 2}, [3]]',
    '{a: 1, b: [2]}', '[a, b]', '"a": 1', 'a: 1\na: 2', '<<: {a: 1}', 'a: &x 1\nb: *x', 'a: !!str 1', '%YAML 1.1\n---\na: 1', 'a: b # c',
    'a: b#c', 'a:\tb', '\ta: b', 'a: [1, 2', 'a: {b', 'a: @x', 'a: `x', "a: 'x", 'a: "x', '- a\nb: c', 'a:\n  - b\n  c: d',
    '---\n---\na: 1\n...\n---\n~\n---\nb: 2', '# only a comment', '', 'a: x\n--- |\n  lit', 'key with spaces: 1', 'a.b/c-d_e: 1',
    `${'k'.repeat(1100)}: 1`, 'a: \u00a0x', 'a: "\\ud800"', 'a: x\r\nb: y\r\n', '\ufeffa: 1', 'a: - b', 'a: ? b', 'a: b: c', 'a: [b]: c',
  ];
  let answered = 0;
  for (const text of cases) if (agrees(text, JSON.stringify(text))) answered++;
  // Most of these are plain YAML that fast-yaml must read (else the shortcut is never taken).
  assert.ok(answered >= 30, `fast-yaml answered only ${answered} of ${cases.length}`);
});

/** A seeded generator (mulberry32): the same mutations on every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INSERTS = [':', ' ', '-', '#', '&a ', '*a', '!', '|', '>', "'", '"', '{', '}', '[', ']', ',', '?', '\t', '\n', '0', '~', '<<', '  ', ': ', '- ', '---\n', '%', '\\', 'é'];

test('thousands of seeded mutations of the manifests: fast-yaml agrees with the full reader or hands over', () => {
  const random = rng(14);
  let answered = 0;
  let total = 0;
  for (const [path, text] of corpus.slice(0, 24)) {
    const source = text.slice(0, 3000);
    for (let i = 0; i < 150; i++) {
      let t = source;
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--) {
        const at = Math.floor(random() * (t.length + 1));
        const kind = random();
        if (kind < 0.4) t = t.slice(0, at) + INSERTS[Math.floor(random() * INSERTS.length)] + t.slice(at);
        else if (kind < 0.8) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(random() * 3));
        else {
          const lines = t.split('\n');
          const a = Math.floor(random() * lines.length);
          const b = Math.floor(random() * lines.length);
          [lines[a], lines[b]] = [lines[b]!, lines[a]!];
          t = lines.join('\n');
        }
      }
      total++;
      if (agrees(t, `${path} mutation ${i}`)) answered++;
    }
  }
  assert.ok(answered > total / 10 && answered < total, `fast-yaml answered ${answered} of ${total} mutations`);
});

test('a file read fast locates its documents where the full reader does, and hands over for anything to report', () => {
  const opts = { maxFileBytes: 1 << 20, maxAliasCount: 100, maxDepth: MAX_DEPTH };
  for (const [path, text] of corpus) {
    const outcome = new FileOutcome({ path: path.replace(/^.*\//, 'x/'), content: text }, opts);
    // outcome.locate re-reads with the full reader when the file was read fast.
    for (const doc of outcome.docs) assert.deepEqual(outcome.locate(doc, ''), { line: doc.source.line, column: doc.source.column }, path);
  }
  // An issue deep in a file read fast is still located at its line and column (the full reader's).
  const text = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ok\n---\napiVersion: gantry.dev/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: lots\n';
  const outcome = new FileOutcome({ path: 'apps/web.yaml', content: text }, opts);
  const issue = outcome.docs[1]!.issues[0]!;
  assert.equal(`${issue.file}:${issue.line}:${issue.column}`, 'apps/web.yaml:11:3');
  assert.deepEqual(outcome.docs[0]!.source, { file: 'apps/web.yaml', line: 1, column: 1 });
  assert.deepEqual(outcome.docs[1]!.source, { file: 'apps/web.yaml', line: 6, column: 1 });
});
