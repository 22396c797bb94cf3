import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import type { ContainerSpec, InstanceStatus, PortStatus } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { docker, dockerTest, gantryContainers, removeContainersWithLabels, TEST_IMAGE, podSandboxes } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Container ports on the node, for real: an agent in-process with a real Redis, real processes
 * (and, when the engine answers, a real container) and real TCP and UDP sockets on a loopback
 * address of its own. Records are written as the reconciler and scheduler would.
 */

const ADDRESS = '127.0.0.61';

/** HTTP on $PORT_HTTP answering "<id> <PORT>", and a UDP echo on $PORT_ECHO answering "<id> <datagram>", both on $ADDR. */
const SERVER_JS = [
  'const id = process.env.GANTRY_INSTANCE_ID, addr = process.env.ADDR;',
  "if (process.env.PORT_HTTP) require('http').createServer((q, s) => s.end(id + ' ' + process.env.PORT)).listen(+process.env.PORT_HTTP, addr);",
  "if (process.env.PORT_ECHO) { const u = require('dgram').createSocket('udp4'); u.on('message', (m, r) => u.send(id + ' ' + m, r.port, r.address)); u.bind(+process.env.PORT_ECHO, addr); }",
  'setInterval(() => {}, 1 << 30);',
].join(' ');

function server(ports: ContainerSpec['ports']): ContainerSpec {
  return container({ command: [process.execPath, '-e', SERVER_JS], env: [{ name: 'ADDR', value: ADDRESS }], ports });
}

function agentTest(name: string, body: (w: AgentWorld) => Promise<void>): void {
  test(name, async () => {
    const w = await AgentWorld.create();
    try {
      await w.startAgent({ address: ADDRESS, docker: false });
      await body(w);
    } finally {
      await w.cleanup();
    }
  });
}

async function statusWhere(w: AgentWorld, id: string, what: string, ok: (s: InstanceStatus) => boolean, timeoutMs = 20_000): Promise<InstanceStatus> {
  return waitFor(async () => {
    const s = await w.status(id);
    return s && ok(s) ? s : undefined;
  }, { what: `${id}: ${what}`, timeoutMs });
}

async function httpAt(port: number, host = ADDRESS): Promise<string | undefined> {
  try {
    return await (await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2_000) })).text();
  } catch {
    return undefined;
  }
}

/** One datagram to host:port and its reply, or undefined when none comes within 1 s. */
async function datagram(port: number, message: string, host = ADDRESS): Promise<string | undefined> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1_000);
      s.once('message', (reply) => {
        clearTimeout(timer);
        resolve(reply.toString());
      });
      s.send(message, port, host);
    });
  } finally {
    s.close();
  }
}

/** Something else holding a port on ADDRESS: a listening TCP server or a bound UDP socket. Port 0: any free one. */
async function holdTcp(port = 0): Promise<{ port: number; server: Server }> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(port, ADDRESS, resolve));
  return { port: (srv.address() as { port: number }).port, server: srv };
}
async function holdUdp(port = 0): Promise<{ port: number; socket: UdpSocket }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => socket.once('error', reject).bind(port, ADDRESS, resolve));
  return { port: socket.address().port, socket };
}
/** A port free on ADDRESS now (for TCP or UDP). */
async function freeOn(protocol: 'TCP' | 'UDP'): Promise<number> {
  if (protocol === 'TCP') {
    const { port, server } = await holdTcp();
    await new Promise((r) => server.close(r));
    return port;
  }
  const { port, socket } = await holdUdp();
  await new Promise<void>((r) => socket.close(r));
  return port;
}

const portOf = (s: InstanceStatus, name: string): PortStatus => s.ports.find((p) => p.name === name)!;

agentTest('a UDP port gets a host port of its own (bound as UDP) beside a TCP port of the same number; PORT is the first declared one', async (w) => {
  const r = instanceRecord(w.node, { containers: [server([{ name: 'http', containerPort: 5353 }, { name: 'echo', containerPort: 5353, protocol: 'UDP' }])] });
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Running', (x) => x.phase === 'Running');
  const http = portOf(s, 'http');
  const echo = portOf(s, 'echo');
  assert.deepEqual(Object.keys(http).sort(), ['containerPort', 'hostPort', 'name'], 'a TCP port is reported as before protocols existed');
  assert.deepEqual({ ...echo, hostPort: 0 }, { name: 'echo', containerPort: 5353, hostPort: 0, protocol: 'UDP' });
  assert.equal(await waitFor(() => httpAt(http.hostPort), { what: 'HTTP on the TCP host port' }), `${r.id} ${http.hostPort}`);
  assert.equal(await waitFor(() => datagram(echo.hostPort, 'ping'), { what: 'UDP echo on the UDP host port' }), `${r.id} ping`);
});

agentTest('a hostPort is used as it is, for TCP and for UDP', async (w) => {
  const [tcp, udp] = [await freeOn('TCP'), await freeOn('UDP')];
  const r = instanceRecord(w.node, { containers: [server([{ name: 'http', containerPort: 8080, hostPort: tcp }, { name: 'echo', containerPort: 9000, protocol: 'UDP', hostPort: udp }])] });
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Running', (x) => x.phase === 'Running');
  assert.deepEqual(s.ports, [{ name: 'http', containerPort: 8080, hostPort: tcp }, { name: 'echo', containerPort: 9000, hostPort: udp, protocol: 'UDP' }]);
  assert.equal(await waitFor(() => httpAt(tcp), { what: `HTTP on hostPort ${tcp}` }), `${r.id} ${tcp}`);
  assert.equal(await waitFor(() => datagram(udp, 'x'), { what: `UDP on hostPort ${udp}` }), `${r.id} x`);
});

agentTest('a hostPort something else holds: HostPortInUse (TCP, then UDP) without restarts, and it runs once both are free', async (w) => {
  const tcp = await holdTcp();
  const udp = await holdUdp();
  try {
    const r = instanceRecord(w.node, { containers: [server([{ name: 'http', containerPort: 8080, hostPort: tcp.port }, { name: 'echo', containerPort: 9000, protocol: 'UDP', hostPort: udp.port }])] });
    await w.bind(r);
    await w.nudge(r.id);
    const first = await statusWhere(w, r.id, 'HostPortInUse for TCP', (x) => x.reason === 'HostPortInUse');
    assert.equal(first.phase, 'Pending');
    assert.equal(first.message, `HostPortInUse: ${tcp.port}/TCP on ${ADDRESS} is in use`);
    assert.equal(first.restarts, 0);
    await new Promise((r) => tcp.server.close(r));
    const second = await statusWhere(w, r.id, 'HostPortInUse for UDP', (x) => x.message === `HostPortInUse: ${udp.port}/UDP on ${ADDRESS} is in use`);
    assert.equal(second.phase, 'Pending');
    await new Promise<void>((r) => udp.socket.close(r));
    const s = await statusWhere(w, r.id, 'Running once freed', (x) => x.phase === 'Running');
    assert.equal(s.restarts, 0, 'waiting for a port is not a restart');
    assert.equal(await waitFor(() => httpAt(tcp.port), { what: 'HTTP on the freed hostPort' }), `${r.id} ${tcp.port}`);
    assert.equal(await waitFor(() => datagram(udp.port, 'y'), { what: 'UDP on the freed hostPort' }), `${r.id} y`);
  } finally {
    if (tcp.server.listening) tcp.server.close();
    try {
      udp.socket.close();
    } catch {}
  }
});

agentTest('hostIP: another address of the host is bound and reported; one the node does not have is HostIPNotOnNode', async (w) => {
  // The echo server of the fixtures listens on 127.0.0.1: that address, not the node's.
  const elsewhere = instanceRecord(w.node, { containers: [container({ ports: [{ name: 'http', containerPort: 8080, hostIP: '127.0.0.1' }] })] });
  const missing = instanceRecord(w.node, { containers: [container({ ports: [{ name: 'http', containerPort: 8080, hostPort: 8080, hostIP: '192.0.2.10' }] })] });
  for (const r of [elsewhere, missing]) {
    await w.bind(r);
    await w.nudge(r.id);
  }
  const s = await statusWhere(w, elsewhere.id, 'Running', (x) => x.phase === 'Running');
  assert.equal(s.ports[0]!.hostIP, '127.0.0.1');
  assert.equal(await waitFor(() => httpAt(s.ports[0]!.hostPort, '127.0.0.1'), { what: 'HTTP on 127.0.0.1' }), elsewhere.id);
  const m = await statusWhere(w, missing.id, 'HostIPNotOnNode', (x) => x.reason === 'HostIPNotOnNode');
  assert.equal(m.phase, 'Pending');
  assert.equal(m.message, `HostIPNotOnNode: hostIP 192.0.2.10 of port 8080/TCP is not an address of this node (${ADDRESS})`);
});

// Docker: the UDP port is published as <containerPort>/udp on the node address, and an agent that
// takes the container over reads the same ports back from its bindings.
const dockerNodes = new Set<string>();
after(async () => {
  for (const node of dockerNodes) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

dockerTest('Docker: a UDP containerPort is published as udp (docker inspect), and read back as UDP on adoption', async () => {
  const w = await AgentWorld.create();
  dockerNodes.add(w.node);
  try {
    const first = await w.startAgent({ address: ADDRESS, resyncMs: 500 });
    const web = ['sh', '-c', 'echo "$GANTRY_INSTANCE_ID" > /www/index.html && exec httpd -f -p "$PORT" -h /www'];
    const ports = [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 5353, protocol: 'UDP' as const }];
    const r = instanceRecord(w.node, { runtime: 'docker', terminationGracePeriodSeconds: 2, containers: [container({ image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: web, ports })] });
    await w.bind(r);
    await w.nudge(r.id);
    const s = await statusWhere(w, r.id, 'Running', (x) => x.phase === 'Running', 60_000);
    const dns = portOf(s, 'dns');
    assert.equal(dns.protocol, 'UDP');
    const [c] = await gantryContainers(w.node, r.id);
    // Published on the pod's sandbox, whose network the container joins.
    const [sandbox] = await podSandboxes(w.node, r.id);
    const info = await docker.getContainer(sandbox!.Id).inspect();
    assert.deepEqual(info.HostConfig.PortBindings['5353/udp'], [{ HostIp: ADDRESS, HostPort: String(dns.hostPort) }]);
    assert.deepEqual(Object.keys(info.Config.ExposedPorts ?? {}).sort(), ['5353/udp', '8080/tcp']);
    assert.equal(info.NetworkSettings.Ports['5353/udp']?.[0]?.HostPort, String(dns.hostPort));
    assert.equal(await waitFor(() => httpAt(portOf(s, 'http').hostPort), { what: 'httpd on the TCP host port', timeoutMs: 20_000 }), `${r.id}\n`);

    // A new agent adopts the running container: same container, the same ports, UDP still UDP.
    await first.stop();
    await w.startAgent({ address: ADDRESS, resyncMs: 500 });
    const adopted = await statusWhere(w, r.id, 'reported by the new agent', (x) => x.phase === 'Running' && x.updatedAt > s.updatedAt, 30_000);
    assert.deepEqual(adopted.ports, s.ports);
    assert.equal((await gantryContainers(w.node, r.id))[0]!.Id, c!.Id);
  } finally {
    try {
      await w.cleanup();
    } finally {
      await removeContainersWithLabels([`dev.gantry.node=${w.node}`]);
    }
  }
});
