import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import { httpGet } from '../helpers/agent-fixtures.ts';
import { dockerTest, dockerUnavailable, gantryContainers, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/**
 * Docker end to end: a Git commit of a Deployment with an image -> reconciler process -> two agent
 * processes running real containers on the engine, answering HTTP on their reported host ports.
 * A third agent has no engine (DOCKER_HOST points nowhere), so it offers only processes.
 */

// Node names of their own: other suites' agents (node-1...) share this engine.
const tag = randomUUID().slice(0, 6);
const [NODE_A, NODE_B, NODE_C] = ['a', 'b', 'c'].map((n) => `dk-${tag}-${n}`) as [string, string, string];

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;
/** The documented example: 3 replicas of busybox httpd, each serving "hello from <instance id>". */
const web = readFileSync(fileURLToPath(new URL('../../docs/examples/docker-web.yaml', import.meta.url)), 'utf8');
/** Only the engine-less node matches: nothing can place it. */
const stuck = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: stuck
  namespace: shop
spec:
  template:
    metadata:
      labels:
        app: stuck
    spec:
      nodeSelector:
        docker: none
      containers:
        - name: main
          image: ${TEST_IMAGE}
          command: ["sleep", "3600"]
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
const instances = async (namespace: string, deployment: string) => (await get<{ items: InstanceView[] }>(`/api/v1/instances?namespace=${namespace}&deployment=${deployment}`)).items;

function startAgent(node: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): GantryProcess {
  const p = spawnGantry(['agent', '--node', node, '--redis', redisUrl, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '2', '--memory', '1Gi', '--heartbeat', '1s', '--stop-instances-on-exit', ...extra], { env });
  agents.set(node, p);
  procs.push(p);
  return p;
}

before(async () => {
  if (dockerUnavailable) return;
  redisUrl = (await testRedis()).url;
  prefix = freshPrefix();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-e2e-docker-'));
  repo = await createRepo();
  await repo.commitFiles({ 'namespaces.yaml': NAMESPACE }, 'namespace');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  procs.push(spawnGantry(['reconciler', '--redis', redisUrl, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--resync', '2s']));
  startAgent(NODE_A);
  startAgent(NODE_B);
  startAgent(NODE_C, ['--labels', 'docker=none'], { DOCKER_HOST: `unix://${join(dataDir, 'no-docker.sock')}` });
  await waitFor(async () => {
    const res = await apiFetch(api + '/api/v1/nodes').catch(() => undefined);
    const nodes = res?.ok ? ((await res.json()) as { items: NodeView[] }).items : [];
    return nodes.length === 3 && nodes.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'three ready nodes' });
});

after(async () => {
  // Agents stop their containers on the way out; the label sweep catches anything a failure left.
  await Promise.all(procs.map((p) => p.stop()));
  for (const node of [NODE_A, NODE_B, NODE_C]) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
  await repo?.cleanup();
  if (process.env.GANTRY_TEST_VERBOSE) console.log(procs.map((p) => p.output()).join('\n'));
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

dockerTest('nodes with an engine offer docker; the one without offers only processes', async () => {
  const nodes = (await get<{ items: NodeView[] }>('/api/v1/nodes')).items;
  assert.deepEqual(Object.fromEntries(nodes.map((n) => [n.name, n.runtimes])), { [NODE_A]: ['process', 'docker'], [NODE_B]: ['process', 'docker'], [NODE_C]: ['process'] });
});

dockerTest('the documented example (3 replicas with an image) runs 3 containers on the docker nodes, each answering HTTP', async () => {
  await repo.commitFiles({ 'apps/docker-web.yaml': web }, 'docker-web: 3 containers');
  const live = await waitFor(async () => {
    const r = (await instances('default', 'docker-web')).filter((i) => i.phase === 'Running');
    return r.length === 3 ? r : undefined;
  }, { timeoutMs: 60_000, what: '3 running containers' });
  assert.deepEqual(new Set(live.map((i) => i.node)), new Set([NODE_A, NODE_B]));
  for (const i of live) {
    assert.equal(i.ports[0]!.containerPort, 8080);
    const body = await waitFor(() => httpGet(i.ports[0]!.hostPort), { what: `HTTP from ${i.id}` });
    assert.equal(body, `hello from ${i.id}\n`);
    const [c] = await gantryContainers(i.node!, i.id);
    assert.equal(c?.Labels['dev.gantry.namespace'], 'default');
    assert.equal(c?.Labels['dev.gantry.deployment'], 'docker-web');
    assert.equal(c?.Labels['dev.gantry.revision'], i.revision);
  }
  // Logs through the API, proxied to the agent of the instance's node.
  const [one] = live;
  const logs = await waitFor(async () => {
    const res = await apiFetch(`${api}/api/v1/instances/${one!.id}/logs?tail=10`);
    const text = res.status === 200 ? await res.text() : '';
    return text.includes('listening') ? text : undefined;
  }, { what: 'logs through the API' });
  // Inside the container PORT is the containerPort; Docker maps the host port to it.
  assert.equal(logs, `${one!.id} on node ${one!.node}, listening on 8080 (also PORT_HTTP=8080)\n`);
});

dockerTest('an agent killed while its containers run adopts them on restart: same containers, no restart', async () => {
  const before = (await instances('default', 'docker-web')).filter((i) => i.node === NODE_A);
  assert.ok(before.length > 0);
  const ids = new Map(await Promise.all(before.map(async (i) => [i.id, (await gantryContainers(NODE_A, i.id)).map((c) => c.Id)] as const)));
  await agents.get(NODE_A)!.stop('SIGKILL');
  const restarted = startAgent(NODE_A);
  await waitFor(() => before.every((i) => restarted.output().includes(`adopted ${i.id}`)), { timeoutMs: 30_000, what: 'adoption by the new agent' });
  for (const i of before) {
    assert.deepEqual((await gantryContainers(NODE_A, i.id)).map((c) => c.Id), ids.get(i.id));
    const now = (await instances('default', 'docker-web')).find((x) => x.id === i.id)!;
    assert.equal(now.restarts, 0);
    assert.equal(await waitFor(() => httpGet(now.ports[0]!.hostPort)), `hello from ${i.id}\n`);
  }
});

dockerTest('a rolling update of containers keeps within maxSurge/maxUnavailable and removes the old containers', async () => {
  const before = await instances('default', 'docker-web');
  const oldRevision = before[0]!.revision;
  const oldContainers = (await Promise.all(before.map((i) => gantryContainers(i.node!, i.id)))).flat().map((c) => c.Id);
  const samples: { total: number; running: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const all = await instances('default', 'docker-web');
      samples.push({ total: all.length, running: all.filter((i) => i.phase === 'Running').length });
    }
  })();
  await repo.commitFiles({ 'apps/docker-web.yaml': web.replace("set in the container's environment", 'changed: a new revision') }, 'docker-web: new revision');
  const after = await waitFor(async () => {
    const all = await instances('default', 'docker-web');
    return all.length === 3 && all.every((i) => i.phase === 'Running' && i.revision !== oldRevision) ? all : undefined;
  }, { timeoutMs: 60_000, what: '3 containers of the new revision' });
  sampling = false;
  await sampler;
  // 3 replicas at 25%/25%: surge 1 (rounded up), unavailable 0 (rounded down).
  assert.ok(samples.length > 5);
  assert.ok(samples.every((x) => x.total <= 4), `more than 4 instances: ${JSON.stringify(samples.find((x) => x.total > 4))}`);
  assert.ok(samples.every((x) => x.running >= 3), `fewer than 3 running: ${JSON.stringify(samples.find((x) => x.running < 3))}`);
  for (const i of after) assert.equal(await waitFor(() => httpGet(i.ports[0]!.hostPort)), `hello from ${i.id}\n`);
  await waitFor(async () => {
    const live = [...(await gantryContainers(NODE_A)), ...(await gantryContainers(NODE_B))].map((c) => c.Id);
    return oldContainers.every((id) => !live.includes(id));
  }, { timeoutMs: 30_000, what: 'old containers removed' });
});

dockerTest('an image deployment whose only matching node has no engine stays pending: runtime not offered', async () => {
  await repo.commitFiles({ 'apps/stuck.yaml': stuck }, 'stuck: needs docker on a node without it');
  const [pending] = await waitFor(async () => {
    const r = await instances('shop', 'stuck');
    return r.length === 1 && r[0]!.reason === 'Unschedulable' ? r : undefined;
  }, { timeoutMs: 30_000, what: 'stuck instance unschedulable' });
  assert.equal(pending!.node, null);
  assert.equal(pending!.phase, 'Pending');
  assert.match(pending!.message!, /1 runtime not offered/);
  assert.equal((await gantryContainers(NODE_C)).length, 0);
});

dockerTest('removing the manifest removes its containers', async () => {
  await repo.commitFiles({ 'apps/docker-web.yaml': null, 'apps/stuck.yaml': null }, 'remove all');
  await waitFor(async () => (await instances('default', 'docker-web')).length === 0, { timeoutMs: 30_000, what: 'no docker-web instances' });
  await waitFor(async () => (await gantryContainers(NODE_A)).length + (await gantryContainers(NODE_B)).length === 0, { timeoutMs: 30_000, what: 'containers removed' });
});
