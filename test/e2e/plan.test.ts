import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startReconciler, type ReconcilerHandle } from '../../reconciler/reconciler.ts';
import type { HeadDiff } from '../../state/records/preview.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import '../helpers/api-auth.ts';

/**
 * `gantry plan` as a CI pipeline runs it: any revision of the tracked repository (a branch, a
 * pull-request ref, a sha) planned against what runs now, with exit codes 0 / 2 / 1.
 */

const web = (replicas: number | string) => `apiVersion: apps/v1
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

let repo: TestRepo;
let rec: ReconcilerHandle;
let dataDir: string;
let main: string;

/** A commit on `branch` (created from main), leaving main checked out and unmoved. */
async function commitOn(branch: string, files: Record<string, string>): Promise<string> {
  await gitAsync(['checkout', '-q', '-B', branch, main], repo.workDir);
  try {
    return await repo.commitFiles(files, branch);
  } finally {
    await gitAsync(['checkout', '-q', 'main'], repo.workDir);
  }
}

before(async () => {
  const { url } = await testRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-plan-'));
  repo = await createRepo();
  main = await repo.commitFiles({ 'web.yaml': web(1) }, 'web');
  delete process.env.GANTRY_WEBHOOK_SECRET; // webhooks off: see the last test
  rec = await startReconciler({ redisUrl: url, prefix: freshPrefix(), source: { repo: repo.dir, branch: 'main', subPath: '.', dataDir }, apiPort: 0, resyncMs: 60_000 });
  await waitFor(async () => (await rec.store.readSourceStatus())?.lastAppliedCommit === main, { what: 'main applied' });
});

after(async () => {
  await rec?.stop();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const plan = (...args: string[]) => runGantry(['plan', ...args, '--api', rec.url]);

test('the branch head against what runs: no changes, exit 0', async () => {
  const r = await plan();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `commit ${main.slice(0, 7)} against ${main.slice(0, 7)}: no changes\n`);
});

test('a branch, a pull-request ref or a sha with changes: exit 2, as text, Markdown or JSON', async () => {
  const sha = await commitOn('feature', { 'web.yaml': web(3), 'api.yaml': web(1).replace('name: web', 'name: api').replaceAll('app: web', 'app: api') });
  await gitAsync(['update-ref', 'refs/pull/12/head', sha], repo.workDir);
  for (const ref of ['feature', 'refs/pull/12/head', sha, sha.slice(0, 10)]) {
    const r = await plan('--ref', ref);
    assert.equal(r.code, 2, `${ref}: ${r.stderr}`);
    assert.equal(r.stdout, `commit ${sha.slice(0, 7)} against ${main.slice(0, 7)}: +1 ~1 -0\n+ Deployment default/api: 1 instance(s) created, template ${r.stdout.match(/template ([0-9a-f]{10})/)![1]}\n~ Deployment default/web: 2 instance(s) created, replicas: 1 -> 3\n`);
  }
  const md = await plan('--ref', 'feature', '-o', 'markdown');
  assert.equal(md.code, 2);
  assert.match(md.stdout, /^\*\*Plan\*\* for `[0-9a-f]{7}` against `[0-9a-f]{7}` \(what runs now\): \*\*\+1 ~1 -0\*\*\n\n\| \| Object \| Changes \|/);
  const json = await plan('--ref', 'feature', '-o', 'json');
  assert.equal(json.code, 2);
  const d = JSON.parse(json.stdout) as HeadDiff;
  assert.deepEqual([d.commit, d.base, d.valid, d.summary], [sha, main, true, '+1 ~1 -0']);
  // Planning changed nothing.
  assert.deepEqual((await rec.store.readDeployments()).map((x) => [x.name, x.replicas]), [['web', 1]]);
});

test('invalid manifests: exit 1 with file:line errors on stderr', async () => {
  await commitOn('broken', { 'web.yaml': web('"three"') });
  for (const output of ['text', 'json']) {
    const r = await plan('--ref', 'broken', '-o', output);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /web\.yaml:6:13 Deployment default\/web \/spec\/replicas: must be integer/);
  }
});

test('an unknown or malformed ref: exit 1 with one line', async () => {
  const unknown = await plan('--ref', 'refs/pull/99/head');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^error: GET \/api\/v1\/plan\?ref=refs%2Fpull%2F99%2Fhead: ref "refs\/pull\/99\/head" not found in /);
  const bad = await plan('--ref', 'a..b');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid ref "a\.\.b"/);
  const usage = await plan('-o', 'yaml');
  assert.equal(usage.code, 2);
});

test('a reconciler without a webhook secret has no webhook listener, and its API port serves no webhooks', async () => {
  assert.equal(rec.webhookUrl, undefined);
  const res = await fetch(`${rec.url}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: '{}' });
  assert.equal(res.status, 404);
});
