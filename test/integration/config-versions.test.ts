import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createGitSource, type GitSource } from '../../reconciler/git/source.ts';
import { SourceSync } from '../../reconciler/controller/source-sync.ts';
import { pruneConfigVersions } from '../../reconciler/controller/config-gc.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * ConfigMap and Secret versions in Redis (issue 12, section 3) through a real sync: stored with the
 * deployments that refer to them, a changed Secret makes a new version and a new template hash,
 * pruning keeps what a revision still uses, and the value is in no status, event or plan.
 */

const SECRET = 'correct-horse-battery-staple';
const secret = (password: string) => `apiVersion: v1\nkind: Secret\nmetadata: { name: db }\nstringData:\n  password: ${password}\n`;
const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          command: [sleep, "1000"]
          env:
            - { name: DB_PASSWORD, valueFrom: { secretKeyRef: { name: db, key: password } } }
`;

let repo: TestRepo;
let redis: Redis;
let dataDir: string;
let source: GitSource;

before(async () => {
  repo = await createRepo();
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-configs-'));
  redis = connectRedis((await testRedis()).url, 'config-versions-test');
});
after(async () => {
  await source?.close();
  await repo?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
  redis?.disconnect();
});

test('versions are stored with their deployments, change with the content, and are pruned once unused', async () => {
  await repo.commitFiles({ 'deploy/secret.yaml': secret(SECRET), 'deploy/web.yaml': web }, 'web with a secret');
  const store = new Store(redis, createKeys(freshPrefix()));
  source = createGitSource({ repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir });
  const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
  assert.equal((await sync.sync()).outcome, 'applied');

  const [first] = await store.readDeployments();
  const [ref] = first!.configRefs!;
  const v1 = ref!.split('@')[1]!;
  assert.equal(ref, `default/Secret/db@${v1}`);
  const stored = await store.configs.readVersion('default', 'Secret', 'db', v1);
  assert.equal(Buffer.from(stored!.data.password!, 'base64').toString(), SECRET);

  await repo.commitFiles({ 'deploy/secret.yaml': secret('rotated') }, 'rotate the password');
  const diff = await sync.diffHead();
  assert.deepEqual(diff.changed.map((c) => `${c.kind} ${c.name}`), ['Secret default/db', 'Deployment default/web']);
  assert.match(diff.changed[1]!.changes.join('; '), /Secret db [0-9a-f]{8} -> [0-9a-f]{8}/);
  // The Secret's row shows sizes and hashes (`rotated` is 7 bytes), never values.
  assert.match(diff.changed[0]!.changes[0]!, /^data\.password: "\(secret: \d+ bytes, sha256:[0-9a-f]{8}\)" -> "\(secret: 7 bytes, sha256:[0-9a-f]{8}\)"$/);
  assert.equal((await sync.sync()).outcome, 'applied');
  const [second] = await store.readDeployments();
  assert.notEqual(second!.templateHash, first!.templateHash);
  const v2 = second!.configRefs![0]!.split('@')[1]!;
  assert.notEqual(v2, v1);
  assert.deepEqual([...(await store.configs.listVersions()).get('default/Secret/db')!].sort(), [v1, v2].sort());

  // v1 is referenced by no deployment and no rollout revision here: pruned; v2 stays.
  assert.equal(await pruneConfigVersions(store), 1);
  assert.equal(await store.configs.readVersion('default', 'Secret', 'db', v1), undefined);
  assert.ok(await store.configs.readVersion('default', 'Secret', 'db', v2));
  assert.equal(await pruneConfigVersions(store), 0);

  // Nothing that is shown holds the value, in any encoding.
  const shown = JSON.stringify([await store.readSourceStatus(), await store.events.read({ limit: 100 }), await store.readDeployments(), diff]);
  for (const form of [SECRET, Buffer.from(SECRET).toString('base64'), 'rotated', Buffer.from('rotated').toString('base64')]) {
    assert.ok(!shown.includes(form), `"${form}" shown`);
  }
});

test('an immutable ConfigMap keeps its content: a commit changing it is rejected and the last good one serves on', async () => {
  const r = await createRepo();
  try {
    const cm = (value: string, immutable = true) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n${immutable ? 'immutable: true\n' : ''}data:\n  mode: ${value}\n`;
    const good = await r.commitFiles({ 'deploy/settings.yaml': cm('fast') }, 'immutable settings');
    const store = new Store(redis, createKeys(freshPrefix()));
    const src = createGitSource({ repo: r.dir, branch: 'main', subPath: 'deploy', dataDir });
    try {
      const sync = new SourceSync({ store, source: src, branch: 'main', enqueue: () => {} });
      assert.equal((await sync.sync()).outcome, 'applied');
      const changed = await r.commitFiles({ 'deploy/settings.yaml': cm('slow') }, 'change it');
      assert.deepEqual(await sync.sync(), {
        outcome: 'rejected',
        commit: changed,
        errors: ['deploy/settings.yaml:1:1 ConfigMap default/settings /data: the ConfigMap is immutable: its data may not change (as in Kubernetes: create one under a new name and point the deployments at it)'],
        errorCount: 1,
      });
      const mutable = await r.commitFiles({ 'deploy/settings.yaml': cm('fast', false) }, 'make it mutable');
      const res = await sync.sync();
      assert.equal(res.outcome, 'rejected');
      assert.match((res as { errors: string[] }).errors[0]!, /\/immutable: the ConfigMap is immutable: it may not become mutable/);
      assert.equal((await store.readSourceStatus())?.lastAppliedCommit, good);
      assert.equal(mutable.length, 40);
      // Renamed, as Kubernetes asks: accepted.
      await r.commitFiles({ 'deploy/settings.yaml': cm('slow').replace('name: settings', 'name: settings-v2') }, 'a new name');
      assert.equal((await sync.sync()).outcome, 'applied');
    } finally {
      await src.close();
    }
  } finally {
    await r.cleanup();
  }
});
