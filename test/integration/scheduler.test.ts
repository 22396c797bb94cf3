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
