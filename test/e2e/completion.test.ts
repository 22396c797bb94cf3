import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { runGantry } from '../helpers/gantry-process.ts';

/**
 * The completion script made by `gantry completion bash`, sourced into a real bash and asked what
 * completes a command line, as bash asks it on Tab (COMP_WORDS, COMP_CWORD, then COMPREPLY).
 */

let dir: string;
let scriptFile: string;

before(async () => {
  // Made once by the binary; every question below sources it into a fresh bash.
  dir = mkdtempSync(join(tmpdir(), 'gantry-completion-'));
  const made = await runGantry(['completion', 'bash']);
  assert.equal(made.code, 0, made.stderr);
  scriptFile = join(dir, 'gantry.bash');
  writeFileSync(scriptFile, made.stdout);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function complete(...words: string[]): string[] {
  const script = `source '${scriptFile}'
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _gantry; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

test('bash completes commands, sub-commands, kinds, options and option values', () => {
  assert.deepEqual(complete('gantry', 'ge'), ['get']);
  assert.deepEqual(complete('gantry', 'rollout', 'st'), ['status']);
  assert.deepEqual(complete('gantry', 'get', ''), ['nodes', 'deployments', 'instances', 'services', 'configmaps', 'secrets', '--namespace', '-n', '--output', '-o', '--watch', '-w', '--api']);
  assert.deepEqual(complete('gantry', 'describe', 'dep'), ['deployment']);
  assert.deepEqual(complete('gantry', 'get', 'nodes', '--wa'), ['--watch']);
  assert.deepEqual(complete('gantry', '--log-format', ''), ['text', 'json']);
  assert.deepEqual(complete('gantry', '--log-level', 'warn', 'node', 'dr'), ['drain']);
  assert.deepEqual(complete('gantry', 'completion', ''), ['bash', 'zsh']);
});

test('zsh gets the same function through bashcompinit; another shell is a usage error', async () => {
  const zsh = await runGantry(['completion', 'zsh']);
  assert.equal(zsh.code, 0, zsh.stderr);
  assert.match(zsh.stdout, /^# gantry completion \(zsh\)/);
  assert.match(zsh.stdout, /\nautoload -U \+X bashcompinit && bashcompinit\n/);
  assert.match(zsh.stdout, /\ncomplete -F _gantry gantry\n$/);
  const fish = await runGantry(['completion', 'fish']);
  assert.equal(fish.code, 2);
  assert.equal(fish.stderr, 'error: unknown shell "fish": expected bash or zsh\n');
});
