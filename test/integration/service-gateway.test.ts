import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { execFile } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import { ServiceProxy } from '../../agents/service-proxy.ts';
import { firstHost } from '../../agents/docker-engine.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, objectKey, type Keys } from '../../state/keys.ts';
import { ServiceStore } from '../../state/service-store.ts';
import type { EndpointsRecord } from '../../state/records/service.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { docker, dockerTest, gantryContainers, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Services from inside Docker containers. A container on Docker's bridge network has its own
 * loopback, so the agent's address (127.0.0.x) is unreachable from it: the proxy also listens on
 * the bridge's gateway, and containers get that as `<NAME>_SERVICE_HOST`. Several agents of one host
 * share the engine and so that address: one holds each port there, the others report no
 * PortUnavailable and take over when it stops. First with proxies alone (a loopback address stands
 * in for the gateway), then with agents, real containers and the real gateway.
 */

const servers: Server[] = [];
const sockets: UdpSocket[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  for (const s of servers) s.close();
  for (const s of sockets) s.close();
});

/** A TCP endpoint that writes `name` to each connection and closes it. */
async function tcpEndpoint(name: string, host: string): Promise<number> {
  const s = createServer((c) => c.end(name));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, r));
  return (s.address() as { port: number }).port;
}

/** A UDP endpoint answering "<name> <datagram>". */
async function udpEndpoint(name: string, host: string): Promise<number> {
  const s = createSocket('udp4');
  sockets.push(s);
  s.on('message', (m, from) => s.send(`${name} ${m}`, from.port, from.address));
  await new Promise<void>((r) => s.bind(0, host, r));
  return s.address().port;
}

/** What a TCP connection to host:port is given before it closes; undefined when refused. */
function tcpAnswer(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let out = '';
    s.setTimeout(2_000, () => s.destroy());
    s.on('data', (d) => (out += d));
    s.on('close', (hadError) => resolve(hadError ? undefined : out));
    s.on('error', () => resolve(undefined));
  });
}

/** The reply to one datagram, or undefined when none comes within a second. */
async function udpAsk(host: string, port: number, msg: string): Promise<string | undefined> {
  const s = createSocket('udp4');
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1_000);
      s.once('message', (m) => {
        clearTimeout(timer);
        resolve(m.toString());
      });
      s.send(msg, port, host);
    });
  } finally {
    s.close();
  }
}

/** An endpoints record as the endpoints controller writes it: one port number, TCP and UDP. */
function endpointsRecord(name: string, port: number, host: string, tcp: number, udp?: number): EndpointsRecord {
  const udpPort = udp === undefined ? [] : [{ name: 'dns', port, targetPort: 'dns', protocol: 'UDP' as const }];
  return {
    namespace: 'default',
    name,
    ports: [{ name: 'http', port, targetPort: 'http' }, ...udpPort],
    listen: [port],
    listeners: [{ protocol: 'TCP', port, target: String(port) }, ...(udp === undefined ? [] : [{ protocol: 'UDP' as const, port, target: `${port}/UDP` }])],
    endpoints: [{ instanceId: `default.${name}-0`, node: 'n', host, ports: { [String(port)]: tcp, ...(udp === undefined ? {} : { [`${port}/UDP`]: udp }) }, revision: 'r1' }],
    conditions: [],
    updatedAt: Date.now(),
  };
}

async function writeService(redis: ReturnType<typeof connectRedis>, keys: Keys, record: EndpointsRecord): Promise<void> {
  await redis.sadd(keys.services, objectKey(record.namespace, record.name));
  await new ServiceStore(redis, keys).writeEndpoints([record]);
}

async function portUnavailable(redis: ReturnType<typeof connectRedis>, keys: Keys, nodes: string[]): Promise<Record<string, unknown>> {
  const statuses = await new ServiceStore(redis, keys).readNodeStatuses(nodes);
  return Object.fromEntries([...statuses].filter(([, s]) => Object.keys(s).length > 0));
}

test('two proxies of one host share the containers\' address: one holds each port there, neither reports PortUnavailable, the other takes over when it stops', async () => {
  const { url } = await testRedis();
  const keys = createKeys(freshPrefix());
  const redis = connectRedis(url, 'gateway-test');
  cleanups.push(() => redis.quit());
  const GATEWAY = '127.0.0.63';
  const port = await freePort();
  await writeService(redis, keys, endpointsRecord('shared', port, '127.0.0.1', await tcpEndpoint('backend', '127.0.0.1'), await udpEndpoint('backend', '127.0.0.1')));
  const logs: string[] = [];
  const proxies = ['a', 'b'].map((n, i) => {
    const p = new ServiceProxy({ redisUrl: url, keys, node: `gw-${keys.prefix}-${n}`, address: `127.0.0.${61 + i}`, containerAddress: () => GATEWAY, resyncMs: 100, log: (l) => logs.push(`${n}: ${l}`) });
    cleanups.push(() => p.stop());
    return p;
  });
  const nodes = ['a', 'b'].map((n) => `gw-${keys.prefix}-${n}`);
  for (const p of proxies) await p.start();
  const both = new Map([[`${port}/TCP`, 'default/shared'], [`${port}/UDP`, 'default/shared']]);
  for (const p of proxies) assert.deepEqual(p.listening(), both, 'each on its own address');
  // Started one after the other: the first holds both sockets on the gateway.
  assert.deepEqual(proxies[0]!.listening(GATEWAY), both);
  assert.deepEqual(proxies[1]!.listening(GATEWAY), new Map());
  await waitFor(() => logs.filter((l) => l.startsWith('b: ') && l.includes(`${GATEWAY}:${port}/`) && l.includes('held by another agent')).length === 2, { what: 'b saying the gateway is held' });
  // Several passes later, still nothing reported (the retries are not conflicts).
  await new Promise((r) => setTimeout(r, 350));
  assert.deepEqual(await portUnavailable(redis, keys, nodes), {});
  assert.equal(logs.filter((l) => l.includes('held by another agent')).length, 2, 'said once per socket, not at every pass');

  assert.equal(await tcpAnswer(GATEWAY, port), 'backend');
  assert.equal(await udpAsk(GATEWAY, port, 'ping'), 'backend ping');
  // The gateway's own address, not a wildcard: another local address is not served.
  assert.equal(await tcpAnswer('127.0.0.64', port), undefined);

  await proxies[0]!.stop();
  await waitFor(() => proxies[1]!.listening(GATEWAY).size === 2, { what: 'b taking over the gateway', timeoutMs: 5_000 });
  assert.equal(await tcpAnswer(GATEWAY, port), 'backend');
  assert.equal(await waitFor(() => udpAsk(GATEWAY, port, 'again')), 'backend again');
  assert.deepEqual(await portUnavailable(redis, keys, nodes), {});
});

test('a gateway address that cannot be bound for another reason than another agent is reported; one equal to the agent\'s own is listened on once', async () => {
  const { url } = await testRedis();
  const keys = createKeys(freshPrefix());
  const redis = connectRedis(url, 'gateway-test');
  cleanups.push(() => redis.quit());
  const port = await freePort();
  await writeService(redis, keys, endpointsRecord('web', port, '127.0.0.1', await tcpEndpoint('web', '127.0.0.1')));
  // TEST-NET-3: no address of this host.
  const away = new ServiceProxy({ redisUrl: url, keys, node: `gw-${keys.prefix}-away`, address: '127.0.0.65', containerAddress: () => '203.0.113.77' });
  const same = new ServiceProxy({ redisUrl: url, keys, node: `gw-${keys.prefix}-same`, address: '127.0.0.66', containerAddress: () => '127.0.0.66' });
  cleanups.push(() => away.stop(), () => same.stop());
  await away.start();
  await same.start();
  const statuses = await new ServiceStore(redis, keys).readNodeStatuses([`gw-${keys.prefix}-away`, `gw-${keys.prefix}-same`]);
  const reported = statuses.get(`gw-${keys.prefix}-away`)?.['default/web'];
  assert.equal(reported?.port, port);
  assert.match(reported?.error ?? '', new RegExp(`^EADDRNOTAVAIL: cannot listen on 203\\.0\\.113\\.77:${port}`));
  assert.deepEqual(statuses.get(`gw-${keys.prefix}-same`), {});
  assert.deepEqual(same.listening(), new Map([[`${port}/TCP`, 'default/web']]));
  assert.equal(await tcpAnswer('127.0.0.66', port), 'web');
});

/** Each replica serves its own instance id on $PORT. */
const WEB = ['sh', '-c', 'echo "$GANTRY_INSTANCE_ID" > /www/index.html && exec httpd -f -p "$PORT" -h /www'];

/** The body of a GET, or undefined while nothing answers. */
async function httpText(host: string, port: number): Promise<string | undefined> {
  try {
    return await (await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(2_000) })).text();
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

dockerTest('a container reaches a Service at the <NAME>_SERVICE_HOST of its env (the bridge\'s gateway), a process keeps the agent\'s address; two agents of one host report no PortUnavailable, and one takes over the gateway when the other stops', async () => {
  const w = await AgentWorld.create();
  const nodeB = `${w.node}-b`;
  cleanups.push(async () => {
    try {
      await w.cleanup();
    } finally {
      for (const node of [w.node, nodeB]) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
    }
  });
  const bridge = await docker.getNetwork('bridge').inspect();
  // As the agent reads it: the listed gateway, or the subnet's first address where the engine lists none.
  const gateway = (bridge.IPAM?.Config ?? []).map((c: { Gateway?: string; Subnet?: string }) => c.Gateway || firstHost(c.Subnet)).find((g?: string) => g && !g.includes(':')) as string | undefined;
  assert.ok(gateway, 'the bridge network has an IPv4 gateway');
  // Each agent's lines prefixed with its node, to tell which one holds the gateway.
  const agents = new Map<string, Awaited<ReturnType<AgentWorld['startAgent']>>>();
  for (const [node, address] of [[w.node, '127.0.0.71'], [nodeB, '127.0.0.72']] as const) {
    agents.set(node, await w.startAgent({ node, address, resyncMs: 300, log: (l) => w.logs.push(`${node}: ${l}`) }));
  }

  // The backend: a container whose port Docker publishes on the node address.
  const web = instanceRecord(w.node, { runtime: 'docker', terminationGracePeriodSeconds: 1, containers: [container({ image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: WEB, cpuMilli: 50 })] });
  await w.bind(web);
  await w.nudge(web.id);
  const st = await waitFor(async () => {
    const s = await w.status(web.id);
    return s?.phase === 'Running' && s.ports[0] ? s : undefined;
  }, { what: `${web.id} running`, timeoutMs: 30_000 });
  assert.equal(st.hostIP, '127.0.0.71');
  // The Service api, as the endpoints controller writes it: the instance's host port on its node's address.
  const port = await freePort();
  await writeService(w.redis, w.keys, endpointsRecord('api', port, st.hostIP, st.ports[0]!.hostPort));
  // From the host: through each agent's address to the port Docker publishes.
  for (const address of ['127.0.0.71', '127.0.0.72']) assert.equal((await waitFor(() => httpText(address, port), { what: `the proxy on ${address}:${port}` })).trim(), web.id);

  // Started once the Service exists: a container client and a process client.
  const client = instanceRecord(w.node, { runtime: 'docker', terminationGracePeriodSeconds: 1, containers: [container({ image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'], ports: [], cpuMilli: 50 })] });
  const proc = instanceRecord(w.node, { containers: [container({ command: ['sh', '-c', 'echo "$API_SERVICE_HOST:$API_SERVICE_PORT"; exec sleep 3600'], ports: [] })] });
  for (const r of [client, proc]) {
    await w.bind(r);
    await w.nudge(r.id);
  }
  for (const r of [client, proc]) await waitFor(async () => (await w.status(r.id))?.phase === 'Running', { what: `${r.id} running`, timeoutMs: 30_000 });
  const [c] = await gantryContainers(w.node, client.id);
  assert.ok(c, 'the client container');
  const env = await run('docker', ['exec', c.Id, 'env']);
  assert.match(env, new RegExp(`^API_SERVICE_HOST=${gateway.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(env, new RegExp(`^API_SERVICE_PORT=${port}$`, 'm'));
  const fetchInside = () => run('docker', ['exec', c.Id, 'sh', '-c', 'wget -qO- "http://$API_SERVICE_HOST:$API_SERVICE_PORT/"']).catch(() => undefined);
  assert.equal((await waitFor(fetchInside, { what: 'the api from inside the client container' })).trim(), web.id);
  // The process shares the host's network: the agent's address, as before.
  const procLog = join(w.instanceDir(proc.id), 'main.log');
  assert.equal((await waitFor(() => readFileSync(procLog, 'utf8').trim())), `127.0.0.71:${port}`);

  // One agent holds the gateway, the other says so once; neither reports a conflict.
  const holders = [w.node, nodeB].filter((n) => w.logs.some((l) => l.startsWith(`${n}: `) && l.includes(`listening on ${gateway}:${port}/TCP`)));
  assert.equal(holders.length, 1, `one agent listens on ${gateway}:${port}: ${w.logs.filter((l) => l.includes(String(port))).join(' | ')}`);
  const holder = holders[0]!;
  const other = holder === w.node ? nodeB : w.node;
  assert.equal(w.logs.filter((l) => l.startsWith(`${other}: `) && l.includes(`${gateway}:${port}/TCP is held by another agent`)).length, 1);
  await new Promise((r) => setTimeout(r, 700)); // a few passes of both proxies
  assert.deepEqual(await portUnavailable(w.redis, w.keys, [w.node, nodeB]), {});

  // The holder stops, leaving its instances running (handle.stop()): the other takes over within a pass.
  await agents.get(holder)!.stop();
  await waitFor(() => w.logs.some((l) => l.startsWith(`${other}: `) && l.includes(`listening on ${gateway}:${port}/TCP`)), { what: `${other} taking over ${gateway}:${port}`, timeoutMs: 5_000 });
  assert.equal((await waitFor(fetchInside, { what: `the api from inside the container once ${holder} stopped` })).trim(), web.id);
  assert.deepEqual(await portUnavailable(w.redis, w.keys, [other]), {});
});
