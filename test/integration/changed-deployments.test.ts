import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { startAgent } from '../../agents/agent.ts';
import { startReconciler } from '../../reconciler/reconciler.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { createRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The periodic resync costs what changed (reconciler.ts): it re-enqueues the deployments in the
 * changed-deployments set, not every deployment. Here a change's pub/sub message is lost for
 * certain (the subscriber is disconnected in the same MULTI that announces it), the full resync is
 * an hour away, and the change is still acted on within a short resync, from the set alone.
 */

let redis: Redis;
let url: string;
let dataDir: string;
before(async () => {
  url = (await testRedis()).url;
  redis = connectRedis(url, 'changed-deployments-test');
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-changed-'));
});
after(async () => {
  redis.disconnect();
  await rm(dataDir, { recursive: true, force: true });
});

const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: default }
spec:
  replicas: 1
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: main, command: ["sleep", "1000"] }]
`;

test('a change whose message was lost is reconciled by the next short resync, from the changed-deployments set', async () => {
  const prefix = freshPrefix();
  const keys = createKeys(prefix);
  const repo = await createRepo();
  await repo.commitFiles({ 'deploy/web.yaml': web });
  const rec = await startReconciler({ redisUrl: url, prefix, source: { repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir: join(dataDir, 'rec') }, apiPort: 0, resyncMs: 200, fullResyncMs: 3_600_000 });
  // Hollow: the agent's whole path with nothing started (this is about the reconciler).
  const agent = await startAgent({ redisUrl: url, prefix, node: 'n1', cpuMilli: 4000, memoryBytes: 8 * 1024 ** 3, dataDir: join(dataDir, 'agent'), hollow: true, resyncMs: 60_000 });
  try {
    const ready = (n: number) => async () => (await rec.store.readDeploymentStatus('default', 'web'))?.readyReplicas === n;
    await waitFor(ready(1), { what: 'web ready' });
    const [instance] = await rec.store.readDeploymentInstances('default', 'web');
    assert.ok(instance?.status);
    // What an agent writes when a readiness probe fails, with its announcement, while the
    // reconciler's subscriber is away: KILL, SET, SADD and PUBLISH are one transaction, so the
    // message reaches no one.
    const unready = JSON.stringify({ ...instance.status, ready: false });
    const out = await redis.multi().call('CLIENT', 'KILL', 'TYPE', 'pubsub').set(keys.instanceStatus(instance.record.id), unready).sadd(keys.changedDeployments, 'default/web').publish(keys.changesChannel, 'default/web').exec();
    assert.equal(out?.[3]?.[1], 0, 'the message had no subscriber');
    await waitFor(ready(0), { what: 'web unready, seen by a resync' });
    // The reconcile that saw it took its key out of the set: the next resyncs enqueue nothing.
    await waitFor(async () => (await redis.sismember(keys.changedDeployments, 'default/web')) === 0, { what: 'default/web out of the set' });
  } finally {
    await agent.stop();
    await rec.stop();
    await repo.cleanup();
  }
});
