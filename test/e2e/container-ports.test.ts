import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSocket } from 'node:dgram';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { ServiceView } from '../../reconciler/services/service-views.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Container ports end to end on a one-node cluster (reconciler and agent as separate processes,
 * real processes and sockets): a hostPort is honoured and keeps a second replica that needs it
 * pending with kube-scheduler's reason, and a UDP Service reaches the UDP container port.
 */

const ADDRESS = '127.0.0.62';

const SERVER = [
  'const id = process.env.GANTRY_INSTANCE_ID;',
  "require('http').createServer((q, s) => s.end(id)).listen(+process.env.PORT_HTTP);",
  "const u = require('dgram').createSocket('udp4');",
  "u.on('message', (m, r) => u.send(id + ' ' + m, r.port, r.address));",
  'u.bind(+process.env.PORT_ECHO);',
].join(' ');

const manifests = (hostPort: number, servicePort: number) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: edge }
spec:
  replicas: 2
  selector: { matchLabels: { app: edge } }
  template:
    metadata: { labels: { app: edge } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", ${JSON.stringify(SERVER)}]
          ports:
            - { name: http, containerPort: 8080, hostPort: ${hostPort} }
            - { name: echo, containerPort: 5353, protocol: UDP }
          resources: { requests: { cpu: 50m, memory: 16Mi } }
---
apiVersion: v1
kind: Service
metadata: { name: edge }
spec:
  selector: { app: edge }
  ports: [{ name: echo, port: ${servicePort}, targetPort: echo, protocol: UDP }]
`;

let c: TestCluster;

async function datagram(port: number, message: string): Promise<string | undefined> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1_000);
      s.once('message', (reply) => {
        clearTimeout(timer);
        resolve(reply.toString());
      });
      s.send(message, port, ADDRESS);
    });
  } finally {
    s.close();
  }
}

before(async () => {
  c = await startCluster({ nodes: [] });
  c.startAgent('node-1', ['--address', ADDRESS]);
  await waitFor(async () => {
    const items = await c.get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === 1 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'one ready node' });
});

after(async () => {
  if (process.env.GANTRY_TEST_VERBOSE) for (const a of c.agents.values()) console.log(a.output());
  await c?.stop();
});

test('a hostPort on a one-node cluster: one replica runs on it, the other stays pending with the reason; a UDP Service reaches the UDP port', async () => {
  const [hostPort, servicePort] = [await freePort(), await freePort()];
  await c.repo.commitFiles({ 'edge.yaml': manifests(hostPort, servicePort) }, 'edge: hostPort and UDP');
  const [runs, waits] = await waitFor(async () => {
    const all = (await c.instances()).filter((i: InstanceView) => i.deployment === 'edge');
    const running = all.filter((i) => i.phase === 'Running');
    const pending = all.filter((i) => !i.node && i.message);
    return all.length === 2 && running.length === 1 && pending.length === 1 ? [running[0]!, pending[0]!] : undefined;
  }, { timeoutMs: 30_000, what: 'one running replica and one pending' });
  assert.equal(waits.reason, 'Unschedulable');
  assert.equal(waits.message, "0/1 nodes available: 1 node(s) didn't have free ports for the requested pod ports");
  assert.deepEqual(runs.ports.find((p) => p.name === 'http'), { name: 'http', containerPort: 8080, hostPort });
  const echo = runs.ports.find((p) => p.name === 'echo') as InstanceView['ports'][number] & { protocol?: string };
  assert.equal(echo.protocol, 'UDP');
  const body = await waitFor(async () => (await fetch(`http://${ADDRESS}:${hostPort}/`, { signal: AbortSignal.timeout(2_000) })).text(), { what: 'HTTP on the hostPort' });
  assert.equal(body, runs.id);

  // The UDP Service's targetPort is the UDP container port: its endpoint is that host port.
  const svc = await waitFor(async () => (await c.get<{ items: ServiceView[] }>('/api/v1/services')).items.find((s) => s.name === 'edge' && s.endpoints.length === 1), { what: 'edge with its endpoint' });
  assert.equal(svc.endpoints[0]!.ports[`${servicePort}/UDP`], echo.hostPort);
  assert.equal(await waitFor(() => datagram(servicePort, 'hi'), { what: 'UDP through the service', timeoutMs: 20_000 }), `${runs.id} hi`);
});
