import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../reconciler/redis/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { GantryEvent } from '../../reconciler/state/events.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { runGantry, spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet, processGroupsOf } from '../helpers/agent-fixtures.ts';

/** A node dies: its instances come back elsewhere. Cordon keeps new placements off a node. */

const web = (replicas: number) => `apiVersion: gantry.dev/v1
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

let repo: TestRepo;
let dataDir: string;
let api: string;
const procs: GantryProcess[] = [];
const agents = new Map<string, GantryProcess>();

async function get<T>(path: string): Promise<T> {
  return (await (await fetch(api + path)).json()) as T;
}
const instances = async () => (await get<{ items: InstanceView[] }>('/api/v1/instances')).items;

before(async () => {
  const { url } = await testRedis();
  const prefix = freshPrefix();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-nodeloss-'));
  repo = await createRepo();
  await repo.commitFiles({ 'README.md': 'empty' }, 'empty');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  procs.push(spawnGantry(['reconciler', '--redis', url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--node-ready-timeout', '2s', '--eviction-timeout', '2s']));
  for (const node of ['node-1', 'node-2']) {
    const a = spawnGantry(['agent', '--node', node, '--redis', url, '--prefix', prefix, '--data-dir', dataDir, '--heartbeat', '500ms', '--stop-instances-on-exit']);
    agents.set(node, a);
    procs.push(a);
  }
  await waitFor(async () => {
    const items = await get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('SIGKILL of a node: its instances come back on the other node within grace + eviction', async (t) => {
  await repo.commitFiles({ 'web.yaml': web(2) }, 'web x2');
  const placed = await waitFor(async () => {
    const r = (await instances()).filter((i) => i.phase === 'Running');
    return r.length === 2 ? r : undefined;
  }, { what: '2 running' });
  assert.deepEqual(new Set(placed.map((i) => i.node)), new Set(['node-1', 'node-2']));
  const lost = placed.find((i) => i.node === 'node-1')!;

  // The machine dies: its agent and its processes, all at once.
  const t0 = Date.now();
  await agents.get('node-1')!.stop('SIGKILL');
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
  await repo.commitFiles({ 'web.yaml': web(3) }, 'web x3');
  const pending = await waitFor(async () => (await instances()).find((i) => i.node === null && i.message?.includes('node cordoned')), { what: 'pending on cordon' });
  assert.match(pending.message!, /^0\/2 nodes available: 1 node cordoned, 1 node not ready$/);
  const uncordon = await runGantry(['node', 'uncordon', 'node-2', '--api', api]);
  assert.equal(uncordon.code, 0, uncordon.stderr);
  await waitFor(async () => (await instances()).filter((i) => i.phase === 'Running').length === 3, { what: '3 running after uncordon' });
  const unknown = await runGantry(['node', 'cordon', 'nope', '--api', api]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /node nope not found/);
});
