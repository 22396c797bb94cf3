import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../reconciler/redis/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { runGantry, spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/** `gantry node drain` under a deployment with maxUnavailable 1: never more than one replica unavailable. */

const web = `apiVersion: gantry.dev/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }
  template:
    metadata:
      labels: { app: web }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT)"]
          ports: [{ name: http, containerPort: 8080 }]
`;

let repo: TestRepo;
let dataDir: string;
let api: string;
const procs: GantryProcess[] = [];

before(async () => {
  const { url } = await testRedis();
  const prefix = freshPrefix();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-drain-'));
  repo = await createRepo();
  await repo.commitFiles({ 'README.md': 'empty' }, 'empty');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  procs.push(spawnGantry(['reconciler', '--redis', url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir]));
  for (const node of ['node-1', 'node-2']) procs.push(spawnGantry(['agent', '--node', node, '--redis', url, '--prefix', prefix, '--data-dir', dataDir, '--heartbeat', '1s', '--stop-instances-on-exit']));
  await waitFor(async () => {
    const items = await fetch(`${api}/api/v1/nodes`).then(async (r) => ((await r.json()) as { items: NodeView[] }).items, () => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('drain moves every instance off the node, never leaving more than maxUnavailable unavailable', async () => {
  await repo.commitFiles({ 'web.yaml': web }, 'web x4');
  const instances = async () => ((await (await fetch(`${api}/api/v1/instances`)).json()) as { items: InstanceView[] }).items;
  await waitFor(async () => {
    const all = await instances();
    return all.length === 4 && all.every((i) => i.phase === 'Running') && all.some((i) => i.node === 'node-1');
  }, { what: '4 running, some on node-1' });

  const readyCounts: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) readyCounts.push((await instances()).filter((i) => i.phase === 'Running').length);
  })();
  const drain = await runGantry(['node', 'drain', 'node-1', '--api', api, '--timeout', '60s']);
  sampling = false;
  await sampler;
  assert.equal(drain.code, 0, drain.stderr);
  assert.match(drain.stdout, /node\/node-1 drained/);
  const all = await waitFor(async () => {
    const a = await instances();
    return a.length === 4 && a.every((i) => i.phase === 'Running') ? a : undefined;
  }, { what: '4 running after drain' });
  assert.ok(all.every((i) => i.node === 'node-2'), 'everything on node-2');
  assert.ok(readyCounts.length > 5);
  assert.ok(Math.min(...readyCounts) >= 3, `a sample saw ${Math.min(...readyCounts)} ready replicas`);

  const events = await runGantry(['events', '--for', 'node/node-1', '--api', api]);
  assert.equal(events.code, 0, events.stderr);
  assert.match(events.stdout, /NodeDraining/);
  assert.match(events.stdout, /NodeDrained/);
  const nodes = await runGantry(['get', 'nodes', '--api', api]);
  assert.match(nodes.stdout, /node-1\s+Ready,SchedulingDisabled/);
});
