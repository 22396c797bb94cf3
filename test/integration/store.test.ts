import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { AgentStore } from '../../state/agent-store.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import type { InstanceStatus } from '../../state/records/instance.ts';
import type { PreviewRecord } from '../../state/records/preview.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { EndpointsRecord, ServiceRecord } from '../../state/records/service.ts';
import type { SourceStatus } from '../../state/records/status.ts';
import { Store } from '../../state/store.ts';
import { newInstanceRecord } from '../../reconciler/controller/deployment-reconciler.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The store modules against a real Redis: what they write is what they read back, atomic updates
 * hold against a racing writer, and a corrupt value reads as absent wherever it is read.
 */

let redis: Redis;
before(async () => {
  redis = connectRedis((await testRedis()).url, 'store-test');
});
after(() => redis.disconnect());

function fresh(): { keys: Keys; store: Store } {
  const keys = createKeys(freshPrefix());
  return { keys, store: new Store(redis, keys) };
}

const service = (name: string, owner?: string): ServiceRecord => ({ namespace: 'default', name, commit: 'c1', file: `${name}.yaml`, line: 1, selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }], ...(owner ? { owner } : {}) });

test('writeOwnedState replaces one owner\'s records only, with the source status in the same MULTI', async () => {
  const { keys, store } = fresh();
  const mainA = deployment({ name: 'a' });
  const mainB = deployment({ name: 'b' });
  const preview = deployment({ namespace: 'pr-1-default', name: 'a', owner: 'pr-1' });
  await store.writeOwnedState('main', { namespaces: [], deployments: [] }, { namespaces: [{ name: 'shop', commit: 'c1', labels: {}, annotations: {} }], deployments: [mainA, mainB], services: [service('web')] }, { sourceStatus: { source: 'repo', branch: 'main', lastAppliedCommit: 'c1' } });
  await store.writeOwnedState('pr-1', { namespaces: [], deployments: [] }, { namespaces: [], deployments: [preview] });
  const before = { namespaces: await store.readNamespaces(), deployments: await store.readDeployments(), services: await store.services.readServices() };
  assert.deepEqual(before.deployments.map((d) => `${d.namespace}/${d.name}`).sort(), ['default/a', 'default/b', 'pr-1-default/a']);

  // The next commit drops b, the namespace and the service: the preview's record stays.
  const status: SourceStatus = { source: 'repo', branch: 'main', lastAppliedCommit: 'c2' };
  await store.writeOwnedState('main', before, { namespaces: [], deployments: [{ ...mainA, commit: 'c2' }], services: [] }, { sourceStatus: status });
  assert.deepEqual((await store.readDeployments()).map((d) => `${d.namespace}/${d.name}:${d.commit}`).sort(), ['default/a:c2', 'pr-1-default/a:c1']);
  assert.deepEqual(await store.readNamespaces(), []);
  assert.deepEqual(await store.services.readServices(), []);
  assert.deepEqual(await store.readSourceStatus(), status);
  assert.deepEqual(await store.deploymentKeys(), ['default/a', 'pr-1-default/a']);
  assert.equal(await redis.exists(keys.deployment('default', 'b')), 0);
});

test('a preview record is written and removed with its desired state', async () => {
  const { store } = fresh();
  const d = deployment({ namespace: 'pr-7-default', owner: 'pr-7' });
  const rec: PreviewRecord = { number: 7, provider: 'github', repo: 'acme/shop', headBranch: 'f', headRef: 'refs/pull/7/head', commit: 'c'.repeat(40), state: 'deploying', message: 'm', plan: { commit: 'c', valid: true, errors: [], summary: '+1 ~0 -0', added: [], changed: [], removed: [] }, namespaces: ['pr-7-default'], deployments: ['pr-7-default/web'], createdAt: 1, updatedAt: 1 };
  await store.writeOwnedState('pr-7', { namespaces: [], deployments: [] }, { namespaces: [], deployments: [d] }, { preview: rec });
  assert.deepEqual(await store.previews.numbers(), [7]);
  assert.deepEqual(await store.previews.read(7), rec);
  await store.previews.write({ ...rec, state: 'ready' });
  assert.equal((await store.previews.read(7))?.state, 'ready');
  await store.writeOwnedState('pr-7', { namespaces: [], deployments: [d] }, { namespaces: [], deployments: [] }, { removePreview: 7 });
  assert.deepEqual(await store.previews.numbers(), []);
  assert.equal(await store.previews.read(7), undefined);
  assert.deepEqual(await store.readDeployments(), []);
});

test('PR comment ids and webhook deliveries', async () => {
  const { store } = fresh();
  assert.equal(await store.previews.readCommentId(3), undefined);
  await store.previews.writeCommentId(3, '42');
  assert.equal(await store.previews.readCommentId(3), '42');
  assert.equal(await store.previews.takeCommentId(3), '42');
  assert.equal(await store.previews.takeCommentId(3), undefined);
  assert.equal(await store.previews.claimDelivery('github', 'abc', 60), true);
  assert.equal(await store.previews.claimDelivery('github', 'abc', 60), false);
  assert.equal(await store.previews.claimDelivery('gitlab', 'abc', 60), true, 'per provider');
  await store.previews.forgetDelivery('github', 'abc');
  assert.equal(await store.previews.claimDelivery('github', 'abc', 60), true);
});

test('a corrupt value reads as absent in every reader, and never throws', async () => {
  const { keys, store } = fresh();
  const d = deployment();
  const rec = newInstanceRecord(d, { type: 'create', id: 'default.web-h1-0', ordinal: 0, templateHash: 'h1' }, 1);
  await store.createInstance(rec);
  await redis
    .multi()
    .set(keys.deployment('default', 'web'), '{"namespace":')
    .sadd(keys.deployments, 'default/web')
    .set(keys.instanceStatus(rec.id), 'not json')
    .set(keys.deploymentStatus('default', 'web'), '[1,2')
    .set(keys.rollout('default', 'web'), 'null')
    .hset(keys.nodeLifecycle, 'n1', '{"state":"Ready","since":1,"lastHeartbeat":1}', 'n2', '{{')
    .hset(keys.namespaces, 'bad', '"just a string"')
    .set(keys.node('n1'), 'garbage')
    .sadd(keys.nodes, 'n1')
    .set(keys.preview(5), '{')
    .exec();
  assert.equal(await store.readDeployment('default', 'web'), undefined);
  assert.deepEqual(await store.readDeployments(), []);
  assert.deepEqual(await store.readNamespaces(), []);
  const [inst] = await store.readInstances([rec.id]);
  assert.equal(inst?.status, undefined);
  assert.equal(await store.readInstanceStatus(rec.id), undefined);
  assert.equal(await store.readDeploymentStatus('default', 'web'), undefined);
  assert.equal((await store.readRollout('default', 'web')).state, undefined);
  assert.deepEqual(Object.keys(await store.readNodeLifecycles()), ['n1']);
  assert.deepEqual(await store.readNodes(), []);
  assert.equal(await store.previews.read(5), undefined);
  assert.equal(await new AgentStore(redis, keys, 'n1').readInstance('default.web-h1-9'), undefined);
});

test('rollout state is replaced only if unchanged since read', async () => {
  const { store } = fresh();
  const state = (target: number) => ({ revisions: [], target, phase: 'Progressing', reason: 'r', message: 'm', startedAt: 0, lastProgressAt: 0, progressKey: '' }) as RolloutState;
  const none = await store.readRollout('default', 'web');
  assert.deepEqual(none, { state: undefined, raw: '' });
  assert.equal(await store.replaceRollout('default', 'web', none, state(1)), true);
  const read = await store.readRollout('default', 'web');
  assert.equal(await store.replaceRollout('default', 'web', read, state(2)), true);
  assert.equal(await store.replaceRollout('default', 'web', read, state(3)), false, 'a stale read loses');
  assert.equal((await store.readRollout('default', 'web')).state?.target, 2);
  assert.deepEqual(await store.readRollouts([{ namespace: 'default', name: 'web' }, { namespace: 'default', name: 'other' }]).then((r) => r.map((s) => s?.target)), [2, undefined]);
});

test('terminating marks, deployment state cleanup and reconcile marks', async () => {
  const { keys, store } = fresh();
  await store.markTerminating('default', 'web', [{ id: 'a', uid: 'u1', deletedAt: 5, graceSeconds: 10 }, { id: 'b', uid: 'u2', deletedAt: 6, graceSeconds: 3 }]);
  assert.deepEqual((await store.readTerminating('default', 'web')).sort((x, y) => (x.id < y.id ? -1 : 1)), [{ id: 'a', uid: 'u1', deletedAt: 5, graceSeconds: 10 }, { id: 'b', uid: 'u2', deletedAt: 6, graceSeconds: 3 }]);
  await store.forgetTerminating('default', 'web', ['a']);
  assert.deepEqual((await store.readTerminating('default', 'web')).map((t) => t.id), ['b']);
  await store.writeDeploymentStatus({ namespace: 'default', name: 'web', replicas: 1, desiredReplicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1, pendingReplicas: 0, observedCommit: 'c', observedGeneration: 1, templateHash: 'h', conditions: [], updatedAt: 1 });
  await store.deleteDeploymentState('default', 'web');
  assert.equal(await redis.exists(keys.terminating('default', 'web'), keys.deploymentStatus('default', 'web')), 0);

  assert.equal(await store.isReconcileDirty('default/web'), false);
  await store.markReconcileDirty('default/web');
  assert.equal(await store.isReconcileDirty('default/web'), true);
  assert.ok((await redis.ttl(keys.reconcileDirty('default/web'))) > 0, 'marks expire');
  await store.clearReconcileDirty('default/web');
  assert.equal(await store.isReconcileDirty('default/web'), false);
});

test('instances: created in one pipeline once each, bound with room checked, siblings counted per node', async () => {
  const { keys, store } = fresh();
  await redis.multi().set(keys.node('n1'), JSON.stringify(node('n1', { cpuMilli: 250 }))).sadd(keys.nodes, 'n1').exec();
  const d = deployment();
  const recs = [0, 1, 2].map((i) => newInstanceRecord(d, { type: 'create', id: `default.web-h1-${i}`, ordinal: i, templateHash: 'h1' }, 1));
  assert.deepEqual(await store.createInstances(recs), [true, true, true]);
  assert.deepEqual(await store.createInstances(recs.slice(0, 1)), [false], 'an existing id is left as it is');
  assert.deepEqual((await store.pendingInstanceIds()).sort(), recs.map((r) => r.id));

  const stored = await store.readDeploymentInstances('default', 'web');
  assert.equal(await store.bindInstance(stored[0]!, 'n1', { ...stored[0]!.record, node: 'n1' }), 1);
  assert.equal(await store.bindInstance(stored[1]!, 'n1', { ...stored[1]!.record, node: 'n1' }), 1);
  assert.equal(await store.bindInstance(stored[2]!, 'n1', { ...stored[2]!.record, node: 'n1' }), -3, '250m holds two of 100m');
  assert.equal(await store.bindInstance(stored[0]!, 'n1', { ...stored[0]!.record, node: 'n1' }), 0, 'a stale read loses');
  assert.deepEqual([...(await store.placement.deploymentNodeCounts([{ namespace: 'default', name: 'web' }]))[0]!], [['n1', 2]], 'the bind script counts the deployment per node');
  assert.deepEqual((await store.nodeInstanceIds('n1')).sort(), [recs[0]!.id, recs[1]!.id]);

  const [pending] = await store.readInstances([recs[2]!.id]);
  assert.equal(await store.replaceInstance(pending!, { ...pending!.record, pendingReason: 'full' }), true);
  assert.equal(await store.replaceInstance(pending!, { ...pending!.record, pendingReason: 'again' }), false);
  assert.deepEqual(await store.counts(), { deployments: 0, nodes: 1, instances: 3 });
});

test('node records: cordon is a compare-and-set the agent\'s registration keeps', async () => {
  const { keys, store } = fresh();
  const agent = new AgentStore(redis, keys, 'n1');
  await agent.register((existing) => ({ ...node('n1'), ...(existing?.cordoned ? { cordoned: true } : {}) }));
  assert.deepEqual(await store.nodeNames(), ['n1']);
  const cordoned = await store.updateNodeRecord('n1', (r) => ({ ...r, cordoned: true }));
  assert.equal(cordoned?.changed, true);
  assert.equal((await store.updateNodeRecord('n1', (r) => ({ ...r, cordoned: true })))?.changed, false, 'no write when nothing changes');
  await agent.register((existing) => ({ ...node('n1', { cpuMilli: 999 }), ...(existing?.cordoned ? { cordoned: true } : {}) }));
  const [n] = await store.readNodes();
  assert.equal(n?.record.cordoned, true);
  assert.equal(n?.record.cpuMilli, 999);
  assert.equal(await store.updateNodeRecord('ghost', (r) => r), undefined);

  assert.equal(await store.startDraining('n1'), true);
  assert.equal(await store.startDraining('n1'), false);
  assert.deepEqual(await store.drainingNodes(), ['n1']);
  await store.stopDraining('n1');
  assert.deepEqual(await store.drainingNodes(), []);
  await store.writeNodeLifecycle('n1', { state: 'NotReady', since: 1, lastHeartbeat: 0 });
  assert.deepEqual(await store.readNodeLifecycles(), { n1: { state: 'NotReady', since: 1, lastHeartbeat: 0 } });
});

test('agent status writes hold only while the instance is bound to that node with that uid', async () => {
  const { keys, store } = fresh();
  const d = deployment();
  const rec = { ...newInstanceRecord(d, { type: 'create', id: 'default.web-h1-0', ordinal: 0, templateHash: 'h1' }, 1), node: 'n1' };
  await redis.set(keys.instance(rec.id), JSON.stringify(rec));
  const status = (nodeName: string, uid = rec.uid): InstanceStatus => ({ id: rec.id, uid, node: nodeName, phase: 'Running', hostIP: '127.0.0.1', restarts: 0, ports: [], containers: [], updatedAt: 1 });
  const n1 = new AgentStore(redis, keys, 'n1');
  const n2 = new AgentStore(redis, keys, 'n2');
  assert.equal(await n2.writeStatus(status('n2'), 'default', 'web'), false, 'not bound to n2');
  assert.equal(await n1.writeStatus(status('n1', 'old-uid'), 'default', 'web'), false, 'another incarnation');
  assert.equal(await n1.writeStatus(status('n1'), 'default', 'web'), true);
  assert.equal((await store.readInstanceStatus(rec.id))?.node, 'n1');
  assert.equal(await n1.statusExists(rec.id), true);
  assert.equal(await n2.deleteStatusIfMine(rec.id), false, "n1's status stays");
  assert.equal(await n1.deleteStatusIfMine(rec.id), true);
  assert.equal(await n1.statusExists(rec.id), false);
});

test('endpoints records are written and announced, and dropped again for a service pruned meanwhile', async () => {
  const { keys, store } = fresh();
  await store.writeOwnedState('main', { namespaces: [], deployments: [], services: [] }, { namespaces: [], deployments: [], services: [service('web')] });
  const sub = connectRedis((await testRedis()).url, 'store-test-sub');
  try {
    const messages: string[] = [];
    await sub.subscribe(keys.servicesChannel);
    sub.on('message', (_c: string, m: string) => messages.push(m));
    const e = (name: string): EndpointsRecord => ({ namespace: 'default', name, ports: [{ port: 80, targetPort: 8080 }], listen: [80], endpoints: [], conditions: [], updatedAt: 1 });
    await store.services.writeEndpoints([e('web'), e('gone')]);
    assert.deepEqual((await store.services.readAllEndpoints()).map((x) => x.name), ['web']);
    assert.equal(await redis.exists(keys.endpoints('default', 'gone')), 0);
    await store.services.updateNodeStatus('n1', new Map([['default/web', { port: 80, error: 'in use', at: 1 }]]), []);
    assert.deepEqual(await store.services.readNodeStatuses(['n1', 'n2']), new Map([['n1', { 'default/web': { port: 80, error: 'in use', at: 1 } }], ['n2', {}]]));
    await store.services.updateNodeStatus('n1', new Map(), ['default/web']);
    assert.deepEqual((await store.services.readNodeStatuses(['n1'])).get('n1'), {});
    await waitFor(() => messages.includes('endpoints'), { what: 'the endpoints announcement' });
  } finally {
    sub.disconnect();
  }
});

test('events: several in one round trip, in order, filtered by object', async () => {
  const { store } = fresh();
  await store.events.recordAll([
    { type: 'Normal', reason: 'A', object: 'deployment/default/web', message: 'first', time: 1 },
    { type: 'Warning', reason: 'B', object: 'node/n1', message: 'second', time: 2 },
    { type: 'Normal', reason: 'C', object: 'deployment/default/web', message: 'third', time: 3 },
  ]);
  await store.events.recordAll([]);
  assert.deepEqual((await store.events.read()).map((e) => e.reason), ['A', 'B', 'C']);
  assert.deepEqual((await store.events.read({ object: 'deployment/' })).map((e) => e.message), ['first', 'third']);
  assert.deepEqual((await store.events.read({ limit: 1 })).map((e) => e.reason), ['C']);
});
