import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { freePort } from '../../cli/redis-server.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { pidAlive, processGroupsOf } from '../helpers/agent-fixtures.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/** Fencing after a frozen agent, a reconciler killed mid scale-up, and drift repair; separate processes throughout. */

// Instance ids follow from the template: a per-run value keeps other runs' processes out of the counts.
const RUN = randomUUID().slice(0, 8);
const web = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: ${replicas}
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end(process.env.GANTRY_NODE)).listen(+process.env.PORT)"]
          env: [{ name: RUN, value: "${RUN}" }]
          ports: [{ name: http, containerPort: 8080 }]
`;

let repo: TestRepo;
let dataDir: string;
let api: string;
let redis: Redis;
let prefix: string;
let reconcilerArgs: string[];
let reconciler: GantryProcess;
const procs: GantryProcess[] = [];
const agents = new Map<string, GantryProcess>();

async function get<T>(path: string): Promise<T> {
  return (await (await apiFetch(api + path)).json()) as T;
}
const instances = async () => (await get<{ items: InstanceView[] }>('/api/v1/instances')).items;
const nodes = async () => (await get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => [] as NodeView[]));

before(async () => {
  const { url } = await testRedis();
  prefix = freshPrefix();
  redis = connectRedis(url, 'self-healing-test');
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-healing-'));
  repo = await createRepo();
  await repo.commitFiles({ 'README.md': 'empty' }, 'empty');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  reconcilerArgs = ['reconciler', '--redis', url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--node-ready-timeout', '2s', '--eviction-timeout', '2s'];
  reconciler = spawnGantry(reconcilerArgs);
  for (const node of ['node-1', 'node-2']) {
    const a = spawnGantry(['agent', '--node', node, '--redis', url, '--prefix', prefix, '--data-dir', dataDir, '--heartbeat', '500ms', '--stop-instances-on-exit']);
    agents.set(node, a);
    procs.push(a);
  }
  await waitFor(async () => {
    const items = await nodes();
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
});

after(async () => {
  for (const a of agents.values()) a.child.kill('SIGCONT');
  await Promise.all([reconciler, ...procs].map((p) => p.stop()));
  await redis?.quit();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('SIGSTOP an agent past the timeouts, then SIGCONT: it stops its stale copies before it reports back', async (t) => {
  await repo.commitFiles({ 'web.yaml': web(2) }, 'web x2');
  const placed = await waitFor(async () => {
    const r = (await instances()).filter((i) => i.phase === 'Running');
    return r.length === 2 ? r : undefined;
  }, { what: '2 running' });
  const frozen = placed.find((i) => i.node === 'node-1')!;
  const agent = agents.get('node-1')!;
  const t0 = Date.now();
  agent.child.kill('SIGSTOP');
  await waitFor(async () => (await instances()).find((i) => i.id === frozen.id && i.node === 'node-2' && i.ready), { timeoutMs: 20_000, what: 'the instance running on node-2' });
  t.diagnostic(`frozen node to full readiness elsewhere: ${Date.now() - t0} ms (grace 2 s + eviction 2 s)`);
  // The frozen node's copy still runs: two copies now, which fencing must end.
  assert.equal(processGroupsOf(frozen.id).size, 2);

  let reconnected = false;
  const violations: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const n = processGroupsOf(frozen.id).size;
      if (reconnected && n > 1) violations.push(n);
      await new Promise((r) => setImmediate(r));
    }
  })();
  agent.child.kill('SIGCONT');
  await waitFor(async () => (await nodes()).find((n) => n.name === 'node-1' && n.ready), { what: 'node-1 heartbeating again' });
  reconnected = true;
  await waitFor(() => processGroupsOf(frozen.id).size === 1, { what: 'one copy' });
  // Keep sampling through a few resyncs of the returned agent.
  await waitFor(async () => (await instances()).filter((i) => i.ready).length === 2, { what: 'both ready' });
  sampling = false;
  await sampler;
  assert.deepEqual(violations, [], 'no two copies after the agent reconnected');
  const now = (await instances()).find((i) => i.id === frozen.id)!;
  assert.equal(now.node, 'node-2');
});

test('kill -9 of the reconciler during a scale-up to 10: after a restart exactly 10 instances run', async () => {
  await repo.commitFiles({ 'web.yaml': web(10) }, 'web x10');
  await waitFor(async () => (await instances()).length > 2, { what: 'the scale-up under way' });
  await reconciler.stop('SIGKILL');
  reconciler = spawnGantry(reconcilerArgs);
  const running = await waitFor(async () => {
    const r = await instances().catch(() => []);
    return r.length === 10 && r.every((i) => i.phase === 'Running' && i.ready) ? r : undefined;
  }, { timeoutMs: 30_000, what: '10 ready instances' });
  assert.equal(new Set(running.map((i) => i.id)).size, 10);
  for (const i of running) assert.equal(processGroupsOf(i.id).size, 1, `one process group for ${i.id}`);
});

test('drift: an instance killed out of band, a stray copy, lost actual-state keys: each repaired', async () => {
  const items = (await instances()).filter((i) => i.phase === 'Running');
  const victim = items[0]!;
  // Killed out of band: replaced.
  for (const pgid of processGroupsOf(victim.id)) process.kill(-pgid, 'SIGKILL');
  await waitFor(async () => (await instances()).find((i) => i.id === victim.id && i.phase === 'Running' && i.pid !== victim.pid), { what: 'killed instance replaced' });

  // A stray: a second copy started by hand in an instance's dir with its env.
  const target = items[1]!;
  const stray = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    cwd: join(dataDir, 'agents', target.node!, 'instances', target.id),
    env: { ...process.env, GANTRY_INSTANCE_ID: target.id, GANTRY_NODE: target.node! },
    detached: true,
    stdio: 'ignore',
  });
  stray.unref();
  try {
    assert.equal(processGroupsOf(target.id).size, 2);
    await waitFor(() => !pidAlive(stray.pid!), { what: 'stray removed' });
  } finally {
    if (pidAlive(stray.pid!)) process.kill(stray.pid!, 'SIGKILL');
  }
  assert.equal(processGroupsOf(target.id).size, 1);

  // Actual state lost: rewritten from what runs, with nothing restarted.
  const before = new Map((await instances()).map((i) => [i.id, i]));
  const keys = createKeys(prefix);
  await redis.del(...[...before.keys()].map((id) => keys.instanceStatus(id)));
  const back = await waitFor(async () => {
    const r = await instances();
    return r.every((i) => i.phase === 'Running') && r.length === before.size ? r : undefined;
  }, { what: 'statuses rewritten' });
  for (const i of back) {
    assert.equal(i.pid, before.get(i.id)!.pid, `${i.id} not restarted`);
    assert.equal(i.restarts, before.get(i.id)!.restarts);
  }
});
