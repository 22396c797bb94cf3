import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { GantryEvent } from '../../state/events.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet, processGroupsOf } from '../helpers/agent-fixtures.ts';

/** A node dies: its instances come back elsewhere. Cordon keeps new placements off a node. */

const web = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels: { app: web }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end(process.env.GANTRY_NODE)).listen(+process.env.PORT)"]
          ports: [{ name: http, containerPort: 8080 }]
`;

let c: TestCluster;
let api: string;
const get = <T>(path: string) => c.get<T>(path);
const instances = () => c.instances();

before(async () => {
  c = await startCluster({ reconcilerFlags: ['--node-ready-timeout', '2s', '--eviction-timeout', '2s'], agentFlags: ['--heartbeat', '500ms'] });
  api = c.api;
});
after(() => c?.stop());

test('SIGKILL of a node: its instances come back on the other node within grace + eviction', async (t) => {
  await c.repo.commitFiles({ 'web.yaml': web(2) }, 'web x2');
  const placed = await waitFor(async () => {
    const r = (await instances()).filter((i) => i.phase === 'Running');
    return r.length === 2 ? r : undefined;
  }, { what: '2 running' });
  assert.deepEqual(new Set(placed.map((i) => i.node)), new Set(['node-1', 'node-2']));
  const lost = placed.find((i) => i.node === 'node-1')!;

  // The machine dies: its agent and its processes, all at once.
  const t0 = Date.now();
  await c.agents.get('node-1')!.stop('SIGKILL');
  for (const pgid of processGroupsOf(lost.id)) process.kill(-pgid, 'SIGKILL');

  const back = await waitFor(async () => {
    const r = (await instances()).filter((i) => i.phase === 'Running' && i.node === 'node-2');
    return r.length === 2 ? r : undefined;
  }, { timeoutMs: 20_000, what: 'both replicas running on node-2' });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 2_000, `rescheduled after ${elapsed} ms, before the grace period`);
  t.diagnostic(`node death to full readiness elsewhere: ${elapsed} ms (grace 2 s + eviction 2 s)`);
  const moved = back.find((i) => i.id === lost.id)!;
  assert.equal(await waitFor(() => httpGet(moved.ports[0]!.hostPort)), 'node-2');

  const nodes = (await get<{ items: NodeView[] }>('/api/v1/nodes')).items;
  assert.equal(nodes.find((n) => n.name === 'node-1')!.state, 'Evicted');
  const events = (await get<{ items: GantryEvent[] }>('/api/v1/events?limit=200')).items;
  const reasons = events.map((e) => e.reason);
  for (const r of ['NodeNotReady', 'NodeLost', 'Evicted']) assert.ok(reasons.includes(r), `event ${r}`);
  assert.ok(events.some((e) => e.reason === 'Evicted' && e.message.includes(lost.id)));
});

test('a cordoned node takes no new placements; uncordon lets them in', async () => {
  const cordon = await runGantry(['node', 'cordon', 'node-2', '--api', api]);
  assert.equal(cordon.code, 0, cordon.stderr);
  const nodes = await runGantry(['get', 'nodes', '--api', api]);
  assert.match(nodes.stdout, /node-2\s+Ready,SchedulingDisabled/);
  await c.repo.commitFiles({ 'web.yaml': web(3) }, 'web x3');
  const pending = await waitFor(async () => (await instances()).find((i) => i.node === null && i.message?.includes('node cordoned')), { what: 'pending on cordon' });
  assert.match(pending.message!, /^0\/2 nodes available: 1 node cordoned, 1 node not ready$/);
  const uncordon = await runGantry(['node', 'uncordon', 'node-2', '--api', api]);
  assert.equal(uncordon.code, 0, uncordon.stderr);
  await waitFor(async () => (await instances()).filter((i) => i.phase === 'Running').length === 3, { what: '3 running after uncordon' });
  const unknown = await runGantry(['node', 'cordon', 'nope', '--api', api]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /node nope not found/);
});
