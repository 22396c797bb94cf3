import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Queues } from '../../reconciler/queue/queues.ts';
import { Scheduler } from '../../reconciler/scheduler/scheduler.ts';
import { Store } from '../../state/store.ts';
import { newInstanceRecord } from '../../reconciler/controller/deployment-reconciler.ts';
import { instanceId, type PortSpec } from '../../state/records/instance.ts';
import { deployment, node } from '../helpers/records.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * The scheduler's hostPort filter against a real Redis: what counts as used is what is bound to
 * the node now, and placements of different deployments that want the same hostPort, started at
 * the same moment, still put only one of them on the node.
 */

const REASON = "0/1 nodes available: 1 node(s) didn't have free ports for the requested pod ports";

let url: string;
const open: Redis[] = [];
before(async () => {
  url = (await testRedis()).url;
});
after(() => {
  for (const r of open) r.disconnect();
});

test('instances of different deployments needing one hostPort and protocol: one per node, the rest pending with the reason until it is free', async () => {
  const keys = createKeys(freshPrefix());
  const redis = connectRedis(url);
  open.push(redis);
  const store = new Store(redis, keys);
  const queues = new Queues(redis, keys);
  await redis.multi().set(keys.node('n1'), JSON.stringify(node('n1', { address: '127.0.0.1' }))).sadd(keys.nodes, 'n1').set(keys.nodeHeartbeat('n1'), String(Date.now())).exec();
  const scheduler = new Scheduler({ redisUrl: url, store, queues, keys });
  const create = async (name: string, ports: PortSpec[]) => {
    const base = deployment({ name });
    const d = deployment({ name, template: { ...base.template, containers: [{ ...base.template.containers[0]!, ports }] } });
    const rec = newInstanceRecord(d, { type: 'create', id: instanceId('default', name, 'h1', 0), ordinal: 0, templateHash: 'h1' }, Date.now());
    assert.equal(await store.createInstance(rec), true);
    return rec.id;
  };
  try {
    const tcp = await Promise.all(['a', 'b', 'c'].map((n) => create(n, [{ name: 'http', containerPort: 80, hostPort: 8080 }])));
    const udp = await create('dns', [{ name: 'dns', containerPort: 53, protocol: 'UDP', hostPort: 8080 }]);
    const free = await create('free', [{ name: 'http', containerPort: 80 }]);
    // All at once: only the serialization of hostPort placements keeps two of them off one node.
    const outcomes = await Promise.all([...tcp, udp, free].map((id) => scheduler.scheduleOne(id)));
    assert.deepEqual(outcomes.slice(0, 3).sort(), ['bound', 'pending', 'pending']);
    assert.deepEqual(outcomes.slice(3), ['bound', 'bound'], 'the other protocol and allocated ports do not conflict');
    const all = await store.readInstances(tcp);
    const bound = all.filter((i) => i.record.node === 'n1');
    assert.equal(bound.length, 1);
    for (const i of all.filter((x) => !x.record.node)) assert.equal(i.record.pendingReason, REASON);

    // The holder goes: the next one placed takes the port, the last still waits.
    assert.equal(await store.deleteInstance(bound[0]!), true);
    const retried = await Promise.all(all.filter((x) => !x.record.node).map((i) => scheduler.scheduleOne(i.record.id)));
    assert.deepEqual(retried.sort(), ['bound', 'pending']);
  } finally {
    await scheduler.stop();
    await queues.close();
  }
});
