import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { AgentStore } from '../../state/agent-store.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { Queues } from '../../reconciler/queue/queues.ts';
import { Scheduler } from '../../reconciler/scheduler/scheduler.ts';
import { setCordoned } from '../../reconciler/api/node-admin.ts';
import { Store } from '../../state/store.ts';
import { newInstanceRecord } from '../../reconciler/controller/deployment-reconciler.ts';
import { instanceId, type InstanceRecord } from '../../state/records/instance.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The scheduler's node cache and batches against a real Redis: node records are re-read when the
 * node-set version moves (a registration, an uncordon), with no invalidate() and a cache that
 * otherwise never refreshes; one schedule job carries every instance a reconcile created.
 */

let url: string;
const open: Redis[] = [];
before(async () => {
  url = (await testRedis()).url;
});
after(() => {
  for (const r of open) r.disconnect();
});

function setup() {
  const keys = createKeys(freshPrefix());
  const redis = connectRedis(url);
  open.push(redis);
  return { keys, redis, store: new Store(redis, keys), queues: new Queues(redis, keys) };
}

async function create(store: Store, name: string, n: number): Promise<InstanceRecord[]> {
  const d = deployment({ name, replicas: n });
  const recs = Array.from({ length: n }, (_, i) => newInstanceRecord(d, { type: 'create', id: instanceId('default', name, 'h1', i), ordinal: i, templateHash: 'h1' }, Date.now()));
  assert.deepEqual(await store.createInstances(recs), recs.map(() => true));
  return recs;
}

async function placement(store: Store, recs: InstanceRecord[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const i of await store.readInstances(recs.map((r) => r.id))) if (i.record.node) out[i.record.node] = (out[i.record.node] ?? 0) + 1;
  return out;
}

async function register(redis: Redis, keys: Keys, name: string): Promise<void> {
  await new AgentStore(redis, keys, name).register((existing) => ({ ...node(name), ...(existing?.cordoned ? { cordoned: true } : {}) }));
}

test('the node cache re-reads node records when the node-set version moves: an uncordoned node and a new one are used at once', async () => {
  const { keys, redis, store, queues } = setup();
  await register(redis, keys, 'n1');
  await register(redis, keys, 'n2');
  assert.ok(await setCordoned(store, 'n1', true));
  // Never refreshed on its own, never invalidated: only the version tells it anything.
  const scheduler = new Scheduler({ redisUrl: url, store, queues, keys, snapshotMs: 3_600_000 });
  try {
    const web = await create(store, 'web', 4);
    assert.deepEqual(await scheduler.scheduleMany(web.map((r) => r.id)), ['bound', 'bound', 'bound', 'bound']);
    assert.deepEqual(await placement(store, web), { n2: 4 }, 'n1 is cordoned');

    // A stale cache would still see n1 cordoned and put everything on n2.
    assert.ok(await setCordoned(store, 'n1', false));
    const api = await create(store, 'api', 4);
    await scheduler.scheduleMany(api.map((r) => r.id));
    assert.deepEqual(await placement(store, api), { n1: 2, n2: 2 }, 'spread over both');

    await register(redis, keys, 'n3');
    const job = await create(store, 'job', 3);
    await scheduler.scheduleMany(job.map((r) => r.id));
    assert.deepEqual(await placement(store, job), { n1: 1, n2: 1, n3: 1 }, 'the new node takes its share');
  } finally {
    await scheduler.stop();
    await queues.close();
  }
});

test('one schedule job carries all the instances a reconcile created; the worker places them as one batch', async () => {
  const { keys, redis, store, queues } = setup();
  await register(redis, keys, 'n1');
  await register(redis, keys, 'n2');
  const recs = await create(store, 'web', 12);
  await queues.enqueueSchedules(recs);
  await queues.enqueueSchedules(recs); // the same batch again (a resync): the same job, not a second one
  const jobs = await queues.schedule.getJobs(['waiting']);
  assert.equal(jobs.length, 1);
  assert.deepEqual(jobs[0]!.data.instanceIds, recs.map((r) => r.id).sort());
  const scheduler = new Scheduler({ redisUrl: url, store, queues, keys });
  const binds: number[] = [];
  const bind = store.placement.bindInstances.bind(store.placement);
  store.placement.bindInstances = async (batch) => {
    binds.push(batch.length);
    return bind(batch);
  };
  scheduler.start();
  try {
    await waitFor(async () => (await redis.scard(keys.pendingInstances)) === 0, { what: 'all 12 bound' });
    assert.deepEqual(binds, [12], 'one bind-instances call');
    assert.deepEqual(await placement(store, recs), { n1: 6, n2: 6 });
    // Each binding told its node's agent queue.
    await waitFor(async () => (await queues.node('n1').getJobCounts('waiting')).waiting === 6, { what: 'node jobs' });
  } finally {
    await scheduler.stop();
    await queues.close();
  }
});
