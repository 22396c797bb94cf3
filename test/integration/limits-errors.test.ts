import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createGitSource, type GitSource } from '../../reconciler/git/source.ts';
import { SourceSync } from '../../reconciler/controller/source-sync.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { MAX_REPORTED_ERRORS } from '../../state/records/status.ts';
import { Store } from '../../state/store.ts';
import { startReconciler } from '../../reconciler/reconciler.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * A commit with 100,000 errors (issue 11, section 4): the status, the CommitRejected event, the sync
 * result and the plan hold the first 100 and say how many there are, and the good commit stays.
 */

let redis: Redis;
let redisUrl: string;
let repo: TestRepo;
let source: GitSource;
let dataDir: string;

const good = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: main
          command: [sleep, "1000"]
`;
/** One error per document: 10 files of 10,000 documents each. */
const broken = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`deploy/broken-${i}.yaml`, 'apiVersion: gantry.dev/v1\nkind: Nope\n---\n'.repeat(10_000)]));

before(async () => {
  redisUrl = (await testRedis()).url;
  redis = connectRedis(redisUrl, 'limits-errors-test');
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-limits-errors-'));
  repo = await createRepo();
  source = createGitSource({ repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir });
});
after(async () => {
  await source?.close();
  await repo?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
  redis?.disconnect();
});

test('100,000 errors: the status, the event and the sync result keep the first 100 and the count', async () => {
  const store = new Store(redis, createKeys(freshPrefix()));
  const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
  const applied = await repo.commitFiles({ 'deploy/web.yaml': good }, 'good');
  assert.equal((await sync.sync()).outcome, 'applied');
  const rejected = await repo.commitFiles(broken, 'a generated mess');

  const res = await sync.sync();
  assert.equal(res.outcome, 'rejected');
  if (res.outcome !== 'rejected') return;
  assert.equal(res.errorCount, 100_000);
  assert.equal(res.errors.length, MAX_REPORTED_ERRORS);
  assert.equal(res.errors[0], 'deploy/broken-0.yaml:2:7 Nope /kind: unknown kind "Nope" in gantry.dev/v1 (deprecated), which has only Namespace, ConfigMap, Secret, Deployment, Service');
  assert.equal(res.errors[99], 'deploy/broken-0.yaml:299:7 Nope /kind: unknown kind "Nope" in gantry.dev/v1 (deprecated), which has only Namespace, ConfigMap, Secret, Deployment, Service');

  const status = (await store.readSourceStatus())!;
  assert.equal(status.lastAppliedCommit, applied);
  assert.equal(status.rejectedCommit, rejected);
  assert.equal(status.errors?.length, 100);
  assert.equal(status.errorCount, 100_000);
  assert.match(status.lastError!, /^100000 error\(s\): deploy\/broken-0\.yaml:2:7 /);
  assert.ok(JSON.stringify(status).length < 20_000, `status is ${JSON.stringify(status).length} bytes`);

  const [event] = await store.events.read({ limit: 1, object: 'source' });
  assert.equal(event?.reason, 'CommitRejected');
  assert.match(event!.message, /: 100000 error\(s\): deploy\/broken-0\.yaml:2:7 .*; and 99900 more$/);
  assert.equal(event!.message.split('which has only').length - 1, 100);
  assert.deepEqual((await store.readDeployments()).map((d) => d.name), ['web']);

  // What `gantry plan` and `gantry diff` get for that revision.
  const diff = await sync.diffHead(rejected);
  assert.deepEqual({ valid: diff.valid, errors: diff.errors.length, errorCount: diff.errorCount }, { valid: false, errors: 100, errorCount: 100_000 });

  // A good commit clears it all.
  await gitAsync(['rm', '-q', '-r', 'deploy'], repo.dir);
  const fixed = await repo.commitFiles({ 'deploy/web.yaml': good.replace('1000', '2000') }, 'fixed');
  assert.equal((await sync.sync()).outcome, 'applied');
  const after = (await store.readSourceStatus())!;
  assert.deepEqual([after.lastAppliedCommit, after.rejectedCommit, after.errors, after.errorCount], [fixed, undefined, undefined, undefined]);
});

test('startReconciler({ maxReplicas }) rejects a commit past the cap, naming the field and the setting', async () => {
  const r = await createRepo();
  try {
    const commit = await r.commitFiles({ 'deploy/web.yaml': good.replace('spec:\n  template:', 'spec:\n  replicas: 6\n  template:') }, 'six');
    const rec = await startReconciler({ redisUrl, prefix: freshPrefix(), source: { repo: r.dir, branch: 'main', subPath: 'deploy', dataDir }, apiPort: 0, resyncMs: 60_000, maxReplicas: 5 });
    try {
      const status = await rec.store.readSourceStatus();
      assert.equal(status?.rejectedCommit, commit);
      assert.deepEqual(status?.errors, ["deploy/web.yaml:6:13 Deployment default/web /spec/replicas: must be at most 5, the reconciler's limit on replicas (--max-replicas)"]);
    } finally {
      await rec.stop();
    }
  } finally {
    await r.cleanup();
  }
});
