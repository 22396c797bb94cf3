import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import type { DeploymentView, InstanceView } from '../../reconciler/api/views.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { runGantry, spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet, pidAlive, processGroupsOf } from '../helpers/agent-fixtures.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/**
 * The whole path on real parts: a Git commit -> reconciler process -> Redis/BullMQ -> two agent
 * processes -> real child processes answering HTTP.
 */

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;
const web = (replicas: number | string, greeting = 'hi') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: server
          command: ["node", "-e"]
          args:
            - "require('http').createServer((q, s) => { console.log('GET ' + q.url); s.end(process.env.GANTRY_INSTANCE_ID + ' ' + process.env.GREETING); }).listen(+process.env.PORT, () => console.log('listening on ' + process.env.PORT))"
          env:
            - name: GREETING
              value: "${greeting}"
          ports:
            - name: http
              containerPort: 8080
          resources:
            cpu: 100m
            memory: 32Mi
`;

let repo: TestRepo;
let dataDir: string;
let api: string;
let redisUrl: string;
let prefix: string;
const procs: GantryProcess[] = [];
const agents = new Map<string, GantryProcess>();

async function get<T>(path: string): Promise<T> {
  const res = await apiFetch(api + path);
  assert.equal(res.status, 200, `GET ${path}`);
  return (await res.json()) as T;
}
const instances = async () => (await get<{ items: InstanceView[] }>('/api/v1/instances')).items;
const running = async () => (await instances()).filter((i) => i.phase === 'Running');

function startAgent(node: string): GantryProcess {
  const p = spawnGantry(['agent', '--node', node, '--redis', redisUrl, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '2', '--memory', '1Gi', '--heartbeat', '1s', '--stop-instances-on-exit']);
  agents.set(node, p);
  procs.push(p);
  return p;
}

before(async () => {
  redisUrl = (await testRedis()).url;
  prefix = freshPrefix();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-e2e-'));
  repo = await createRepo();
  await repo.commitFiles({ 'namespaces.yaml': NAMESPACE, 'README.md': '# not a manifest' }, 'namespace');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  procs.push(spawnGantry(['reconciler', '--redis', redisUrl, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--resync', '2s']));
  startAgent('node-1');
  startAgent('node-2');
  // Both nodes first: replicas committed while only one node is up would all (rightly) go there.
  await waitFor(async () => {
    const res = await apiFetch(api + '/api/v1/nodes').catch(() => undefined);
    const nodes = res?.ok ? ((await res.json()) as { items: { ready: boolean }[] }).items : [];
    return nodes.length === 2 && nodes.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
});

after(async () => {
  // Agents stop their instances on the way out, so nothing outlives the test.
  for (const a of agents.values()) a.child.kill('SIGTERM');
  await Promise.all(procs.map((p) => p.stop()));
  await repo?.cleanup();
  const left = procs.map((p) => p.output()).join('\n');
  if (process.env.GANTRY_TEST_VERBOSE) console.log(left);
  rmSync(dataDir, { recursive: true, force: true });
});

test('a commit of 3 replicas runs 3 processes across 2 nodes, each answering HTTP on its reported port', async () => {
  await repo.commitFiles({ 'apps/web.yaml': web(3) }, 'web: 3 replicas');
  const live = await waitFor(async () => {
    const r = await running();
    return r.length === 3 ? r : undefined;
  }, { timeoutMs: 30_000, what: '3 running instances' });
  assert.deepEqual(new Set(live.map((i) => i.node)), new Set(['node-1', 'node-2']));
  for (const i of live) {
    const body = await waitFor(() => httpGet(i.ports[0]!.hostPort), { what: `HTTP from ${i.id}` });
    assert.equal(body, `${i.id} hi`);
  }
  const deps = await waitFor(async () => {
    const d = (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items;
    return d[0]?.ready === 3 ? d : undefined;
  }, { what: 'deployment status ready 3' });
  assert.equal(deps[0]!.name, 'web');
  assert.equal(deps[0]!.observedCommit, deps[0]!.commit);
  assert.ok(deps[0]!.conditions.some((c) => c.type === 'Available' && c.status === 'True'));
  const nodes = (await get<{ items: { name: string; ready: boolean }[] }>('/api/v1/nodes')).items;
  assert.deepEqual(nodes.map((n) => [n.name, n.ready]), [['node-1', true], ['node-2', true]]);
});

test('gantry logs prints an instance\'s output, --tail limits it, -f follows it', async () => {
  const [inst] = await running();
  const all = await runGantry(['logs', inst!.id, '--api', api]);
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trimEnd().split('\n');
  assert.equal(lines[0], `listening on ${inst!.ports[0]!.hostPort}`);
  assert.ok(lines.length >= 2 && lines.slice(1).every((l) => l === 'GET /'), all.stdout);
  const tail = await runGantry(['logs', inst!.id, '--tail', '1', '--api', api]);
  assert.equal(tail.stdout, 'GET /\n');
  const follow = spawnGantry(['logs', inst!.id, '-f', '--api', api]);
  try {
    await waitFor(() => follow.output().includes('listening on'), { what: 'follow started' });
    await (await fetch(`http://127.0.0.1:${inst!.ports[0]!.hostPort}/followed-1`)).text();
    await waitFor(() => follow.output().includes('GET /followed-1'), { what: 'followed line' });
  } finally {
    await follow.stop('SIGINT');
  }
  const missing = await runGantry(['logs', 'default.nope-0123456789-0', '--api', api]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /instance default\.nope-0123456789-0 not found/);
});

test('an agent killed while its instances run is restarted and adopts them: nothing restarts or duplicates', async () => {
  const before = await running();
  const onNode1 = before.filter((i) => i.node === 'node-1');
  assert.ok(onNode1.length > 0);
  // SIGKILL: the agent gets no chance to stop anything, as in a crash.
  await agents.get('node-1')!.stop('SIGKILL');
  for (const i of onNode1) assert.ok(pidAlive(i.pid!), `instance ${i.id} kept running while its agent was down`);
  startAgent('node-1');
  await waitFor(async () => (await get<{ items: { name: string; ready: boolean }[] }>('/api/v1/nodes')).items.every((n) => n.ready), { what: 'nodes ready' });
  // The new agent has looked at every instance of its node once it logged their adoption.
  const restarted = agents.get('node-1')!;
  await waitFor(() => onNode1.every((i) => restarted.output().includes(`adopted ${i.id}`)), { what: 'adoption by the new agent' });
  for (const i of onNode1) assert.equal(processGroupsOf(i.id).size, 1, `one copy of ${i.id}`);
  const afterRestart = await waitFor(async () => {
    const r = await running();
    return r.length === 3 ? r : undefined;
  }, { what: '3 running after restart' });
  assert.deepEqual(afterRestart.map((i) => [i.id, i.pid, i.restarts]).sort(), before.map((i) => [i.id, i.pid, i.restarts]).sort());
});

test('committing replicas: 1 stops two processes', async () => {
  const before = await running();
  await repo.commitFiles({ 'apps/web.yaml': web(1) }, 'web: 1 replica');
  const left = await waitFor(async () => {
    const all = await instances();
    return all.length === 1 && all[0]!.phase === 'Running' ? all : undefined;
  }, { what: 'one instance left' });
  const gone = before.filter((i) => i.id !== left[0]!.id);
  assert.equal(gone.length, 2);
  await waitFor(() => gone.every((i) => !pidAlive(i.pid!)), { what: 'two processes gone' });
  assert.equal(await httpGet(left[0]!.ports[0]!.hostPort), `${left[0]!.id} hi`);
});

test('a broken manifest is rejected with file:line and the previous state keeps serving', async () => {
  const [serving] = await running();
  const bad = await repo.commitFiles({ 'apps/web.yaml': web('"three"') }, 'broken');
  const status = await waitFor(async () => {
    const s = (await get<{ source: { rejectedCommit?: string; errors?: string[]; lastAppliedCommit?: string } }>('/api/v1/status')).source;
    return s.rejectedCommit === bad ? s : undefined;
  }, { what: 'commit rejected' });
  assert.match(status.errors![0]!, /^apps\/web\.yaml:7:13 Deployment shop\/web \/spec\/replicas: must be integer/);
  assert.notEqual(status.lastAppliedCommit, bad);
  // The deployment's status is recomputed right after the rejection: wait for it.
  await waitFor(async () => {
    const deps = (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items;
    return deps[0]!.conditions.some((c) => c.type === 'SourceRejected' && c.status === 'True' && c.message.includes('apps/web.yaml:7:13'));
  }, { what: 'SourceRejected condition' });
  const all = await running();
  assert.deepEqual(all.map((i) => [i.id, i.pid]), [[serving!.id, serving!.pid]]);
  assert.equal(await httpGet(serving!.ports[0]!.hostPort), `${serving!.id} hi`);
});

test('deleting the manifest prunes the deployment and stops its processes', async () => {
  const [serving] = await running();
  await repo.commitFiles({ 'apps/web.yaml': null }, 'remove web');
  await waitFor(async () => (await instances()).length === 0, { what: 'no instances' });
  await waitFor(async () => (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items.length === 0, { what: 'no deployments' });
  await waitFor(() => !pidAlive(serving!.pid!), { what: 'process gone' });
  const s = (await get<{ source: { rejectedCommit?: string } }>('/api/v1/status')).source;
  assert.equal(s.rejectedCommit, undefined);
});
