import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSocket } from 'node:dgram';
import { request } from 'node:http';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { ServiceView } from '../../reconciler/services/service-views.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * NodePort and UDP Services end to end on real processes: a reconciler and two agent processes on
 * their own loopback addresses (as two hosts). Each replica serves HTTP on $PORT_HTTP and echoes
 * datagrams on $PORT_ECHO, both answering with its instance id; one NodePort Service puts both on
 * the same port number (TCP and UDP) and on two allocated nodePorts.
 */

const NODE_ADDRESS: Record<string, string> = { 'node-1': '127.0.0.8', 'node-2': '127.0.0.9' };

const SERVER = [
  'const id = process.env.GANTRY_INSTANCE_ID;',
  "require('http').createServer((q, s) => s.end(id)).listen(+process.env.PORT_HTTP);",
  "const u = require('dgram').createSocket('udp4');",
  "u.on('message', (m, r) => u.send(id + ' ' + m, r.port, r.address));",
  'u.bind(+process.env.PORT_ECHO);',
].join(' ');

const mixed = (port: number) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: mixed }
spec:
  replicas: 2
  selector: { matchLabels: { app: mixed } }
  template:
    metadata: { labels: { app: mixed } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", ${JSON.stringify(SERVER)}]
          ports: [{ name: http, containerPort: 8080 }, { name: echo, containerPort: 5353 }]
          resources: { requests: { cpu: 50m, memory: 16Mi } }
---
apiVersion: v1
kind: Service
metadata: { name: mixed }
spec:
  type: NodePort
  selector: { app: mixed }
  ports:
    - { name: http, port: ${port}, targetPort: http }
    - { name: echo, port: ${port}, targetPort: echo, protocol: UDP }
---
apiVersion: v1
kind: Service
metadata: { name: typo }
spec:
  selector: { app: mixed }
  ports: [{ port: ${port + 1}, targetPort: htpp }]
`;

let c: TestCluster;

function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.setTimeout(2_000, () => req.destroy(new Error(`timeout calling ${host}:${port}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sends `msgs` from one client socket; the replies, in order (undefined for one lost within 1 s). */
async function datagrams(host: string, port: number, msgs: string[]): Promise<(string | undefined)[]> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  try {
    const out: (string | undefined)[] = [];
    for (const m of msgs) {
      out.push(
        await new Promise<string | undefined>((resolve) => {
          const timer = setTimeout(() => resolve(undefined), 1_000);
          s.once('message', (reply) => {
            clearTimeout(timer);
            resolve(reply.toString());
          });
          s.send(m, port, host);
        }),
      );
    }
    return out;
  } finally {
    s.close();
  }
}

const services = async () => (await c.get<{ items: ServiceView[] }>('/api/v1/services')).items;

before(async () => {
  c = await startCluster({ nodes: [] });
  for (const [node, address] of Object.entries(NODE_ADDRESS)) c.startAgent(node, ['--address', address]);
  await waitFor(async () => {
    const items = await c.get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
});

after(async () => {
  if (process.env.GANTRY_TEST_VERBOSE) for (const a of c.agents.values()) console.log(a.output());
  await c?.stop();
});

test('a NodePort Service answers on its port and its nodePorts through every agent, TCP and UDP on one port number', async () => {
  const port = await freePort();
  await c.repo.commitFiles({ 'mixed.yaml': mixed(port) }, 'mixed: NodePort, TCP and UDP');
  const live = await waitFor(async () => {
    const all = (await c.instances()).filter((i: InstanceView) => i.deployment === 'mixed');
    return all.length === 2 && all.every((i) => i.phase === 'Running') ? all : undefined;
  }, { timeoutMs: 30_000, what: '2 running replicas' });
  const ids = live.map((i) => i.id).sort();
  const view = await waitFor(async () => {
    const v = (await services()).find((s) => s.name === 'mixed');
    return v && v.endpoints.length === 2 && v.ports.every((p) => p.nodePort !== undefined) ? v : undefined;
  }, { what: 'mixed with 2 endpoints and its nodePorts' });
  const [httpNode, echoNode] = view.ports.map((p) => p.nodePort!);
  assert.equal(view.type, 'NodePort');
  assert.ok(httpNode! >= 30000 && httpNode! <= 32767 && echoNode! >= 30000 && echoNode! <= 32767 && httpNode !== echoNode, `${httpNode} ${echoNode}`);
  assert.deepEqual(view.listeners.map((l) => `${l.port}/${l.protocol}`), [`${port}/TCP`, `${port}/UDP`, `${httpNode}/TCP`, `${echoNode}/UDP`]);

  for (const address of Object.values(NODE_ADDRESS)) {
    // HTTP through the port and the nodePort: both replicas answer, round robin.
    for (const p of [port, httpNode!]) {
      const seen = await waitFor(async () => {
        const bodies = await Promise.all([0, 1, 2, 3].map(() => httpGet(address, p).catch(() => '')));
        return bodies.every((b) => ids.includes(b)) && new Set(bodies).size === 2 ? bodies : undefined;
      }, { timeoutMs: 20_000, what: `both replicas over HTTP at ${address}:${p}` });
      assert.equal(seen.length, 4);
    }
    // Datagrams through the port and the nodePort: one client sticks to one replica.
    for (const p of [port, echoNode!]) {
      const replies = await waitFor(async () => {
        const r = await datagrams(address, p, ['a', 'b', 'c']);
        return r.every((x) => x !== undefined) ? (r as string[]) : undefined;
      }, { timeoutMs: 20_000, what: `UDP echo at ${address}:${p}` });
      const id = replies[0]!.split(' ')[0]!;
      assert.ok(ids.includes(id), replies.join('|'));
      assert.deepEqual(replies, [`${id} a`, `${id} b`, `${id} c`]);
    }
    // New clients are balanced: both replicas answer some of them.
    const answeredBy = await waitFor(async () => {
      const firsts = await Promise.all([0, 1, 2, 3, 4, 5].map(() => datagrams(address, port, ['x']).then((r) => r[0]?.split(' ')[0])));
      return new Set(firsts).size === 2 && firsts.every((f) => f && ids.includes(f)) ? new Set(firsts) : undefined;
    }, { timeoutMs: 10_000, what: `new UDP clients on ${address} spread over both replicas` });
    assert.deepEqual([...answeredBy].sort(), ids);
  }

  const table = await runGantry(['get', 'services', '--api', c.api]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`default\\s+mixed\\s+${port}:${httpNode}->http,${port}:${echoNode}->echo/UDP\\s+127\\.0\\.0\\.[89]:\\d+`));
});

test('a targetPort no container declares is a TargetPortNotFound condition, not a silent empty service', async () => {
  const typo = await waitFor(async () => (await services()).find((s) => s.name === 'typo' && s.conditions.some((x) => x.type === 'TargetPortNotFound')), { what: 'TargetPortNotFound on typo' });
  const cond = typo.conditions.find((x) => x.type === 'TargetPortNotFound')!;
  assert.match(cond.message, /: 2 of 2 ready instance\(s\) declare no port named "htpp" \(default\.mixed-[0-9a-f]+-\d, default\.mixed-[0-9a-f]+-\d\), so get no traffic on it$/);
  assert.deepEqual(typo.endpoints, []);
  const table = await runGantry(['get', 'services', '--api', c.api]);
  assert.match(table.stdout, /typo\s.*TargetPortNotFound: port \d+: 2 of 2 ready instance\(s\) declare no port named "htpp"/);
});
