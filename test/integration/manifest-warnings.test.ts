import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createGitSource, type GitSource } from '../../reconciler/git/source.ts';
import { SourceSync } from '../../reconciler/controller/source-sync.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * Ignored kinds and fields (issue 12, section 1) as a user meets them: from a real Git commit (a
 * .gantryignore included) through the sync into the source status, an event and the plan, and in
 * `gantry validate` on a folder: warnings on stderr, exit 0.
 */

const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      serviceAccountName: web
      containers:
        - name: web
          command: [sleep, "1000"]
`;
const serviceAccount = 'apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: web }\n';
const crd = 'apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: { name: widgets.example.com }\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: { name: w }\n';

let repo: TestRepo;
let redis: Redis;
let dataDir: string;
let source: GitSource;

before(async () => {
  repo = await createRepo();
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-warnings-'));
  redis = connectRedis((await testRedis()).url, 'manifest-warnings-test');
});
after(async () => {
  await source?.close();
  await repo?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
  redis?.disconnect();
});

test('a commit with ignored kinds and fields is applied; its warnings reach status, an event and the plan', async () => {
  const commit = await repo.commitFiles({ 'deploy/web.yaml': web, 'deploy/sa.yaml': serviceAccount, 'deploy/crds/widget.yaml': crd, 'deploy/.gantryignore': 'crds/\n' }, 'kubernetes manifests');
  const store = new Store(redis, createKeys(freshPrefix()));
  source = createGitSource({ repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir });
  const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
  const res = await sync.sync();
  assert.equal(res.outcome, 'applied');
  assert.deepEqual((await store.readDeployments()).map((d) => d.name), ['web']);

  const expected = [
    'deploy/crds/widget.yaml:1:1: skipped: matches "crds/" in deploy/.gantryignore',
    'deploy/sa.yaml:1:1 ServiceAccount default/web: ignored: Gantry does not run ServiceAccount (v1); the object is listed, not applied',
    'deploy/web.yaml:9:7 Deployment default/web /spec/template/spec/serviceAccountName: ignored: Gantry does not implement /spec/template/spec/serviceAccountName',
  ];
  const status = await store.readSourceStatus();
  assert.equal(status?.lastAppliedCommit, commit);
  assert.deepEqual(status?.warnings, expected);
  assert.equal(status?.warningCount, 3);
  const [event] = await store.events.read({ limit: 1, object: 'source' });
  assert.equal(event?.reason, 'ManifestWarnings');
  assert.equal(event?.type, 'Warning');
  assert.match(event!.message, /^commit \w+: 3 warning\(s\): deploy\/crds\/widget\.yaml:1:1: skipped/);

  const diff = await sync.diffHead();
  assert.deepEqual({ valid: diff.valid, warnings: diff.warnings, warningCount: diff.warningCount }, { valid: true, warnings: expected, warningCount: 3 });

  // A later commit without warnings clears them from the status.
  await repo.commitFiles({ 'deploy/sa.yaml': null, 'deploy/crds/widget.yaml': null, 'deploy/.gantryignore': null, 'deploy/web.yaml': web.replace('      serviceAccountName: web\n', '') }, 'no more warnings');
  assert.equal((await sync.sync()).outcome, 'applied');
  const cleared = await store.readSourceStatus();
  assert.equal(cleared?.warnings, undefined);
  assert.equal(cleared?.warningCount, undefined);
});

test('gantry validate prints warnings on stderr and exits 0; an unknown kind is exit 1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-validate-k8s-'));
  try {
    await mkdir(join(dir, 'crds'));
    await writeFile(join(dir, 'web.yaml'), web);
    await writeFile(join(dir, 'sa.yaml'), serviceAccount);
    await writeFile(join(dir, 'crds', 'widget.yaml'), crd);
    const failed = await runGantry(['validate', dir]);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /^crds\/widget\.yaml:6:7 Widget default\/w \/kind: Widget \(example\.com\/v1\) is not a kind Kubernetes defines/m);

    await writeFile(join(dir, '.gantryignore'), 'crds/\n');
    const ok = await runGantry(['validate', dir]);
    assert.deepEqual(ok, {
      code: 0,
      stdout: 'valid: 1 Deployment (2 ignored, 1 ignored field)\n',
      stderr: [
        'warning: crds/widget.yaml:1:1: skipped: matches "crds/" in .gantryignore',
        'warning: sa.yaml:1:1 ServiceAccount default/web: ignored: Gantry does not run ServiceAccount (v1); the object is listed, not applied',
        'warning: web.yaml:9:7 Deployment default/web /spec/template/spec/serviceAccountName: ignored: Gantry does not implement /spec/template/spec/serviceAccountName',
        '',
      ].join('\n'),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
