#!/usr/bin/env node
// The test command: type-check, check dependency rules, make sure redis-server exists, then run
// every test file with Node's test runner through tsx. Node 20's --test takes no globs and finds
// no .ts files itself.
// Usage: npm test [-- <substring filter on file paths>]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'helpers' || name === 'fixtures' ? [] : find(p);
    return name.endsWith('.test.ts') ? [relative(root, p)] : [];
  });
}

const step = (what, cmd, args) => {
  console.log(`\n== ${what}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`\n== ${what} failed`);
    process.exit(r.status ?? 1);
  }
};

if (filters.length === 0) step('type-check (tsc --noEmit)', process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root]);
if (filters.length === 0) step('dependency rules (scripts/check-deps.ts)', process.execPath, ['--import', 'tsx', join(root, 'scripts/check-deps.ts')]);
step('redis-server present', process.execPath, ['--import', 'tsx', '-e', "import('./cli/redis-server.ts').then(m => { try { console.log(m.ensureRedisServer(console.log)); } catch (e) { console.error(e.message); process.exit(1); } })"]);

const files = find(join(root, 'test')).sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
step(`tests (${files.length} files)`, process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=300000', ...files]);
