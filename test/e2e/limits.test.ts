import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The limits as the `gantry` command shows them (issue 11, section 4): `gantry validate` prints the
 * first 100 errors and how many more there are, `--max-replicas` sets the replicas cap, and bad
 * values of the new flags are one line and exit 2.
 */

const GANTRY = fileURLToPath(new URL('../../bin/gantry.js', import.meta.url));

function gantry(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [GANTRY, ...args], { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, GANTRY_REDIS_URL: 'redis://127.0.0.1:1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const web = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: main
          command: ["sleep", "1000"]
`;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gantry-limits-e2e-'));
  await mkdir(join(dir, 'broken'));
  for (let i = 0; i < 10; i++) await writeFile(join(dir, 'broken', `f${i}.yaml`), 'apiVersion: gantry.dev/v1\nkind: Nope\n---\n'.repeat(10_000));
  await mkdir(join(dir, 'scaled'));
  await writeFile(join(dir, 'scaled', 'web.yaml'), web(6));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('gantry validate with 100,000 errors prints the first 100 and how many more there are', async () => {
  const r = await gantry(['validate', join(dir, 'broken')]);
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 101);
  assert.equal(lines[0], 'f0.yaml:2:7 Nope /kind: unknown kind "Nope" in gantry.dev/v1 (deprecated), which has only Namespace, ConfigMap, Secret, Deployment, Service');
  assert.equal(lines[100], '... and 99900 more: 100000 error(s)');
});

test('gantry validate --max-replicas: the reconciler\'s cap, with a clear error; out of range is exit 2', async () => {
  assert.deepEqual(await gantry(['validate', join(dir, 'scaled')]), { code: 0, stdout: 'valid: 1 Deployment\n', stderr: '' });
  const capped = await gantry(['validate', '--max-replicas', '5', join(dir, 'scaled')]);
  assert.equal(capped.code, 1);
  assert.equal(capped.stderr, "web.yaml:6:13 Deployment default/web /spec/replicas: must be at most 5, the reconciler's limit on replicas (--max-replicas)\n1 error(s)\n");
  for (const bad of ['0', '2000000', 'many']) {
    const r = await gantry(['validate', '--max-replicas', bad, join(dir, 'scaled')]);
    assert.equal(r.code, 2, bad);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /--max-replicas/);
  }
});

test('gantry agent --max-instances takes a positive integer (exit 2 otherwise, before connecting anywhere)', async () => {
  const r = await gantry(['agent', '--node', 'n1', '--max-instances', '0']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /--max-instances/);
});

test('gantry reconciler: the commit and fetch limits are flags; bad values are one line and exit 2', async () => {
  for (const flag of ['--max-file-size', '--max-commit-files', '--max-commit-size', '--max-object-size', '--max-fetch-size']) {
    for (const bad of ['0', 'lots']) {
      const r = await gantry(['reconciler', '--repo', dir, flag, bad]);
      assert.equal(r.code, 2, `${flag} ${bad}`);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, new RegExp(flag));
    }
  }
});

test('gantry reconciler --max-commit-files and --max-file-size reject a commit past them, keeping the last good one', async () => {
  const cluster = await startCluster({ nodes: [], reconcilerFlags: ['--max-commit-files', '2', '--max-file-size', '1Ki'], files: { 'a.yaml': web(1) } });
  try {
    type Source = { lastAppliedCommit?: string; rejectedCommit?: string; errors?: string[] };
    const source = () => cluster.get<{ source: Source }>('/api/v1/status').then((s) => s.source, () => undefined);
    const good = await waitFor(async () => (await source())?.lastAppliedCommit, { timeoutMs: 30_000, what: 'the first commit applied' });
    const tooMany = await cluster.repo.commitFiles({ 'b.yaml': 'x: 1\n', 'c.yaml': 'y: 2\n' }, 'three files');
    const s1 = await waitFor(async () => {
      const s = await source();
      return s?.rejectedCommit === tooMany ? s : undefined;
    }, { timeoutMs: 30_000, what: 'the three-file commit rejected' });
    assert.equal(s1.lastAppliedCommit, good);
    assert.deepEqual(s1.errors, [`commit ${tooMany.slice(0, 7)} rejected: more than 2 manifest files (the limit per commit)`]);
    const tooBig = await cluster.repo.commitFiles({ 'b.yaml': `# ${'x'.repeat(2000)}\n`, 'c.yaml': null }, 'a big file');
    const s2 = await waitFor(async () => {
      const s = await source();
      return s?.rejectedCommit === tooBig ? s : undefined;
    }, { timeoutMs: 30_000, what: 'the big-file commit rejected' });
    assert.equal(s2.lastAppliedCommit, good);
    assert.deepEqual(s2.errors, ['b.yaml:1:1: file is 2003 bytes (2.0Ki), larger than the limit of 1024 bytes (1Ki)']);
  } finally {
    await cluster.stop();
  }
});
