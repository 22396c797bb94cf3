import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runGantry } from '../helpers/gantry-process.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';

/** `gantry node drain` under a deployment with maxUnavailable 1: never more than one replica unavailable. */

const web = `apiVersion: apps/v1
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

let c: TestCluster;
let api: string;
before(async () => {
  c = await startCluster();
  api = c.api;
});
after(() => c?.stop());

test('drain moves every instance off the node, never leaving more than maxUnavailable unavailable', async () => {
  await c.repo.commitFiles({ 'web.yaml': web }, 'web x4');
  const instances = c.instances;
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
