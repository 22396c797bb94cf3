import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort } from '../../cli/redis-server.ts';
import type { NodeView } from '../../reconciler/api/views.ts';
import { TEST_ADMIN_TOKEN, TEST_READ_TOKEN } from '../helpers/api-auth.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { parseExposition, type Exposition } from '../helpers/prometheus-text.ts';
import { waitFor } from '../helpers/wait.ts';
import { accepts, call } from '../helpers/tcp.ts';

/**
 * /metrics of the reconciler and of each agent, scraped from real processes as Prometheus scrapes
 * them and read with a strict parser of the text format: what a commit, a rejected commit, two
 * starts and requests through a Service show, with bounded labels and no secret.
 */

const NODES: Record<string, { address: string; logsPort: number }> = {};
let c: TestCluster;
let svcPort: number;

const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 2
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT)"]
          ports: [{ name: http, containerPort: 8080 }]
          resources: { cpu: 50m, memory: 16Mi }
`;
const service = (port: number) => `apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ name: http, port: ${port}, targetPort: http }]
`;

async function scrape(url: string, token?: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

async function reconcilerMetrics(): Promise<Exposition> {
  const r = await scrape(`${c.api}/metrics`, TEST_READ_TOKEN);
  assert.equal(r.status, 200, r.body);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

async function agentMetrics(node: string): Promise<{ body: string; m: Exposition }> {
  const { address, logsPort } = NODES[node]!;
  const r = await scrape(`http://${address}:${logsPort}/metrics`);
  assert.equal(r.status, 200, r.body);
  return { body: r.body, m: parseExposition(r.body) };
}

before(async () => {
  c = await startCluster({ nodes: [], reconcilerFlags: ['--resync', '2s'] });
  for (const [node, address] of [['node-1', '127.0.0.2'], ['node-2', '127.0.0.3']] as const) {
    NODES[node] = { address, logsPort: await freePort() };
    c.startAgent(node, ['--address', address, '--logs-port', String(NODES[node]!.logsPort)]);
  }
  await waitFor(async () => {
    const items = await c.get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
  svcPort = await freePort();
});

after(async () => {
  await c?.stop();
});

test('the reconciler serves /metrics to read tokens only', async () => {
  assert.equal((await scrape(`${c.api}/metrics`)).status, 401);
  assert.equal((await scrape(`${c.api}/metrics`, 'gantry_not_a_token')).status, 401);
  const m = await reconcilerMetrics();
  assert.equal(m.types.get('gantry_commits_total'), 'counter');
  assert.equal(m.types.get('gantry_reconcile_duration_seconds'), 'histogram');
  assert.equal(m.sum('gantry_reconciler_info'), 1);
  // Process metrics of the reconciler itself.
  assert.ok(m.sum('gantry_reconciler_process_resident_memory_bytes') > 0);
});

test('a commit, two starts, requests through a Service and a rejected commit show in both scrapes', async () => {
  // The Service alone first: a connection to its proxy then finds no endpoint (an error counted).
  await c.repo.commitFiles({ 'web-svc.yaml': service(svcPort) }, 'service web');
  await waitFor(() => accepts(NODES['node-1']!.address, svcPort), { timeoutMs: 15_000, what: 'the proxy listening on node-1' });
  await c.repo.commitFiles({ 'web.yaml': web }, 'web: 2 replicas');
  await waitFor(async () => {
    const all = await c.instances();
    return all.length === 2 && all.every((i) => i.phase === 'Running');
  }, { timeoutMs: 30_000, what: '2 running instances' });
  // Through node-1's proxy: the endpoints may take a moment to reach it.
  await waitFor(() => call(NODES['node-1']!.address, svcPort).then((b) => b === 'ok', () => false), { timeoutMs: 15_000, what: 'the service answering on node-1' });
  for (let i = 0; i < 5; i++) assert.equal(await call(NODES['node-1']!.address, svcPort), 'ok');

  await c.repo.commitFiles({ 'broken.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: broken }\nspec: { replicas: many }\n' }, 'broken');
  const m = await waitFor(async () => {
    const r = await reconcilerMetrics();
    return r.sum('gantry_commits_total', { result: 'rejected' }) >= 1 && r.sum('gantry_instances', { phase: 'Running' }) === 2 ? r : undefined;
  }, { timeoutMs: 15_000, what: 'the rejected commit and 2 Running instances in the reconciler metrics' });
  assert.ok(m.sum('gantry_commits_total', { result: 'applied' }) >= 1);
  assert.ok(m.sum('gantry_source_sync_duration_seconds_count', { outcome: 'applied' }) >= 1);
  assert.ok(m.sum('gantry_source_sync_duration_seconds_count', { outcome: 'rejected' }) >= 1);
  assert.ok(m.sum('gantry_scheduling_attempts_total', { result: 'scheduled' }) >= 2);
  assert.ok(m.sum('gantry_scheduling_duration_seconds_count') >= 1);
  assert.ok(m.sum('gantry_reconcile_duration_seconds_count') >= 1);
  assert.ok(m.sum('gantry_reconcile_queue_latency_seconds_count') >= 1);
  assert.ok(m.samples.some((s) => s.name === 'gantry_reconcile_queue_depth' && s.labels.state === 'waiting'));
  assert.equal(m.sum('gantry_nodes', { ready: 'true', schedulable: 'true' }), 2);
  assert.equal(m.sum('gantry_deployments'), 1);
  assert.ok(m.sum('gantry_events_total', { type: 'Warning', reason: 'CommitRejected' }) >= 1);

  const agents = await Promise.all(Object.keys(NODES).map(agentMetrics));
  const total = (name: string, labels?: Record<string, string>) => agents.reduce((s, a) => s + a.m.sum(name, labels), 0);
  assert.equal(total('gantry_agent_container_starts_total', { runtime: 'process', result: 'started' }), 2);
  assert.equal(total('gantry_agent_container_start_duration_seconds_count', { runtime: 'process' }), 2);
  assert.equal(total('gantry_agent_instances', { phase: 'Running' }), 2);
  assert.equal(total('gantry_agent_info'), 2);
  const node1 = agents[0]!.m;
  assert.ok(node1.sum('gantry_agent_service_proxy_connections_total', { protocol: 'tcp' }) >= 5);
  assert.ok(node1.sum('gantry_agent_service_proxy_errors_total', { protocol: 'tcp', reason: 'no_endpoint' }) >= 1);
  assert.equal(node1.sum('gantry_agent_service_proxy_errors_total', { reason: 'reset' }), 0);

  // Bounded labels: no instance id names a series; and no secret is in any scrape.
  const ids = (await c.instances()).map((i) => i.id);
  const bodies = [...agents.map((a) => a.body), (await scrape(`${c.api}/metrics`, TEST_READ_TOKEN)).body];
  for (const body of bodies) {
    for (const id of ids) assert.ok(!body.includes(id), `a series names instance ${id}`);
    for (const secret of [TEST_ADMIN_TOKEN, TEST_READ_TOKEN]) assert.ok(!body.includes(secret), 'a token is in a scrape');
  }
});
