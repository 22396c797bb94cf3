import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createServer, type Server } from 'node:net';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { ServiceView } from '../../reconciler/services/service-views.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { accepts, call } from '../helpers/tcp.ts';

/**
 * Services end to end on real processes: a reconciler and two agent processes, each agent on its
 * own loopback address (127.0.0.2, 127.0.0.3) so both proxies can listen on the same service port,
 * as two hosts would. Replicas answer with their instance id and the service env they started with.
 */

const NODE_ADDRESS: Record<string, string> = { 'node-1': '127.0.0.2', 'node-2': '127.0.0.3' };

const web = (replicas: number, greeting = 'v1', strategy = '{ type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: ${replicas}
  strategy: ${strategy}
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e"]
          args:
            - "require('http').createServer((q, s) => s.end([process.env.GANTRY_INSTANCE_ID, process.env.WEB_SERVICE_HOST + ':' + process.env.WEB_SERVICE_PORT, process.env.GREETING].join(' '))).listen(+process.env.PORT)"
          env: [{ name: GREETING, value: "${greeting}" }]
          ports: [{ name: http, containerPort: 8080 }]
          resources: { cpu: 50m, memory: 16Mi }
`;
const service = (name: string, ports: number[]) => `apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
  selector: { app: web }
  ports:
${ports.map((p, i) => `    - { name: p${i}, port: ${p}, targetPort: http }`).join('\n')}
`;

let c: TestCluster;
let svcPort: number;

async function services(): Promise<ServiceView[]> {
  return (await c.get<{ items: ServiceView[] }>('/api/v1/services')).items;
}
const svc = async (name: string) => (await services()).find((s) => s.name === name);
const idOf = (body: string) => body.split(' ')[0]!;

/** `n` calls through one proxy; how many each instance answered. Any failed call fails the test. */
async function spread(host: string, n: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = idOf(await call(host, svcPort));
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

async function readyInstances(n: number): Promise<InstanceView[]> {
  return waitFor(async () => {
    const all = await c.instances();
    return all.length === n && all.every((i) => i.phase === 'Running') ? all : undefined;
  }, { timeoutMs: 30_000, what: `${n} running instances` });
}

async function endpointsAre(ids: string[]): Promise<ServiceView> {
  const want = [...ids].sort().join(',');
  return waitFor(async () => {
    const s = await svc('web');
    return s && s.endpoints.map((e) => e.instanceId).sort().join(',') === want ? s : undefined;
  }, { timeoutMs: 15_000, what: `endpoints ${want}` });
}

before(async () => {
  c = await startCluster({ nodes: [], reconcilerFlags: ['--resync', '2s'] });
  for (const [node, address] of Object.entries(NODE_ADDRESS)) c.startAgent(node, ['--address', address]);
  await waitFor(async () => {
    const items = await c.get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
  svcPort = await freePort();
});

after(async () => {
  if (process.env.GANTRY_TEST_VERBOSE) for (const a of c.agents.values()) console.log(a.output());
  await c?.stop();
});

test('a Service over 3 replicas answers through either agent, spreading 300 requests over all 3', async () => {
  // The Service first: instances get the env of the services that exist when they start.
  await c.repo.commitFiles({ 'web-svc.yaml': service('web', [svcPort]) }, 'service web');
  for (const address of Object.values(NODE_ADDRESS)) await waitFor(() => accepts(address, svcPort), { what: `proxy listening on ${address}:${svcPort}` });
  await c.repo.commitFiles({ 'web.yaml': web(3) }, 'web: 3 replicas');
  const live = await readyInstances(3);
  await endpointsAre(live.map((i) => i.id));
  // Running is not listening yet: wait until every replica has answered once through each proxy.
  for (const address of Object.values(NODE_ADDRESS)) {
    // Starting processes under a loaded suite can take a while: the same 30 s the instances get.
    await waitFor(async () => (await spread(address, 6).catch(() => new Map())).size === 3, { timeoutMs: 30_000, what: `3 replicas answering through ${address}` });
  }
  const counts = await spread(NODE_ADDRESS['node-1']!, 300);
  assert.deepEqual([...counts.keys()].sort(), live.map((i) => i.id).sort());
  // Round robin over 3: 100 each (a connection that raced a start would only shift a few).
  for (const [id, n] of counts) assert.ok(n >= 90 && n <= 110, `${id} answered ${n} of 300`);
  // Through the other agent too; each replica was started knowing the service's address.
  const body = await call(NODE_ADDRESS['node-2']!, svcPort);
  const inst = live.find((i) => i.id === idOf(body))!;
  assert.equal(body, `${inst.id} ${NODE_ADDRESS[inst.node!]}:${svcPort} v1`);
  const table = await runGantry(['get', 'services', '--api', c.api]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAMESPACE\s+NAME\s+PORTS\s+ENDPOINTS\s+CONDITIONS/);
  assert.match(table.stdout, new RegExp(`default\\s+web\\s+${svcPort}->http\\s+127\\.0\\.0\\.[23]:\\d+`));
});

test('scaling to 5 adds the new replicas to the rotation', async () => {
  await c.repo.commitFiles({ 'web.yaml': web(5) }, 'web: 5 replicas');
  const live = await readyInstances(5);
  await endpointsAre(live.map((i) => i.id));
  const counts = await waitFor(async () => {
    const m = await spread(NODE_ADDRESS['node-2']!, 100);
    return m.size === 5 ? m : undefined;
  }, { timeoutMs: 30_000, what: 'all 5 replicas answering through the proxy' });
  assert.deepEqual([...counts.keys()].sort(), live.map((i) => i.id).sort());
});

test('a killed replica leaves the rotation within a second, and no request fails once it is out', async () => {
  const live = await readyInstances(5);
  const victim = live[0]!;
  // The kubelet-style backoff restarts a first crash at once; the second waits: kill it twice.
  process.kill(-victim.pid!, 'SIGKILL');
  const restarted = await waitFor(async () => (await c.instances()).find((i) => i.id === victim.id && i.phase === 'Running' && i.pid !== victim.pid), { what: `${victim.id} restarted` });
  const t0 = Date.now();
  process.kill(-restarted.pid!, 'SIGKILL');
  await waitFor(async () => !(await svc('web'))!.endpoints.some((e) => e.instanceId === victim.id), { timeoutMs: 1_000, intervalMs: 10, what: `${victim.id} out of the endpoints within 1 s` });
  const tookMs = Date.now() - t0;
  // It may come back once restarted; until then the other four answer every request.
  const counts = await spread(NODE_ADDRESS['node-1']!, 100);
  assert.equal([...counts.values()].reduce((a, b) => a + b, 0), 100);
  assert.ok(tookMs <= 1_000, `removed after ${tookMs} ms`);
});

test('a canary at weight 20 gets 20% of 500 connections (tolerance: 15-25%)', async () => {
  const canary = '{ type: Canary, steps: [ { setWeight: 20 }, { pause: {} } ] }';
  await c.repo.commitFiles({ 'web.yaml': web(5, 'v2', canary) }, 'web v2 as a canary');
  const s = await waitFor(async () => {
    const v = await svc('web');
    if (!v?.split || v.endpoints.length !== 5) return undefined;
    const onCanary = v.endpoints.filter((e) => e.revision === v.split!.canaryRevision).length;
    // Settled: exactly the 5 instances of the split run (no stable one still on its way out).
    const all = (await c.instances()).filter((i) => i.deployment === 'web');
    return onCanary === 1 && all.length === 5 && all.every((i) => i.phase === 'Running') ? v : undefined;
  }, { timeoutMs: 30_000, what: '4 stable + 1 canary endpoints with a split' });
  assert.equal(s.split!.weight, 20);
  let toCanary = 0;
  for (let i = 0; i < 500; i++) if ((await call(NODE_ADDRESS['node-1']!, svcPort)).endsWith(' v2')) toCanary++;
  // The split is deterministic (every 5th connection): 100 unless the endpoint set moved meanwhile.
  assert.ok(toCanary >= 75 && toCanary <= 125, `${toCanary} of 500 connections went to the canary`);
});

test('two Services on one port: the second gets PortConflict, the first keeps working; a port taken on a host is reported', async () => {
  const otherPort = await freePort();
  const hostPort = await freePort();
  // Something else holds hostPort on node-2's address.
  const squatter: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => squatter.listen(hostPort, NODE_ADDRESS['node-2'], r));
  try {
    await c.repo.commitFiles({ 'zz-svc.yaml': service('zz-other', [svcPort, otherPort]), 'zz-host.yaml': service('zz-host', [hostPort]) }, 'conflicting services');
    const other = await waitFor(async () => {
      const v = await svc('zz-other');
      return v?.conditions.some((x) => x.type === 'PortConflict') ? v : undefined;
    }, { what: 'PortConflict on zz-other' });
    const cond = other.conditions.find((x) => x.type === 'PortConflict')!;
    assert.equal(cond.status, 'True');
    assert.match(cond.message, new RegExp(`port ${svcPort} is already used by service default/web`));
    assert.deepEqual(other.listen, [otherPort]);
    assert.ok(!(await svc('web'))!.conditions.some((x) => x.type === 'PortConflict'));
    for (let i = 0; i < 20; i++) assert.match(await call(NODE_ADDRESS['node-2']!, svcPort), / v[12]$/);
    // Its free port works on both agents.
    for (const address of Object.values(NODE_ADDRESS)) await waitFor(() => accepts(address, otherPort), { what: `zz-other on ${address}:${otherPort}` });
    const host = await waitFor(async () => (await svc('zz-host'))?.conditions.find((x) => x.type === 'PortUnavailable'), { what: 'PortUnavailable on zz-host' });
    assert.match(host.message, new RegExp(`node node-2: port ${hostPort}: EADDRINUSE`));
    await waitFor(() => accepts(NODE_ADDRESS['node-1']!, hostPort), { what: 'zz-host listening on node-1' });
    const table = await runGantry(['get', 'services', '--api', c.api]);
    assert.match(table.stdout, /zz-other\s.*PortConflict: port \d+ is already used by service default\/web/);
  } finally {
    squatter.close();
  }
});

test('removing a Service from Git stops its listeners on every agent', async () => {
  const otherPort = (await svc('zz-other'))!.listen[0]!;
  await c.repo.commitFiles({ 'zz-svc.yaml': null, 'zz-host.yaml': null }, 'remove the other services');
  for (const address of Object.values(NODE_ADDRESS)) await waitFor(async () => !(await accepts(address, otherPort)), { what: `${address}:${otherPort} closed` });
  assert.match(await call(NODE_ADDRESS['node-1']!, svcPort), / v[12]$/);
  await c.repo.commitFiles({ 'web-svc.yaml': null }, 'remove service web');
  for (const address of Object.values(NODE_ADDRESS)) await waitFor(async () => !(await accepts(address, svcPort)), { what: `${address}:${svcPort} closed` });
  assert.deepEqual(await services(), []);
});
