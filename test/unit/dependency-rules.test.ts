import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkDependencies, checkRedisAccess, findImports, formatViolation, readRepository } from '../../scripts/check-deps.ts';

const lines = (...l: string[]) => l.join('\n');

interface Case {
  name: string;
  files: Record<string, string>;
  /** Existing files that are not scanned (JSON). */
  others?: string[];
  expected: string[];
}

const cases: Case[] = [
  {
    name: 'a clean map reports nothing (bare specifiers, JSON, state/ -> lib/ and schemas/, test/ -> anything)',
    files: {
      'state/store.ts': lines("import { Redis } from 'ioredis';", "import { x } from '../lib/errors.ts';", "import type { D } from '../schemas/generated/index.ts';"),
      'lib/errors.ts': "import { inspect } from 'node:util';\nexport const x = 1;",
      'schemas/generated/index.ts': "export * from './deployment.ts';",
      'schemas/generated/deployment.ts': 'export interface D {}',
      'reconciler/validator.ts': "import schema from '../schemas/deployment.schema.json' with { type: 'json' };\nimport { x } from '../state/store.ts';",
      'agents/agent.ts': "import { x } from '../state/store.ts';",
      'test/unit/a.test.ts': "import '../../reconciler/validator.ts';\nimport '../../agents/agent.ts';",
    },
    others: ['schemas/deployment.schema.json'],
    expected: [],
  },
  {
    name: 'agents/ importing reconciler/ names the file, the line and the imported path',
    files: {
      'agents/agent.ts': lines("import { Redis } from 'ioredis';", '', "import { model } from '../reconciler/model.ts';"),
      'reconciler/model.ts': 'export const model = 1;',
    },
    expected: ['agents/agent.ts:3 imports reconciler/model.ts: agents/ must not import reconciler/'],
  },
  {
    name: 'reconciler/ importing agents/',
    files: { 'reconciler/git/source.ts': "import type { A } from '../../agents/agent.ts';", 'agents/agent.ts': 'export type A = 1;' },
    expected: ['reconciler/git/source.ts:1 imports agents/agent.ts: reconciler/ must not import agents/'],
  },
  {
    name: 'state/, lib/ and schemas/ import only what their rule allows',
    files: {
      'state/store.ts': "import { keys } from './keys.ts';\nimport { plan } from '../reconciler/plan.ts';",
      'state/keys.ts': "export * from '../cli/args.ts';",
      'lib/errors.ts': "import { k } from '../state/keys.ts';",
      'schemas/generated/index.ts': "export { x } from '../../reconciler/plan.ts';",
      'reconciler/plan.ts': '',
      'cli/args.ts': '',
    },
    expected: [
      'lib/errors.ts:1 imports state/keys.ts: lib/ may import only lib/',
      'schemas/generated/index.ts:1 imports reconciler/plan.ts: schemas/ may import only schemas/',
      'state/keys.ts:1 imports cli/args.ts: state/ may import only state/, lib/, schemas/',
      'state/store.ts:2 imports reconciler/plan.ts: state/ may import only state/, lib/, schemas/',
    ],
  },
  {
    name: 'a 2-file cycle is reported once',
    files: { 'cli/format.ts': "import { t } from './table.ts';\nexport const f = 1;", 'cli/table.ts': "\n\nimport { f } from './format.ts';" },
    expected: ['cli/format.ts:1 imports cli/table.ts: import cycle cli/format.ts -> cli/table.ts -> cli/format.ts'],
  },
  {
    name: 'a 3-file cycle, reported from its alphabetically first file',
    files: {
      'reconciler/c.ts': "import { a } from './a.ts';",
      'reconciler/a.ts': "import { b } from './b.ts';",
      'reconciler/b.ts': "import { c } from './c.ts';",
    },
    expected: ['reconciler/a.ts:1 imports reconciler/b.ts: import cycle reconciler/a.ts -> reconciler/b.ts -> reconciler/c.ts -> reconciler/a.ts'],
  },
  {
    name: 'type-only imports and re-exports count in cycles',
    files: {
      'reconciler/validator.ts': "import { check } from './checks.ts';\nexport interface Issue {}",
      'reconciler/checks.ts': "import type { Issue } from './validator.ts';\nexport type { Issue as I } from './validator.ts';",
    },
    expected: ['reconciler/checks.ts:1 imports reconciler/validator.ts: import cycle reconciler/checks.ts -> reconciler/validator.ts -> reconciler/checks.ts'],
  },
  {
    name: 'an import of itself is a cycle',
    files: { 'cli/a.ts': "export * from './a.ts';" },
    expected: ['cli/a.ts:1 imports cli/a.ts: import cycle cli/a.ts -> cli/a.ts'],
  },
  {
    name: 'files that all reach one another: every import in them is covered, each cycle once',
    files: {
      'cli/a.ts': "import './b.ts';",
      'cli/b.ts': "import './a.ts';\nimport './c.ts';",
      'cli/c.ts': "import './b.ts';",
    },
    expected: ['cli/a.ts:1 imports cli/b.ts: import cycle cli/a.ts -> cli/b.ts -> cli/a.ts', 'cli/b.ts:2 imports cli/c.ts: import cycle cli/b.ts -> cli/c.ts -> cli/b.ts'],
  },
  {
    name: 'an import that resolves to no file, or leaves the repository, is an error',
    files: {
      'cli/main.ts': lines("import { a } from './args.ts';", "import { b } from './missing.ts';", "import data from '../schemas/gone.json' with { type: 'json' };", "import { c } from '../../outside.ts';"),
      'cli/args.ts': '',
    },
    expected: ['cli/main.ts:2 imports cli/missing.ts: no such file', 'cli/main.ts:3 imports schemas/gone.json: no such file', 'cli/main.ts:4 imports ../../outside.ts: no such file'],
  },
  {
    name: 'dynamic import() with a literal string, also as a type, and a .js specifier of a .ts file',
    files: {
      'agents/agent.ts': lines(
        "const m = await import('../reconciler/a.ts');",
        'const t: import("../reconciler/b.ts").T = 1;',
        'const n = await import(`../reconciler/c.ts`);',
        "const skipped = await import(`../reconciler/${name}.ts`);",
        "import { d } from '../reconciler/d.js';",
      ),
      'reconciler/a.ts': '',
      'reconciler/b.ts': '',
      'reconciler/c.ts': '',
      'reconciler/d.ts': '',
    },
    expected: [
      'agents/agent.ts:1 imports reconciler/a.ts: agents/ must not import reconciler/',
      'agents/agent.ts:2 imports reconciler/b.ts: agents/ must not import reconciler/',
      'agents/agent.ts:3 imports reconciler/c.ts: agents/ must not import reconciler/',
      'agents/agent.ts:5 imports reconciler/d.ts: agents/ must not import reconciler/',
    ],
  },
  {
    name: 'multi-line import lists, side-effect imports and every export-from form',
    files: {
      'agents/agent.ts': lines(
        "import { Redis } from 'ioredis';",
        'import {',
        '  a,',
        '  type B,',
        "} from '../reconciler/a.ts';",
        "import '../reconciler/b.ts';",
        "export * from '../reconciler/c.ts';",
        "export * as d from '../reconciler/d.ts';",
        'export {',
        '  e,',
        "} from '../reconciler/e.ts';",
        "import f, * as g from '../reconciler/f.ts';",
      ),
      'reconciler/a.ts': '',
      'reconciler/b.ts': '',
      'reconciler/c.ts': '',
      'reconciler/d.ts': '',
      'reconciler/e.ts': '',
      'reconciler/f.ts': '',
    },
    expected: [2, 6, 7, 8, 9, 12].map((line, i) => `agents/agent.ts:${line} imports reconciler/${'abcdef'[i]}.ts: agents/ must not import reconciler/`),
  },
  {
    name: 'import-looking text in strings, templates, comments and regexes is not an import',
    files: {
      'agents/agent.ts': lines(
        "// import { a } from '../reconciler/a.ts';",
        "/* import '../reconciler/a.ts'; */",
        `const s = "import { a } from '../reconciler/a.ts'";`,
        "const t = `import '../reconciler/a.ts' ${`nested import('../reconciler/a.ts')`} export * from '../reconciler/a.ts'`;",
        "const r = /['\"]/g, q = x / 2, u = '/';",
        "const yaml = 'command: [\"node\", \"-e\", \"require(\\'http\\')\"]';",
        "import { ok } from './ok.ts';",
      ),
      'agents/ok.ts': '',
    },
    expected: [],
  },
];

for (const c of cases) {
  test(`dependency rules: ${c.name}`, () => {
    const violations = checkDependencies(new Map(Object.entries(c.files)), c.others);
    assert.deepEqual(violations.map(formatViolation), c.expected);
  });
}

test('findImports gives each statement its first line, in source order', () => {
  const src = lines(
    '// what we re-export', // a keyword in a comment does not start a statement
    "import a from './a.ts';",
    'export {',
    '  b,',
    "} from './b.ts';",
    "const c = () => import('./c.ts');",
    "import './d.ts'; import './e.ts';",
  );
  assert.deepEqual(findImports(src), [
    { specifier: './a.ts', line: 2 },
    { specifier: './b.ts', line: 3 },
    { specifier: './c.ts', line: 6 },
    { specifier: './d.ts', line: 7 },
    { specifier: './e.ts', line: 7 },
  ]);
});

const redisCases: { name: string; file: string; src: string; want: string[] }[] = [
  { name: 'a command on a connection field', file: 'reconciler/a.ts', src: 'await this.redis.get(k);', want: ['reconciler/a.ts:1 imports redis.get'] },
  { name: 'through store.redis', file: 'agents/a.ts', src: 'const x = 1;\nawait store.redis.smembers(k);', want: ['agents/a.ts:2 imports redis.smembers'] },
  { name: 'a Redis-only command on anything', file: 'cli/a.ts', src: 'const tx = conn.multi();\ntx.hset(k, f, v);', want: ['cli/a.ts:1 imports redis.multi', 'cli/a.ts:2 imports redis.hset'] },
  { name: 'get on a Map is not Redis', file: 'reconciler/a.ts', src: 'cache.get(k); map.set(k, v); this.queues.get(n);', want: [] },
  { name: 'text in strings and comments', file: 'reconciler/a.ts', src: "// redis.get(k)\nconst s = 'redis.hgetall(k)';", want: [] },
  { name: 'state/ is the store: allowed there', file: 'state/store.ts', src: 'await this.redis.hgetall(k);', want: [] },
  { name: 'tests may inspect Redis', file: 'test/integration/a.test.ts', src: 'await redis.get(k);', want: [] },
];

for (const c of redisCases) {
  test(`raw Redis calls: ${c.name}`, () => {
    const got = checkRedisAccess(new Map([[c.file, c.src]])).map((v) => formatViolation(v).replace(/: a raw Redis call.*$/, ''));
    assert.deepEqual(got, c.want);
  });
}

test('the repository itself breaks no dependency rule', () => {
  const { files, otherFiles } = readRepository(fileURLToPath(new URL('../..', import.meta.url)));
  assert.ok(files.has('scripts/check-deps.ts') && files.has('test/unit/dependency-rules.test.ts'), 'reads the real tree');
  assert.deepEqual(checkDependencies(files, otherFiles).map(formatViolation), []);
  assert.deepEqual(checkRedisAccess(files).map(formatViolation), []);
});
