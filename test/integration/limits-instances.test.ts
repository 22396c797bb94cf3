import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { AgentStore } from '../../state/agent-store.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { instanceId } from '../../state/records/instance.ts';
import { DEFAULT_MAX_INSTANCES } from '../../state/records/node.ts';
import { Store } from '../../state/store.ts';
import { Queues } from '../../reconciler/queue/queues.ts';
import { SCHEDULE_BATCH } from '../../state/queues.ts';
import { Scheduler } from '../../reconciler/scheduler/scheduler.ts';
import { MAX_CHANGES_PER_PASS, NEXT_BATCH_MS, newInstanceRecord, reconcileDeployment } from '../../reconciler/controller/deployment-reconciler.ts';
import type { ReconcileOutcome } from '../../reconciler/controller/reconcile-outcome.ts';
import { MAIN_OWNER } from '../../state/records/deployment.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * Instance limits against a real Redis (issue 11, section 4): the per-node cap holds inside the
 * bind script, whoever races for the node, and a huge scale-up goes in bounded batches.
 */

let url: string;
const open: Redis[] = [];
const queues: Queues[] = [];
before(async () => {
  url = (await testRedis()).url;
});
after(async () => {
  await Promise.all(queues.map((q) => q.close()));
  for (const r of open) r.disconnect();
});

function connect(keys: Keys): { redis: Redis; store: Store; queues: Queues } {
  const redis = connectRedis(url, 'limits-instances-test');
  open.push(redis);
  const q = new Queues(redis, keys);
  queues.push(q);
  return { redis, store: new Store(redis, keys), queues: q };
}

async function pendingInstances(store: Store, n: number): Promise<string[]> {
  const d = deployment({ replicas: n, template: { ...deployment().template, cpuMilli: 1, memoryBytes: 1 } });
  const records = Array.from({ length: n }, (_, i) => newInstanceRecord(d, { type: 'create', id: instanceId('default', 'web', 'h1', i), ordinal: i, templateHash: 'h1' }, Date.now()));
  assert.ok((await store.createInstances(records)).every(Boolean));
  return records.map((r) => r.id);
}

test('the bind script caps a node at its maxInstances (registered by its agent), and at 110 without one', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store } = connect(keys);
  await new AgentStore(redis, keys, 'small').register(() => node('small', { maxInstances: 3 }));
  await new AgentStore(redis, keys, 'plain').register(() => node('plain'));
  const ids = await pendingInstances(store, DEFAULT_MAX_INSTANCES + 4);
  const bind = async (id: string, to: string) => {
    const [inst] = await store.readInstances([id]);
    return store.bindInstance(inst!, to, { ...inst!.record, node: to });
  };
  assert.deepEqual([await bind(ids[0]!, 'small'), await bind(ids[1]!, 'small'), await bind(ids[2]!, 'small'), await bind(ids[3]!, 'small')], [1, 1, 1, -5]);
  const results: number[] = [];
  for (const id of ids.slice(3)) results.push(await bind(id, 'plain'));
  assert.deepEqual(results.filter((r) => r === 1).length, DEFAULT_MAX_INSTANCES);
  assert.deepEqual(results.slice(-1), [-5]);
  const nodes = await store.readNodes();
  assert.deepEqual(nodes.map((n) => [n.record.name, n.alloc.instances]).sort(), [['plain', DEFAULT_MAX_INSTANCES], ['small', 3]]);
});

test('schedulers racing with stale snapshots never put more than maxInstances on a node; the rest wait with a reason', async () => {
  const keys = createKeys(freshPrefix());
  const a = connect(keys);
  const b = connect(keys);
  for (const name of ['n1', 'n2']) await new AgentStore(a.redis, keys, name).register(() => node(name, { maxInstances: 4 }));
  // Snapshots that never refresh: both believe the nodes are empty, so only the script holds the cap.
  const s1 = new Scheduler({ redisUrl: url, store: a.store, queues: a.queues, keys, snapshotMs: 3_600_000 });
  const s2 = new Scheduler({ redisUrl: url, store: b.store, queues: b.queues, keys, snapshotMs: 3_600_000 });
  const ids = await pendingInstances(a.store, 12);
  await Promise.all(ids.flatMap((id) => [s1.scheduleOne(id), s2.scheduleOne(id)]));
  for (const n of await a.store.readNodes()) {
    assert.equal(n.alloc.instances, 4, n.record.name);
    assert.equal(await a.redis.scard(keys.nodeInstances(n.record.name)), 4);
  }
  const waiting = (await a.store.readAllInstances()).filter((i) => !i.record.node);
  assert.equal(waiting.length, 4);
  assert.ok(waiting.every((i) => i.record.pendingReason === '0/2 nodes available: 2 too many instances'), waiting.map((i) => i.record.pendingReason).join(', '));
});

test('a scale-up to 10,000 replicas creates at most 500 per pass, asks for the next pass at once, and converges', async () => {
  const keys = createKeys(freshPrefix());
  const { store, queues: q } = connect(keys);
  const d = deployment({ replicas: 10_000 });
  const empty = { namespaces: [], deployments: [], services: [] };
  await store.writeOwnedState(MAIN_OWNER, empty, { namespaces: [], deployments: [d], services: [] });
  const deps = { store, queues: q };

  const first = await reconcileDeployment(deps, 'default/web');
  assert.equal(MAX_CHANGES_PER_PASS, 500);
  assert.deepEqual(first, { requeueAfterMs: NEXT_BATCH_MS });
  assert.equal((await store.readDeploymentInstances('default', 'web')).length, 500);
  const jobs = await q.schedule.getJobs(['waiting']);
  assert.equal(jobs.flatMap((j) => j.data.instanceIds ?? []).length, 500, 'schedule jobs for the batch only');
  assert.equal(jobs.length, Math.ceil(500 / SCHEDULE_BATCH), 'a batch of instances per job');

  let passes = 1;
  let outcome: ReconcileOutcome = first;
  while (outcome && outcome.requeueAfterMs === NEXT_BATCH_MS && passes < 40) {
    outcome = await reconcileDeployment(deps, 'default/web');
    passes++;
    const count = (await store.readDeploymentInstances('default', 'web')).length;
    assert.ok(count <= passes * 500, `pass ${passes}: ${count} instances`);
  }
  assert.equal(passes, 20, 'one pass per 500, the last one asks for no next batch');
  assert.notDeepEqual(outcome, { requeueAfterMs: NEXT_BATCH_MS });
  const instances = await store.readDeploymentInstances('default', 'web');
  assert.equal(instances.length, 10_000);
  assert.deepEqual(new Set(instances.map((i) => i.record.ordinal)).size, 10_000);
  const status = await store.readDeploymentStatus('default', 'web');
  assert.equal(status?.replicas, 10_000);
  assert.equal(status?.pendingReplicas, 10_000);

  // Scaling down deletes in batches too.
  await store.writeOwnedState(MAIN_OWNER, { ...empty, deployments: [d] }, { namespaces: [], deployments: [{ ...d, replicas: 9_000, generation: 2 }], services: [] });
  assert.deepEqual(await reconcileDeployment(deps, 'default/web'), { requeueAfterMs: NEXT_BATCH_MS });
  assert.equal((await store.readDeploymentInstances('default', 'web')).length, 9_500);
  assert.notDeepEqual(await reconcileDeployment(deps, 'default/web'), { requeueAfterMs: NEXT_BATCH_MS });
  assert.equal((await store.readDeploymentInstances('default', 'web')).length, 9_000);
});
