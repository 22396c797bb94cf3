import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { AgentStore } from '../../state/agent-store.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { instanceId, type InstanceRecord } from '../../state/records/instance.ts';
import type { NodeRecord } from '../../state/records/node.ts';
import { Store } from '../../state/store.ts';
import { newInstanceRecord } from '../../reconciler/controller/deployment-reconciler.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * What the scheduler's bookkeeping in Redis promises, against a real Redis: the bind-instances
 * script checks each binding of a batch against its node as the bindings before it left it and
 * answers with the node's allocation; every script that puts an instance on a node or takes it off
 * (bind-instances, adopt-instance, delete-instance) keeps the deployment's per-node counts with the
 * node's set, atomically; counts missing from older data are built once; the node-set version
 * moves with every node record change.
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
  return { keys, redis, store: new Store(redis, keys) };
}

async function addNode(redis: Redis, keys: Keys, record: NodeRecord): Promise<void> {
  await redis.multi().set(keys.node(record.name), JSON.stringify(record)).sadd(keys.nodes, record.name).set(keys.nodeHeartbeat(record.name), String(Date.now())).exec();
}

function records(name: string, n: number, cpuMilli = 100): InstanceRecord[] {
  const d = deployment({ name, template: { ...deployment().template, cpuMilli } });
  return Array.from({ length: n }, (_, i) => newInstanceRecord(d, { type: 'create', id: instanceId('default', name, 'h1', i), ordinal: i, templateHash: 'h1' }, 1));
}

const counts = async (store: Store, name: string) => Object.fromEntries((await store.placement.deploymentNodeCounts([{ namespace: 'default', name }]))[0]!);

test('bind-instances: each binding checked in order against what the ones before left, answered with the node allocation; counts follow', async () => {
  const { keys, redis, store } = setup();
  await addNode(redis, keys, node('n1', { cpuMilli: 250 }));
  await addNode(redis, keys, node('n2', { cpuMilli: 1000, maxInstances: 1 }));
  await addNode(redis, keys, node('n3', { cordoned: true }));
  const recs = records('web', 7);
  await store.createInstances(recs);
  const read = (await store.placement.readPending(recs.map((r) => r.id))).instances;
  const bind = (i: number, to: string) => ({ inst: read.get(recs[i]!.id)!, node: to, next: { ...recs[i]!, node: to } });
  const stale = { ...bind(6, 'n2'), inst: { ...read.get(recs[6]!.id)!, raw: '{"stale":true}' } };
  const results = await store.placement.bindInstances([bind(0, 'n1'), bind(1, 'n1'), bind(2, 'n1'), bind(3, 'n2'), bind(4, 'n2'), bind(5, 'n3'), stale, bind(5, 'ghost')]);
  assert.deepEqual(
    results.map((r) => [r.code, r.alloc.cpuMilli, r.alloc.instances]),
    [
      [1, 100, 1],
      [1, 200, 2],
      [-3, 200, 2], // 250m holds two of 100m: the third sees the two before it
      [1, 100, 1],
      [-5, 100, 1], // maxInstances 1
      [-2, 0, 0], // cordoned
      [0, 100, 1], // the record read is not what is stored
      [-1, 0, 0], // no such node
    ],
  );
  assert.deepEqual(await counts(store, 'web'), { n1: 2, n2: 1 }, 'only what was bound is counted');
  assert.deepEqual((await redis.smembers(keys.pendingInstances)).sort(), [recs[2]!.id, recs[4]!.id, recs[5]!.id, recs[6]!.id].sort());
  assert.deepEqual((await store.nodeInstanceIds('n1')).sort(), [recs[0]!.id, recs[1]!.id].sort());
  assert.deepEqual(await redis.hgetall(keys.nodeAlloc('n2')), { cpuMilli: '100', memoryBytes: String(recs[3]!.memoryBytes), instances: '1' });
  assert.equal((await store.readInstances([recs[2]!.id]))[0]!.record.node, undefined, 'a refused binding changes nothing');
});

test('delete-instance takes an instance off its node and out of the counts once; adopt-instance counts it in', async () => {
  const { keys, redis, store } = setup();
  await addNode(redis, keys, node('n1'));
  const recs = records('web', 3);
  await store.createInstances(recs);
  const read = (await store.placement.readPending(recs.map((r) => r.id))).instances;
  await store.placement.bindInstances(recs.slice(0, 2).map((r) => ({ inst: read.get(r.id)!, node: 'n1', next: { ...r, node: 'n1' } })));
  assert.deepEqual(await counts(store, 'web'), { n1: 2 });

  const [bound, , pending] = await store.readInstances(recs.map((r) => r.id));
  assert.equal(await store.deleteInstance(pending!), true, 'an unbound one: counts untouched');
  assert.deepEqual(await counts(store, 'web'), { n1: 2 });
  assert.equal(await store.deleteInstance(bound!), true);
  assert.deepEqual(await counts(store, 'web'), { n1: 1 });
  assert.equal(await store.deleteInstance({ ...bound!, raw: '' }), true, 'repeated (no check): nothing more given back');
  assert.deepEqual(await counts(store, 'web'), { n1: 1 });
  const [last] = await store.readInstances([recs[1]!.id]);
  assert.equal(await store.deleteInstance(last!), true);
  assert.equal(await redis.exists(keys.deploymentNodes('default', 'web')), 0, 'the last one takes the hash with it');

  assert.deepEqual(await store.recovery.adoptInstances([{ ...recs[0]!, node: 'n1' }]), [true]);
  assert.deepEqual(await counts(store, 'web'), { n1: 1 });
  assert.deepEqual(await store.recovery.adoptInstances([{ ...recs[0]!, node: 'n1' }]), [false], 'adopted once');
  assert.deepEqual(await counts(store, 'web'), { n1: 1 });
});

test('counts missing from older data are built from the records once, exactly, and a set that moves is read again', async () => {
  const { keys, redis, store } = setup();
  await addNode(redis, keys, node('n1'));
  await addNode(redis, keys, node('n2'));
  const web = records('web', 3);
  const api = records('api', 2);
  await store.createInstances([...web, ...api]);
  const read = (await store.placement.readPending([...web, ...api].map((r) => r.id))).instances;
  const place = (r: InstanceRecord, to: string) => ({ inst: read.get(r.id)!, node: to, next: { ...r, node: to } });
  await store.placement.bindInstances([place(web[0]!, 'n1'), place(web[1]!, 'n2'), place(web[2]!, 'n2'), place(api[0]!, 'n1')]);
  // As data from before the counts: none kept, and never built.
  await redis.del(keys.deploymentNodes('default', 'web'), keys.deploymentNodes('default', 'api'));
  assert.equal(await store.placement.ensureDeploymentNodes(), 2);
  assert.deepEqual(await counts(store, 'web'), { n1: 1, n2: 2 });
  assert.deepEqual(await counts(store, 'api'), { n1: 1 });
  assert.equal(await store.placement.ensureDeploymentNodes(), 0, 'built once');
  assert.equal(await redis.get(keys.deploymentNodesBuilt), '1');

  // The script refuses a member list that is not the set any more (an instance created meanwhile).
  const k = [keys.deploymentInstances('default', 'web'), keys.deploymentNodes('default', 'web'), keys.instance(web[0]!.id)];
  assert.equal(await store.scripts.rebuildDeploymentNodes(k, [web[0]!.id]), 0);
  assert.deepEqual(await counts(store, 'web'), { n1: 1, n2: 2 }, 'nothing written');
});

test('the node-set version moves after a registration and a cordon, not on a no-op; the node table reads what readNodes reads', async () => {
  const { keys, redis, store } = setup();
  const version = async () => (await store.placement.readPending([])).nodesVersion;
  const v0 = await version();
  const agent = new AgentStore(redis, keys, 'n1');
  await agent.register((existing) => ({ ...node('n1'), ...(existing?.cordoned ? { cordoned: true } : {}) }));
  const v1 = await version();
  assert.notEqual(v1, v0);
  await store.updateNodeRecord('n1', (r) => ({ ...r, cordoned: true }));
  const v2 = await version();
  assert.notEqual(v2, v1);
  await store.updateNodeRecord('n1', (r) => ({ ...r, cordoned: true }));
  assert.equal(await version(), v2, 'nothing changed: no bump');
  await addNode(redis, keys, node('n0', { labels: { zone: 'a' } }));
  await redis.hset(keys.nodeAlloc('n0'), 'cpuMilli', 300, 'memoryBytes', 5, 'instances', 2);
  assert.deepEqual(await store.placement.readNodeTable(), await store.readNodes());
});
