import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createGitSource, type CommitFiles, type GitSource } from '../../reconciler/git/source.ts';
import { SourceSync, type SyncResult } from '../../reconciler/controller/source-sync.ts';
import { ManifestCache } from '../../reconciler/manifests/manifest-cache.ts';
import { startReconciler } from '../../reconciler/reconciler.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Issue 14, incremental sync: a commit costs what it changed. Parses are counted through the
 * sync's ManifestCache, writes through the sync result and the stored values, enqueues through the
 * enqueue callback; a real repository and a real Redis throughout.
 */

const FILES = 12;
const deployment = (i: number, replicas = 1, extra = '') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: app-${i}, namespace: shop }
spec:
  replicas: ${replicas}
  template:
    metadata: { labels: { app: app-${i} } }
    spec:
      containers:
        - name: main
          command: ["sleep", "1000"]${extra}
`;
const configured = `
          env:
            - name: MODE
              valueFrom: { configMapKeyRef: { name: settings, key: mode } }`;
const settings = (mode: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings, namespace: shop }\ndata: { mode: ${mode} }\n`;
const service = 'apiVersion: v1\nkind: Service\nmetadata: { name: app-0, namespace: shop }\nspec:\n  selector: { app: app-0 }\n  ports: [{ port: 80, targetPort: 8080 }]\n';
const initial = (): Record<string, string> => {
  const files: Record<string, string> = { 'deploy/namespaces.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop }\n', 'deploy/settings.yaml': settings('fast'), 'deploy/service.yaml': service };
  for (let i = 0; i < FILES; i++) files[`deploy/apps/app-${String(i).padStart(2, '0')}.yaml`] = deployment(i, 1, i === 1 ? configured : '');
  return files;
};

let redis: Redis;
let url: string;
let dataDir: string;
const repos: TestRepo[] = [];
const sources: GitSource[] = [];

before(async () => {
  url = (await testRedis()).url;
  redis = connectRedis(url, 'incremental-sync-test');
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-incremental-'));
});
after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  await Promise.all(repos.map((r) => r.cleanup()));
  await rm(dataDir, { recursive: true, force: true });
  redis?.disconnect();
});

interface Setup {
  repo: TestRepo;
  keys: Keys;
  store: Store;
  cache: ManifestCache;
  sync: SourceSync;
  enqueued: string[];
  /** The files the last read listed, and which of them it did not read. */
  lastRead: () => CommitFiles;
  newSync: () => SourceSync;
}

async function setUp(): Promise<Setup> {
  const repo = await createRepo();
  repos.push(repo);
  await repo.commitFiles(initial(), 'initial');
  const keys = createKeys(freshPrefix());
  const store = new Store(redis, keys);
  const source = createGitSource({ repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir });
  sources.push(source);
  let last: CommitFiles | undefined;
  const spy: GitSource = Object.assign(Object.create(source) as GitSource, {
    read: async (commit: string, opts?: Parameters<GitSource['read']>[1]) => (last = await source.read(commit, opts)),
  });
  const enqueued: string[] = [];
  const cache = new ManifestCache();
  const newSync = () => new SourceSync({ store, source: spy, branch: 'main', enqueue: (k) => enqueued.push(k), manifestCache: cache });
  return { repo, keys, store, cache, sync: newSync(), enqueued, lastRead: () => last!, newSync };
}

const applied = (r: SyncResult) => {
  assert.equal(r.outcome, 'applied', JSON.stringify(r));
  return r as Extract<SyncResult, { outcome: 'applied' }>;
};

/** Every desired value of the prefix, raw: what "writes nothing" is checked against. */
async function desiredValues(keys: Keys): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  const deployments = (await redis.smembers(keys.deployments)).sort();
  for (const d of deployments) {
    const [ns, name] = d.split('/') as [string, string];
    out[`deployment ${d}`] = await redis.get(keys.deployment(ns, name));
  }
  for (const s of (await redis.smembers(keys.services)).sort()) {
    const [ns, name] = s.split('/') as [string, string];
    out[`service ${s}`] = await redis.get(keys.service(ns, name));
  }
  for (const [f, v] of Object.entries(await redis.hgetall(keys.namespaces))) out[`namespace ${f}`] = v;
  for (const [f, v] of Object.entries(await redis.hgetall(keys.configsApplied))) out[`applied ${f}`] = v;
  return out;
}

test('a commit touching one file of many reads, parses and validates that file only, writes and enqueues its deployment only', async () => {
  const s = await setUp();
  const first = applied(await s.sync.sync());
  assert.equal(s.cache.last.parsed, FILES + 3, 'the first commit parses every file');
  assert.equal(first.enqueued, FILES);
  assert.deepEqual(new Set(s.enqueued).size, FILES);
  const before = await desiredValues(s.keys);

  s.enqueued.length = 0;
  const sha = await s.repo.commitFiles({ 'deploy/apps/app-07.yaml': deployment(7, 3) }, 'scale app-7');
  const second = applied(await s.sync.sync());
  assert.deepEqual([s.cache.last.parsed, s.cache.last.reused], [1, FILES + 2]);
  const read = s.lastRead();
  assert.deepEqual(read.files.filter((f) => !f.reused).map((f) => f.path), ['deploy/apps/app-07.yaml'], 'only the changed blob is read');
  assert.deepEqual([second.written, second.removed, second.enqueued, second.diff.summary], [1, 0, 1, '+0 ~1 -0']);
  assert.deepEqual(s.enqueued, ['shop/app-7']);

  const after = await desiredValues(s.keys);
  const changed = Object.keys(after).filter((k) => after[k] !== before[k]);
  assert.deepEqual(changed, ['deployment shop/app-7']);
  const app7 = await s.store.readDeployment('shop', 'app-7');
  assert.deepEqual([app7!.replicas, app7!.commit, app7!.generation, app7!.commitMessage], [3, sha, 2, 'scale app-7']);
  // Untouched records keep the commit that last changed them.
  assert.equal((await s.store.readDeployment('shop', 'app-6'))!.commit, first.commit);
  assert.equal((await s.store.readSourceStatus())!.lastAppliedCommit, sha);

  // A ConfigMap change rewrites it and the one deployment that uses it, and nothing else.
  s.enqueued.length = 0;
  const third = applied(await s.repo.commitFiles({ 'deploy/settings.yaml': settings('slow') }, 'slow mode').then(() => s.sync.sync()));
  assert.equal(s.cache.last.parsed, 1);
  assert.deepEqual([third.written, third.enqueued, s.enqueued], [2, 1, ['shop/app-1']]);

  // Removing a file removes its deployment and enqueues it (to be pruned).
  s.enqueued.length = 0;
  const fourth = applied(await s.repo.commitFiles({ 'deploy/apps/app-11.yaml': null }, 'remove app-11').then(() => s.sync.sync()));
  assert.deepEqual([s.cache.last.parsed, fourth.written, fourth.removed, s.enqueued], [0, 0, 1, ['shop/app-11']]);
  assert.equal(await s.store.readDeployment('shop', 'app-11'), undefined);
  assert.ok(!(await s.store.deploymentKeys()).includes('shop/app-11'));
});

test('a commit that changes nothing (an empty commit) parses, writes and enqueues nothing', async () => {
  const s = await setUp();
  const first = applied(await s.sync.sync());
  const before = await desiredValues(s.keys);
  s.enqueued.length = 0;
  const sha = await s.repo.commitFiles({}, 'empty');
  const again = applied(await s.sync.sync());
  assert.deepEqual([again.commit, again.written, again.removed, again.enqueued, again.diff.summary], [sha, 0, 0, 0, '+0 ~0 -0']);
  assert.deepEqual([s.cache.last.parsed, s.cache.last.reused], [0, FILES + 3]);
  assert.deepEqual(s.enqueued, []);
  assert.deepEqual(await desiredValues(s.keys), before);
  assert.deepEqual([(await s.store.readSourceStatus())!.lastAppliedCommit, (await s.store.readDeployment('shop', 'app-0'))!.commit], [sha, first.commit]);
});

test('a rejected commit applies nothing; later commits are still judged on the bad file until it is fixed', async () => {
  const s = await setUp();
  const good = applied(await s.sync.sync()).commit;
  const before = await desiredValues(s.keys);
  const reject = (r: SyncResult) => {
    assert.equal(r.outcome, 'rejected', JSON.stringify(r));
    return (r as Extract<SyncResult, { outcome: 'rejected' }>).errors;
  };

  // An error inside one file (cached with the file's outcome), and one across files (a duplicate).
  await s.repo.commitFiles({ 'deploy/apps/app-03.yaml': deployment(3).replace('replicas: 1', 'replicas: three'), 'deploy/apps/app-04.yaml': deployment(4, 5) }, 'bad replicas, and scale app-4');
  assert.match(reject(await s.sync.sync()).join('\n'), /^deploy\/apps\/app-03\.yaml:5:13 Deployment shop\/app-3 \/spec\/replicas: must be integer/);
  assert.deepEqual(await desiredValues(s.keys), before, 'nothing of the rejected commit is applied, not even its good part');

  // Touching another file only: app-03.yaml is not parsed again, but its errors still reject the commit.
  await s.repo.commitFiles({ 'deploy/apps/app-05.yaml': deployment(5, 2), 'deploy/apps/dup.yaml': deployment(6) }, 'scale app-5, and a duplicate');
  const errors = reject(await s.sync.sync());
  assert.equal(s.cache.last.parsed, 2);
  assert.ok(errors.some((e) => e.startsWith('deploy/apps/app-03.yaml:5:13 Deployment shop/app-3 /spec/replicas: must be integer')), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('deploy/apps/dup.yaml:1:1 Deployment shop/app-6: duplicate Deployment shop/app-6, also defined at deploy/apps/app-06.yaml:1:1')), errors.join('\n'));
  assert.deepEqual(await desiredValues(s.keys), before);
  assert.equal((await s.store.readSourceStatus())!.lastAppliedCommit, good);

  // Fixing the file alone is not enough: the duplicate (a check across files) is found again.
  await s.repo.commitFiles({ 'deploy/apps/app-03.yaml': deployment(3, 2) }, 'fix replicas');
  assert.deepEqual(reject(await s.sync.sync()).map((e) => e.split(' ')[0]), ['deploy/apps/dup.yaml:1:1']);
  s.enqueued.length = 0;
  const fixed = applied(await s.repo.commitFiles({ 'deploy/apps/dup.yaml': null }, 'no duplicate').then(() => s.sync.sync()));
  assert.deepEqual([fixed.written, [...s.enqueued].sort()], [3, ['shop/app-3', 'shop/app-4', 'shop/app-5']]);
  assert.deepEqual((await s.store.readDeployments()).filter((d) => ['app-3', 'app-4', 'app-5'].includes(d.name)).map((d) => d.replicas), [2, 5, 2]);
});

test('the drift repair rewrites a deleted or changed record and enqueues its deployment, and finds nothing when nothing drifted', async () => {
  const s = await setUp();
  applied(await s.sync.sync());
  const before = await desiredValues(s.keys);
  s.enqueued.length = 0;
  assert.deepEqual(await s.sync.repairDrift(), []);

  await redis.del(s.keys.deployment('shop', 'app-2'));
  await redis.hset(s.keys.namespaces, 'shop', '{"name":"shop","commit":"x","labels":{},"annotations":{}}');
  await redis.srem(s.keys.services, 'shop/app-0');
  assert.deepEqual((await s.sync.repairDrift()).sort(), ['deployment/shop/app-2', 'namespace/shop', 'service/shop/app-0']);
  assert.deepEqual(s.enqueued, ['shop/app-2']);
  assert.deepEqual(await desiredValues(s.keys), before);
  assert.deepEqual(await s.sync.repairDrift(), []);

  // After a restart nothing is in memory: the applied commit is compared with what is stored.
  const restarted = s.newSync();
  await redis.set(s.keys.deployment('shop', 'app-9'), 'not json');
  s.enqueued.length = 0;
  assert.deepEqual(await restarted.repairDrift(), ['deployment/shop/app-9']);
  assert.deepEqual(s.enqueued, ['shop/app-9']);
  assert.deepEqual(await desiredValues(s.keys), before);

  // Checksums gone (or an older Gantry that wrote none): every record is compared once, none rewritten.
  await redis.del(s.keys.desiredChecksums);
  s.enqueued.length = 0;
  assert.deepEqual(await restarted.repairDrift(), []);
  assert.deepEqual(s.enqueued, []);
  assert.ok((await redis.hlen(s.keys.desiredChecksums)) > FILES, 'the checksums are written again');
  assert.deepEqual(await restarted.repairDrift(), []);

  // A restarted sync's next commit reads the stored state back and still writes only what changed.
  const sha = await s.repo.commitFiles({ 'deploy/apps/app-08.yaml': deployment(8, 4) }, 'scale app-8');
  const next = applied(await s.newSync().sync());
  assert.deepEqual([next.commit, next.written, next.enqueued], [sha, 1, 1]);
});

test('the reconciler\'s periodic resync puts back a desired record deleted from Redis', async () => {
  const s = await setUp();
  const rec = await startReconciler({ redisUrl: url, prefix: s.keys.prefix, source: { repo: s.repo.dir, branch: 'main', subPath: 'deploy', dataDir }, apiPort: 0, resyncMs: 200 });
  try {
    const d = await waitFor(() => rec.store.readDeployment('shop', 'app-4'), { what: 'app-4 applied' });
    await redis.del(s.keys.deployment('shop', 'app-4'));
    const back = await waitFor(() => rec.store.readDeployment('shop', 'app-4'), { what: 'app-4 rewritten by the resync' });
    assert.deepEqual(back, d);
    // The event is recorded just after the record is written back: waited for, not read at once.
    const repaired = async () => (await rec.store.events.read({ object: 'source' })).some((e) => e.reason === 'DesiredStateRepaired' && e.message.includes('deployment/shop/app-4'));
    await waitFor(repaired, { what: 'a DesiredStateRepaired event naming deployment/shop/app-4' });
  } finally {
    await rec.stop();
  }
});
