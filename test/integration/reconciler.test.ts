import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { QUEUE_SCHEDULE } from '../../state/queues.ts';
import { startReconciler, type ReconcilerHandle } from '../../reconciler/reconciler.ts';
import { reconcileDeployment } from '../../reconciler/controller/deployment-reconciler.ts';
import { Queues } from '../../reconciler/queue/queues.ts';
import { Store } from '../../state/store.ts';
import { EventLog } from '../../state/events.ts';
import type { Redis } from 'ioredis';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/** The reconciler in process, against real Redis and a real repository, with no agents. */

const deploymentYaml = (name: string, replicas: number, extra = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels: { app: ${name} }
    spec:
      containers:
        - name: main
          command: ["sleep", "1000"]${extra}
`;

let url: string;
let repo: TestRepo;
let dataDir: string;
let rec: ReconcilerHandle;
const prefix = freshPrefix();
const keys = createKeys(prefix);
// The test's own connection, to inspect and tamper with what the reconciler stored.
let direct: Redis;
const redis = () => direct;

before(async () => {
  url = (await testRedis()).url;
  direct = connectRedis(url, 'reconciler-test');
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-rec-'));
  repo = await createRepo();
  await repo.commitFiles({ 'deploy/a.yaml': deploymentYaml('a', 2), 'deploy/b.yaml': deploymentYaml('b', 1), 'other/ignored.yaml': 'not: [valid' }, 'two deployments');
  rec = await startReconciler({ redisUrl: url, prefix, source: { repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir }, apiPort: 0, resyncMs: 60_000, log: process.env.GANTRY_TEST_VERBOSE ? console.log : undefined });
});

after(async () => {
  await rec?.stop();
  direct?.disconnect();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a commit becomes desired state with its commit, and pending instances with schedule jobs', async () => {
  await rec.queue.idle();
  const deployments = await rec.store.readDeployments();
  assert.deepEqual(deployments.map((d) => [d.namespace, d.name, d.replicas, d.file]), [['default', 'a', 2, 'deploy/a.yaml'], ['default', 'b', 1, 'deploy/b.yaml']]);
  const head = (await (await apiFetch(`${rec.url}/api/v1/status`)).json()) as { source: { lastAppliedCommit: string } };
  assert.ok(deployments.every((d) => d.commit === head.source.lastAppliedCommit));
  const instances = await waitFor(async () => {
    const all = await rec.store.readAllInstances();
    return all.length === 3 ? all : undefined;
  }, { what: '3 instances' });
  assert.deepEqual(instances.map((i) => i.record.id), ['default.a-' + deployments[0]!.templateHash + '-0', 'default.a-' + deployments[0]!.templateHash + '-1', 'default.b-' + deployments[1]!.templateHash + '-0']);
  // No nodes: every instance is pending with a reason, visible in status.
  await waitFor(async () => (await rec.store.readAllInstances()).every((i) => i.record.pendingReason === '0/0 nodes available: no nodes registered'), { what: 'pending reasons' });
  const status = await waitFor(() => rec.store.readDeploymentStatus('default', 'a'), { what: 'status of a' });
  assert.equal(status.observedCommit, head.source.lastAppliedCommit);
  assert.equal(status.observedGeneration, 1);
});

test('reconciling twice in a row changes nothing and enqueues nothing new', async () => {
  await rec.queue.idle();
  const conn = connectRedis(url);
  const scheduleQueue = new Queue(QUEUE_SCHEDULE, { connection: conn, prefix: keys.bullPrefix });
  const jobsBefore = (await scheduleQueue.getJobs(['waiting', 'active', 'completed', 'delayed', 'failed'])).map((j) => j.id).sort();
  const before = (await rec.store.readAllInstances()).map((i) => i.raw);
  const queues = new Queues(redis(), keys);
  await reconcileDeployment({ store: rec.store, queues }, 'default/a');
  await reconcileDeployment({ store: rec.store, queues }, 'default/a');
  const jobsAfter = (await scheduleQueue.getJobs(['waiting', 'active', 'completed', 'delayed', 'failed'])).map((j) => j.id).sort();
  assert.deepEqual(jobsAfter, jobsBefore);
  assert.deepEqual((await rec.store.readAllInstances()).map((i) => i.raw), before);
  await queues.close();
  await scheduleQueue.close();
  conn.disconnect();
});

test('POST /api/v1/sync applies a new commit at once; an unchanged head reports unchanged', async () => {
  const sha = await repo.commitFiles({ 'deploy/a.yaml': deploymentYaml('a', 3) }, 'scale a');
  const res = (await (await apiFetch(`${rec.url}/api/v1/sync`, { method: 'POST' })).json()) as { outcome: string; commit: string };
  assert.equal(res.commit, sha);
  assert.ok(res.outcome === 'applied' || res.outcome === 'unchanged', res.outcome); // the watcher may have been first
  const again = (await (await apiFetch(`${rec.url}/api/v1/sync`, { method: 'POST' })).json()) as { outcome: string };
  assert.equal(again.outcome, 'unchanged');
  await waitFor(async () => (await rec.store.readDeploymentInstances('default', 'a')).length === 3, { what: 'a scaled to 3' });
  const a = await rec.store.readDeployment('default', 'a');
  assert.equal(a!.generation, 2);
});

test('a rejected commit changes nothing; duplicates name both files; the next good commit applies', async () => {
  const before = await rec.store.readDeployments();
  const bad = await repo.commitFiles({ 'deploy/c.yaml': deploymentYaml('a', 1) }, 'duplicate a');
  const res = (await (await apiFetch(`${rec.url}/api/v1/sync`, { method: 'POST' })).json()) as { outcome: string; errors: string[] };
  const status = await waitFor(async () => {
    const s = await rec.store.readSourceStatus();
    return s?.rejectedCommit === bad ? s : undefined;
  }, { what: 'rejection' });
  assert.ok(res.outcome === 'rejected' || res.outcome === 'unchanged');
  assert.equal(status.errors!.length, 1);
  assert.match(status.errors![0]!, /^deploy\/c\.yaml:1:1 Deployment default\/a: duplicate Deployment default\/a, also defined at deploy\/a\.yaml:1:1/);
  assert.deepEqual(await rec.store.readDeployments(), before);
  const events = await new EventLog(redis(), keys).read({ object: 'source' });
  assert.ok(events.some((e) => e.reason === 'CommitRejected' && e.message.includes('deploy/c.yaml')));

  const good = await repo.commitFiles({ 'deploy/c.yaml': null, 'deploy/b.yaml': null }, 'fix, and remove b');
  await waitFor(async () => (await rec.store.readSourceStatus())?.lastAppliedCommit === good, { what: 'good commit applied' });
  const s = await rec.store.readSourceStatus();
  assert.equal(s!.rejectedCommit, undefined);
  await waitFor(async () => (await rec.store.readDeploymentInstances('default', 'b')).length === 0, { what: 'b pruned' });
  assert.deepEqual((await rec.store.readDeployments()).map((d) => d.name), ['a']);
});

test('the resync re-creates an instance whose record was deleted out of band', async () => {
  const [victim] = await rec.store.readDeploymentInstances('default', 'a');
  await rec.store.deleteInstance(victim!);
  rec.queue.add('default/a');
  const back = await waitFor(async () => (await rec.store.readDeploymentInstances('default', 'a')).find((i) => i.record.id === victim!.record.id), { what: 'instance recreated' });
  assert.notEqual(back.record.uid, victim!.record.uid);
});

test('a replica that fits nowhere stays pending with a reason, and is placed as soon as room is freed', async () => {
  const withCpu = (name: string, replicas: number) => deploymentYaml(name, replicas, '\n          resources: { cpu: 500m }');
  const n = 'n1';
  await redis()
    .multi()
    .set(keys.node(n), JSON.stringify({ name: n, cpuMilli: 1000, memoryBytes: 1024 ** 3, labels: {}, runtimes: ['process'], address: '127.0.0.1', registeredAt: Date.now() }))
    .sadd(keys.nodes, n)
    .set(keys.nodeHeartbeat(n), String(Date.now() + 3_600_000))
    .publish(keys.changesChannel, `node/${n}`)
    .exec();
  await repo.commitFiles({ 'deploy/big.yaml': withCpu('big', 2), 'deploy/late.yaml': withCpu('late', 1) }, 'big and late');
  // big's two replicas fill the node (whichever is placed first); one replica is left pending.
  const stuck = await waitFor(async () => {
    const all = [...(await rec.store.readDeploymentInstances('default', 'big')), ...(await rec.store.readDeploymentInstances('default', 'late'))];
    const pending = all.filter((i) => !i.record.node);
    return all.length === 3 && pending.length === 1 && pending[0]!.record.pendingReason ? pending[0] : undefined;
  }, { what: 'one pending replica' });
  assert.equal(stuck.record.pendingReason, '0/1 nodes available: 1 insufficient cpu');
  const status = await waitFor(async () => {
    const s = await rec.store.readDeploymentStatus('default', stuck.record.deployment);
    return s?.conditions.some((c) => c.reason === 'InstancesPending') ? s : undefined;
  }, { what: 'InstancesPending condition' });
  assert.match(status.conditions.find((c) => c.type === 'Progressing')!.message, /insufficient cpu/);

  // Free room by scaling the other deployment down: no node event, no resync (60 s): the freed
  // capacity alone must get the pending replica placed.
  const other = stuck.record.deployment === 'big' ? 'late' : 'big';
  const files: Record<string, string | null> = other === 'big' ? { 'deploy/big.yaml': withCpu('big', 0) } : { 'deploy/late.yaml': null };
  await repo.commitFiles(files, 'free room');
  await waitFor(async () => (await rec.store.readInstances([stuck.record.id]))[0]?.record.node === n, { what: 'pending replica placed' });
  const alloc = await redis().hgetall(keys.nodeAlloc(n));
  assert.ok(Number(alloc.cpuMilli) <= 1000);
});
