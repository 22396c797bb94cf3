import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { AgentStore } from '../../state/agent-store.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { instanceId, type InstanceRecord } from '../../state/records/instance.ts';
import { MAIN_OWNER } from '../../state/records/deployment.ts';
import { Store } from '../../state/store.ts';
import { Queues } from '../../reconciler/queue/queues.ts';
import { newInstanceRecord, reconcileDeployment } from '../../reconciler/controller/deployment-reconciler.ts';
import { ClusterEpoch } from '../../reconciler/controller/cluster-epoch.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { AgentWorld, instanceRecord, pidAlive } from '../helpers/agent-fixtures.ts';
import { agentAclRules } from '../../state/acl.ts';

/**
 * Redis losing its data against a real Redis (issue 11, section 5): the adopt-instance script, the
 * deployment controller adopting what nodes claim, and an agent holding what it runs.
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
  const redis = connectRedis(url, 'data-loss-test');
  open.push(redis);
  const q = new Queues(redis, keys);
  queues.push(q);
  return { redis, store: new Store(redis, keys), queues: q };
}

/** What FLUSHALL does to one installation: every key under its prefix is gone. */
async function wipe(redis: Redis, keys: Keys): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await redis.del(...found);
  } while (cursor !== '0');
}

function record(ordinal: number, over: Partial<InstanceRecord> = {}): InstanceRecord {
  const d = deployment();
  const action = { type: 'create' as const, id: instanceId('default', 'web', d.templateHash, ordinal), ordinal, templateHash: d.templateHash };
  return { ...newInstanceRecord(d, action, Date.now() - 60_000), ...over };
}

test('the cluster epoch is made once (SET NX) and read by reconciler and agents', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store } = connect(keys);
  const first = await store.recovery.ensureClusterEpoch();
  assert.equal(first.created, true);
  assert.match(first.epoch, /^[0-9a-f]{32}$/);
  assert.deepEqual(await store.recovery.ensureClusterEpoch(), { epoch: first.epoch, created: false });
  const agent = new AgentStore(redis, keys, 'n1');
  assert.deepEqual(await agent.readClusterEpoch(), { epoch: first.epoch, registered: false });
  await agent.register(() => node('n1'));
  assert.deepEqual(await agent.readClusterEpoch(), { epoch: first.epoch, registered: true });
  await wipe(redis, keys);
  assert.equal(await store.recovery.readClusterEpoch(), undefined);
  assert.deepEqual(await agent.readClusterEpoch(), { registered: false });
});

test('the reconciler notices a lost epoch (and, at start, agents claiming after a loss it did not see), once each', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store } = connect(keys);
  let losses = 0;
  const watch = () => new ClusterEpoch({ store, onDataLost: async () => void losses++ });
  const first = watch();
  await first.ensure();
  assert.equal(await first.check(), false);
  assert.equal(losses, 0, 'a new cluster');
  await wipe(redis, keys);
  assert.deepEqual(await Promise.all([first.check(), first.check()]), [true, true], 'concurrent looks share one');
  assert.equal(losses, 1);
  assert.equal(await first.check(), false, 'the new epoch is remembered');
  assert.equal((await store.events.read()).filter((e) => e.reason === 'RedisDataLost' && e.object === 'cluster').length, 1);

  // A reconciler starting on an empty Redis where an agent already claims what it runs.
  await wipe(redis, keys);
  const agent = new AgentStore(redis, keys, 'n1');
  await agent.register(() => node('n1'));
  await agent.publishClaims([record(0, { node: 'n1' })], 60_000);
  await watch().ensure();
  assert.equal(losses, 2);
});

test('an agent under its restricted ACL user may read the epoch and publish and drop its own claims, nobody else\'s', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store } = connect(keys);
  await store.recovery.ensureClusterEpoch();
  const user = `agent-claims-${keys.prefix}`;
  await redis.call('ACL', 'SETUSER', user, 'on', '>claims-test-password', ...agentAclRules('n1', keys.prefix));
  const u = new URL(url);
  u.username = user;
  u.password = 'claims-test-password';
  const restricted = connectRedis(u.toString(), 'acl-claims-test');
  try {
    await new AgentStore(redis, keys, 'n1').register(() => node('n1'));
    const agent = new AgentStore(restricted, keys, 'n1');
    assert.equal((await agent.readClusterEpoch()).registered, true);
    await agent.publishClaims([record(0, { node: 'n1' })], 60_000);
    assert.equal(await redis.hlen(keys.nodeClaims('n1')), 1);
    await agent.clearClaims();
    await assert.rejects(new AgentStore(restricted, keys, 'n2').publishClaims([record(0, { node: 'n2' })], 60_000), /NOPERM|EXECABORT/, "another node's claims");
    await assert.rejects(restricted.set(keys.clusterEpoch, 'x'), /NOPERM/, 'the epoch is the reconciler\'s');
  } finally {
    restricted.disconnect();
    await redis.call('ACL', 'DELUSER', user).catch(() => undefined);
  }
});

test('adopt-instance: creates the record bound with the claimed uid, indexes it, books the node, drops the claim; once', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store } = connect(keys);
  const agent = new AgentStore(redis, keys, 'n1');
  await agent.register(() => node('n1'));
  const claimed = { ...record(0), node: 'n1', cpuMilli: 250, memoryBytes: 1000 };
  await agent.publishClaims([claimed, record(1, { node: 'n1' })], 60_000);
  assert.ok((await redis.pttl(keys.nodeClaims('n1'))) > 50_000, 'claims expire');

  const claims = await store.recovery.readClaims([claimed.id, 'default.web-other-0']);
  assert.deepEqual([...claims.keys()], [claimed.id]);
  assert.equal(claims.get(claimed.id)!.node, 'n1');
  assert.equal(claims.get(claimed.id)!.record.uid, claimed.uid);

  const adopted = { ...record(0, { cpuMilli: 250, memoryBytes: 1000 }), uid: claimed.uid, node: 'n1' };
  assert.deepEqual(await store.recovery.adoptInstances([adopted]), [true]);
  const [stored] = await store.readInstances([adopted.id]);
  assert.equal(stored!.record.node, 'n1');
  assert.equal(stored!.record.uid, claimed.uid);
  assert.deepEqual(await redis.smembers(keys.instances), [adopted.id]);
  assert.deepEqual(await redis.smembers(keys.deploymentInstances('default', 'web')), [adopted.id]);
  assert.deepEqual(await redis.smembers(keys.nodeInstances('n1')), [adopted.id]);
  assert.equal(await redis.scard(keys.pendingInstances), 0, 'never pending');
  assert.deepEqual(await redis.hgetall(keys.nodeAlloc('n1')), { cpuMilli: '250', memoryBytes: '1000', instances: '1' });
  assert.deepEqual(await redis.hkeys(keys.nodeClaims('n1')), [record(1).id], 'its claim dropped, the other kept');

  // Again (a second pass, another reconciler): nothing changes, nothing is booked twice.
  assert.deepEqual(await store.recovery.adoptInstances([{ ...adopted, uid: 'other' }]), [false]);
  assert.equal((await store.readInstances([adopted.id]))[0]!.record.uid, claimed.uid);
  assert.deepEqual(await redis.hgetall(keys.nodeAlloc('n1')), { cpuMilli: '250', memoryBytes: '1000', instances: '1' });
  await assert.rejects(store.recovery.adoptInstances([record(2)]), /names no node/);
});

test('the deployment controller adopts claimed instances (no schedule job), holds the unclaimed ones during the wait, then creates them', async () => {
  const keys = createKeys(freshPrefix());
  const { redis, store, queues: q } = connect(keys);
  const d = deployment({ replicas: 3 });
  const empty = { namespaces: [], deployments: [], services: [] };
  await store.writeOwnedState(MAIN_OWNER, empty, { namespaces: [], deployments: [d], services: [] });
  const agent = new AgentStore(redis, keys, 'n1');
  await agent.register(() => node('n1'));
  const running = [record(0, { node: 'n1' }), record(1, { node: 'n1' })];
  // A claim of another revision (another id) is no match for anything wanted.
  await agent.publishClaims([...running, { ...record(2, { node: 'n1' }), id: instanceId('default', 'web', 'old', 2), templateHash: 'old' }], 60_000);

  let holdMs = 5_000;
  const deps = { store, queues: q, adoptionHoldMs: () => holdMs };
  const outcome = await reconcileDeployment(deps, 'default/web');
  assert.ok(outcome && outcome.requeueAfterMs! <= 1000, `looks again soon: ${JSON.stringify(outcome)}`);
  const after1 = await store.readDeploymentInstances('default', 'web');
  assert.deepEqual(after1.map((i) => [i.record.id, i.record.node, i.record.uid]), running.map((r) => [r.id, 'n1', r.uid]));
  assert.equal(after1[0]!.record.createdAt, running[0]!.createdAt, 'created when it first was');
  assert.equal(await q.schedule.count(), 0, 'nothing to schedule');
  assert.equal(await q.node('n1').count(), 2, 'a start job each, so the agent reports at once');
  assert.deepEqual(await redis.hgetall(keys.nodeAlloc('n1')), { cpuMilli: '200', memoryBytes: '2048', instances: '2' });
  assert.ok((await store.events.read()).some((e) => e.reason === 'Adopted' && e.message.startsWith('2 instance(s)')));

  holdMs = 0;
  await reconcileDeployment(deps, 'default/web');
  const after2 = await store.readDeploymentInstances('default', 'web');
  assert.equal(after2.length, 3);
  const third = after2.find((i) => i.record.ordinal === 2)!;
  assert.equal(third.record.node, undefined, 'the unclaimed one is created pending');
  assert.equal(await q.schedule.count(), 1);
});

test('agent: after Redis lost its data it keeps what runs, re-registers, claims it; what is adopted runs on, the rest stops after the window', async () => {
  const w = await AgentWorld.create();
  try {
    const store = new Store(w.redis, w.keys);
    await store.recovery.ensureClusterEpoch();
    await w.startAgent({ resyncMs: 100, adoptionWindowMs: 3_000, docker: false });
    const kept = instanceRecord(w.node, { deployment: 'web' });
    const removed = instanceRecord(w.node, { deployment: 'old', id: `default.old-${kept.templateHash}-0` });
    for (const r of [kept, removed]) await w.bind(r);
    const statuses = await waitFor(async () => {
      const s = await Promise.all([w.status(kept.id), w.status(removed.id)]);
      return s.every((x) => x?.phase === 'Running') ? s : undefined;
    }, { what: 'both Running' });
    const [keptPid, removedPid] = statuses.map((s) => s!.pid!);

    await wipe(w.redis, w.keys);
    const claims = await waitFor(async () => {
      const c = await w.redis.hgetall(w.keys.nodeClaims(w.node));
      return Object.keys(c).length === 2 ? c : undefined;
    }, { what: 'both claimed' });
    const claimedAt = Date.now();
    assert.equal((JSON.parse(claims[kept.id]!) as InstanceRecord).uid, kept.uid);
    assert.ok(await w.nodeRecord(), 'the node registered again');
    assert.equal(await w.redis.sismember(w.keys.nodes, w.node), 1);
    assert.ok(pidAlive(keptPid) && pidAlive(removedPid), 'nothing stopped for a missing record');

    // The reconciler comes back: a new epoch, and it adopts `kept` only (`old` is gone from Git).
    await store.recovery.ensureClusterEpoch();
    const [claim] = [...(await store.recovery.readClaims([kept.id])).values()];
    assert.deepEqual(await store.recovery.adoptInstances([{ ...kept, uid: claim!.record.uid, node: claim!.node }]), [true]);
    const back = await waitFor(async () => {
      const s = await w.status(kept.id);
      return s?.phase === 'Running' ? s : undefined;
    }, { what: 'the adopted instance reported again' });
    assert.equal(back.pid, keptPid, 'same process');
    assert.equal(back.restarts, 0);

    await waitFor(() => !pidAlive(removedPid), { timeoutMs: 10_000, what: 'the unadopted instance stopped after the window' });
    // Resyncs every 100 ms found no record for it all along: it was held for the whole window.
    assert.ok(Date.now() - claimedAt >= 3_000 - 500, `stopped ${Date.now() - claimedAt} ms after it was claimed, not before the window ended`);
    assert.ok(pidAlive(keptPid), 'the adopted one runs on');
    assert.equal(await w.redis.exists(w.keys.nodeClaims(w.node)), 0, 'claims dropped after the window');
    assert.ok(w.logs.some((l) => l.includes('adoption window over') && l.includes(removed.id)));
  } finally {
    await w.cleanup();
  }
});
