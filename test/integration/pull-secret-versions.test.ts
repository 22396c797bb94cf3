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
import type { RolloutState } from '../../state/records/rollout.ts';
import { Store } from '../../state/store.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * Image pull secret versions in Redis through a real sync: stored with the deployment that names
 * them, in its configRefs and template, and kept by the config GC while a revision (the current
 * one, or one in the rollout history) pulls with them; pruned once none does.
 */

const regcred = (password: string) => `apiVersion: v1
kind: Secret
metadata: { name: regcred }
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"registry.example.com": {"username": "u", "password": "${password}"}}}'
`;
const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      imagePullSecrets: [{ name: regcred }]
      containers:
        - name: web
          image: registry.example.com/team/web:1
`;

let repo: TestRepo;
let redis: Redis;
let dataDir: string;
let source: GitSource;

before(async () => {
  repo = await createRepo();
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-pull-secrets-'));
  redis = connectRedis((await testRedis()).url, 'pull-secret-versions-test');
});
after(async () => {
  await source?.close();
  await repo?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
  redis?.disconnect();
});

test('pull secret versions are stored, referenced by the template, and kept by the GC while a revision pulls with them', async () => {
  await repo.commitFiles({ 'deploy/regcred.yaml': regcred('first-pass'), 'deploy/web.yaml': web }, 'web with a pull secret');
  const store = new Store(redis, createKeys(freshPrefix()));
  source = createGitSource({ repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir });
  const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
  assert.equal((await sync.sync()).outcome, 'applied');
  const [first] = await store.readDeployments();
  const v1 = first!.template.imagePullSecrets![0]!.version;
  assert.deepEqual(first!.template.imagePullSecrets, [{ name: 'regcred', version: v1 }]);
  assert.deepEqual(first!.configRefs, [`default/Secret/regcred@${v1}`]);
  assert.equal((await store.configs.readVersion('default', 'Secret', 'regcred', v1))?.type, 'kubernetes.io/dockerconfigjson');

  // Rotated: a new version and a new template; the old revision stays in the rollout history.
  await repo.commitFiles({ 'deploy/regcred.yaml': regcred('second-pass') }, 'rotate the pull secret');
  assert.equal((await sync.sync()).outcome, 'applied');
  const [second] = await store.readDeployments();
  const v2 = second!.template.imagePullSecrets![0]!.version;
  assert.notEqual(v2, v1);
  assert.notEqual(second!.templateHash, first!.templateHash);
  const revision = (n: number, d: typeof first) => ({ revision: n, templateHash: d!.templateHash, template: d!.template, commit: d!.commit, message: '', createdAt: n });
  const history: RolloutState = { revisions: [revision(1, first), revision(2, second)], target: 2, stable: 1, phase: 'Progressing', reason: '', message: '', startedAt: 0, lastProgressAt: 0, progressKey: '' };
  assert.ok(await store.replaceRollout('default', 'web', await store.readRollout('default', 'web'), history));
  assert.equal(await pruneConfigVersions(store), 0);
  assert.ok(await store.configs.readVersion('default', 'Secret', 'regcred', v1), 'kept: revision 1 pulls with it');

  // Once no revision uses it, it goes.
  assert.ok(await store.replaceRollout('default', 'web', await store.readRollout('default', 'web'), { ...history, revisions: [revision(2, second)], stable: 2 }));
  assert.equal(await pruneConfigVersions(store), 1);
  assert.equal(await store.configs.readVersion('default', 'Secret', 'regcred', v1), undefined);
  assert.ok(await store.configs.readVersion('default', 'Secret', 'regcred', v2));

  const shown = JSON.stringify([await store.readSourceStatus(), await store.events.read({ limit: 100 }), await store.readDeployments()]);
  for (const form of ['first-pass', 'second-pass']) assert.ok(!shown.includes(form), `"${form}" shown`);
});
