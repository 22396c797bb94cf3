import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The README's walkthrough starts with a line that puts `gantry` on the PATH of a clone after
 * `npm ci`. Runs that exact line in a shell, in the repository root as a user would, then
 * `gantry version` (there and after a cd elsewhere, as the walkthrough cds into .gantry/repo).
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

function walkthroughFirstLine(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.split(/^## Walkthrough$/m)[1];
  assert.ok(section, 'README.md has a Walkthrough section');
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'the Walkthrough has a sh block');
  const line = block[1]!.split('\n')[0]!;
  assert.match(line, /PATH|gantry/, `the first line sets up the gantry command: ${line}`);
  return line;
}

// Only node's directory and the system's: nothing else that could provide a `gantry`.
const env = { HOME: process.env.HOME ?? '/tmp', PATH: `${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin` };
const sh = (script: string) => spawnSync('bash', ['-c', script], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });

test("the walkthrough's first line puts a working gantry on the PATH", () => {
  const line = walkthroughFirstLine();
  const without = sh('command -v gantry');
  assert.notEqual(without.status, 0, `gantry is on the PATH before the README's line: ${without.stdout}`);
  const elsewhere = mkdtempSync(join(tmpdir(), 'gantry-walkthrough-'));
  try {
    const r = sh(`set -e\n${line}\ngantry version\ncd ${JSON.stringify(elsewhere)}\ngantry version\n`);
    assert.equal(r.status, 0, `${line}\n${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, `gantry ${version}\ngantry ${version}\n`);
  } finally {
    rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('npx gantry, the alternative the line names, runs the same command', () => {
  const r = sh('npx --no-install gantry version');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.equal(r.stdout, `gantry ${version}\n`);
});
