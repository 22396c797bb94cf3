import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { Queues } from '../../reconciler/queue/queues.ts';
import { Scheduler } from '../../reconciler/scheduler/scheduler.ts';
import { Store } from '../../state/store.ts';
import { newInstanceRecord } from '../../reconciler/controller/deployment-reconciler.ts';
import { instanceId } from '../../state/records/instance.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let url: string;
const open: Redis[] = [];
before(async () => {
  url = (await testRedis()).url;
});
after(() => {
  for (const r of open) r.disconnect();
});

function setup(keys: Keys) {
  const redis = connectRedis(url);
  open.push(redis);
  const store = new Store(redis, keys);
  const queues = new Queues(redis, keys);
  return { redis, store, queues };
}

async function registerNode(redis: Redis, keys: Keys, name: string, cpuMilli: number) {
  await redis.multi().set(keys.node(name), JSON.stringify(node(name, { cpuMilli }))).sadd(keys.nodes, name).set(keys.nodeHeartbeat(name), String(Date.now())).exec();
}

test('two schedulers racing with stale snapshots never over-commit a node', async () => {
  const keys = createKeys(freshPrefix());
  const a = setup(keys);
  const b = setup(keys);
  await registerNode(a.redis, keys, 'n1', 1000);
  await registerNode(a.redis, keys, 'n2', 1000);
  // Snapshots that never refresh on their own: both schedulers believe the nodes are empty, so
  // only the bind script stands between them and over-commitment.
  const s1 = new Scheduler({ redisUrl: url, store: a.store, queues: a.queues, keys, snapshotMs: 3_600_000 });
  const s2 = new Scheduler({ redisUrl: url, store: b.store, queues: b.queues, keys, snapshotMs: 3_600_000 });
  const d = deployment({ replicas: 30 });
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const rec = newInstanceRecord(d, { type: 'create', id: instanceId('default', 'web', 'h1', i), ordinal: i, templateHash: 'h1' }, Date.now());
    assert.equal(await a.store.createInstance(rec), true);
    ids.push(rec.id);
  }
  const outcomes = await Promise.all(ids.flatMap((id) => [s1.scheduleOne(id), s2.scheduleOne(id)]));
  const nodes = await a.store.readNodes();
  for (const n of nodes) {
    assert.ok(n.alloc.cpuMilli <= n.record.cpuMilli, `${n.record.name} over-committed: ${n.alloc.cpuMilli}m > ${n.record.cpuMilli}m`);
    assert.equal(n.alloc.cpuMilli, 1000);
    assert.equal(n.alloc.instances, 10);
    assert.equal(await a.redis.scard(keys.nodeInstances(n.record.name)), 10);
  }
  const all = await a.store.readAllInstances();
  assert.equal(all.filter((i) => i.record.node).length, 20);
  assert.equal(await a.redis.scard(keys.pendingInstances), 10);
  assert.ok(outcomes.includes('bound') && outcomes.includes('pending'));
  const stuck = all.find((i) => !i.record.node)!;
  assert.equal(stuck.record.pendingReason, '0/2 nodes available: 2 insufficient cpu');
  await a.queues.close();
  await b.queues.close();
});

test('three schedulers racing with stale caches, binding whole batches, never over-commit a node', async () => {
  const keys = createKeys(freshPrefix());
  const [a, b, c] = [setup(keys), setup(keys), setup(keys)];
  // Room for 43 of 100m/1KiB: cpu bounds four nodes, maxInstances one, memory one.
  const nodes = [node('n1', { cpuMilli: 1000 }), node('n2', { cpuMilli: 700 }), node('n3', { cpuMilli: 1300, maxInstances: 8 }), node('n4', { cpuMilli: 500 }), node('n5', { memoryBytes: 3 * 1024 }), node('n6', { cpuMilli: 1000 })];
  for (const n of nodes) await a.redis.multi().set(keys.node(n.name), JSON.stringify(n)).sadd(keys.nodes, n.name).set(keys.nodeHeartbeat(n.name), String(Date.now())).exec();
  const ids: string[] = [];
  for (const name of ['web', 'api', 'job']) {
    const d = deployment({ name, replicas: 20 });
    for (let i = 0; i < 20; i++) {
      const rec = newInstanceRecord(d, { type: 'create', id: instanceId('default', name, 'h1', i), ordinal: i, templateHash: 'h1' }, Date.now());
      assert.equal(await a.store.createInstance(rec), true);
      ids.push(rec.id);
    }
  }
  // Caches that never refresh on their own, filled while the nodes are empty (by an instance that
  // fits nowhere), batches of several sizes: each scheduler believes it has room for 43.
  const schedulers = [a, b, c].map((x, i) => new Scheduler({ redisUrl: url, store: x.store, queues: x.queues, keys, snapshotMs: 3_600_000, batchSize: [7, 32, 256][i] }));
  const nowhere = newInstanceRecord(deployment({ name: 'nowhere', template: { ...deployment().template, nodeSelector: { zone: 'none' } } }), { type: 'create', id: instanceId('default', 'nowhere', 'h1', 0), ordinal: 0, templateHash: 'h1' }, Date.now());
  await a.store.createInstance(nowhere);
  for (const s of schedulers) assert.equal(await s.scheduleOne(nowhere.id), 'pending');
  assert.equal(await a.store.deleteInstance((await a.store.readInstances([nowhere.id]))[0]!), true);
  const refused: number[] = [];
  for (const x of [a, b, c]) {
    const bind = x.store.placement.bindInstances.bind(x.store.placement);
    x.store.placement.bindInstances = async (batch) => {
      const res = await bind(batch);
      refused.push(...res.filter((r) => r.code !== 1).map((r) => r.code));
      return res;
    };
  }
  // Two of them on different deployments (so that their stale bindings must meet full nodes), the
  // third on the third deployment and then on all (so that it also loses records bound by others).
  const orders = [ids.slice(0, 20), ids.slice(20, 40).reverse(), [...ids.slice(40), ...ids]];
  const outcomes = (await Promise.all(schedulers.map((s, i) => Promise.all([s.scheduleMany(orders[i]!.slice(0, 10)), s.scheduleMany(orders[i]!.slice(10))])))).flat(2);
  assert.ok(outcomes.every((o) => o === 'bound' || o === 'pending'), outcomes.join());
  assert.ok(refused.some((code) => code < 0) && refused.includes(0), `the script refused bindings of stale batches (full nodes, records bound by another): ${refused.join()}`);
  // What lost every round of its batch is placed by a fresh look, where room is left.
  const fresh = new Scheduler({ redisUrl: url, store: a.store, queues: a.queues, keys });
  await fresh.scheduleMany(ids);

  const all = await a.store.readAllInstances();
  const bound = all.filter((i) => i.record.node);
  for (const n of await a.store.readNodes()) {
    const mine = bound.filter((i) => i.record.node === n.record.name);
    assert.ok(n.alloc.cpuMilli <= n.record.cpuMilli && n.alloc.memoryBytes <= n.record.memoryBytes, `${n.record.name} over-committed: ${JSON.stringify(n.alloc)}`);
    assert.ok(n.alloc.instances <= (n.record.maxInstances ?? 110), `${n.record.name}: ${n.alloc.instances} instances`);
    assert.deepEqual(n.alloc, { cpuMilli: mine.length * 100, memoryBytes: mine.length * 1024, instances: mine.length }, `${n.record.name}: allocation is what is bound`);
    assert.equal(await a.redis.scard(keys.nodeInstances(n.record.name)), mine.length);
  }
  assert.equal(bound.length, 43, 'every node filled');
  for (const name of ['web', 'api', 'job']) {
    const perNode: Record<string, number> = {};
    for (const i of bound.filter((x) => x.record.deployment === name)) perNode[i.record.node!] = (perNode[i.record.node!] ?? 0) + 1;
    const [counts] = await a.store.placement.deploymentNodeCounts([{ namespace: 'default', name }]);
    assert.deepEqual(Object.fromEntries(counts!), perNode, `${name}: per-node counts are what is bound`);
  }
  assert.equal(await a.redis.scard(keys.pendingInstances), 17);
  for (const i of all.filter((x) => !x.record.node)) assert.equal(i.record.pendingReason, '0/6 nodes available: 4 insufficient cpu, 1 insufficient memory, 1 too many instances');
  await Promise.all([a, b, c].map((x) => x.queues.close()));
});

test('a pending instance is placed by the worker once a node joins, and spread across nodes', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store, queues } = setup(keys);
  const scheduler = new Scheduler({ redisUrl: url, store, queues, keys });
  scheduler.start();
  try {
    const d = deployment({ replicas: 4 });
    for (let i = 0; i < 4; i++) {
      const rec = newInstanceRecord(d, { type: 'create', id: instanceId('default', 'web', 'h1', i), ordinal: i, templateHash: 'h1' }, Date.now());
      await store.createInstance(rec);
      await queues.enqueueSchedule(rec.id, rec.uid);
    }
    await waitFor(async () => (await store.readAllInstances()).every((i) => i.record.pendingReason === '0/0 nodes available: no nodes registered'), { what: 'pending reasons' });
    await registerNode(redis, keys, 'n1', 4000);
    await registerNode(redis, keys, 'n2', 4000);
    scheduler.invalidate();
    await scheduler.retryPending();
    const placed = await waitFor(async () => {
      const all = await store.readAllInstances();
      return all.every((i) => i.record.node) ? all : undefined;
    }, { what: 'all instances bound' });
    const perNode = new Map<string, number>();
    for (const i of placed) perNode.set(i.record.node!, (perNode.get(i.record.node!) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(perNode), { n1: 2, n2: 2 });
    // Each binding told the node's agent queue to look at the instance.
    const counts = await queues.node('n1').getJobCounts('waiting');
    assert.equal(counts.waiting, 2);
  } finally {
    await scheduler.stop();
    await queues.close();
  }
});
