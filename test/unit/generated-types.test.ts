import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateTypes } from '../../scripts/gen-types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HINT = 'the schemas changed without regenerating the types: run `npm run gen:types`';

test('schemas/generated matches what the schemas generate', async () => {
  const expected = await generateTypes();
  for (const [rel, content] of expected) {
    const actual = await readFile(path.join(ROOT, rel), 'utf8').catch(() => undefined);
    assert.ok(actual !== undefined, `${rel} is missing; ${HINT}`);
    assert.ok(actual === content, `${rel} is out of date; ${HINT}`);
  }
  const stale = (await readdir(path.join(ROOT, 'schemas/generated')))
    .map((f) => `schemas/generated/${f}`)
    .filter((rel) => !expected.has(rel));
  assert.deepEqual(stale, [], `files without a schema in schemas/generated; ${HINT}`);
});

test('generation is deterministic', async () => {
  const [a, b] = await Promise.all([generateTypes(), generateTypes()]);
  assert.deepEqual([...a], [...b]);
});
