import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { check, ContainerProbes, type ProbeTarget, type Unhealthy } from '../../agents/probe-runner.ts';
import type { ContainerSpec, ProbeSpec } from '../../state/records/instance.ts';
import { NOT_SERVING, SERVING, selfSignedCert, startHealthServer, type HealthServer } from '../helpers/probe-servers.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The probe runner's actions against real servers on 127.0.0.1 (and 127.0.0.2, another loopback
 * address, for `host`): HTTPS with a self-signed certificate, headers as the server receives them,
 * redirects, tcpSocket and httpGet `host`, and the gRPC health protocol, one check at a time and
 * through ContainerProbes, whose verdict must follow the server.
 */

const TIMING = { initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 1 };
const probe = (action: Partial<ProbeSpec>, over: Partial<ProbeSpec> = {}): ProbeSpec => ({ ...TIMING, ...action, ...over });
/** The node address is 127.0.0.1; declared containerPorts map to the servers' real ports, as the agent maps them to host ports. */
const target = (ports: Record<number, number> = {}): ProbeTarget => ({
  address: '127.0.0.1',
  hostPort: (p) => ports[p] ?? p,
  exec: async () => ({ ok: false, detail: 'no exec here' }),
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: { close(): unknown }[] = [];

async function listen(server: Server, host = '127.0.0.1'): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as AddressInfo).port;
}

let httpsPort: number;
let httpsHealthy = true;
/** The TLS server name (SNI) of each HTTPS connection; false when none was sent. */
const serverNames: unknown[] = [];
let httpPort: number;
/** What the plain HTTP server received, by path. */
const received = new Map<string, IncomingMessage>();
let routes: Record<string, Handler> = {};
let grpc: HealthServer;

before(async () => {
  const { key, cert } = await selfSignedCert();
  const https = createHttpsServer({ key, cert }, (req, res) => {
    res.statusCode = req.url === '/healthz' && httpsHealthy ? 200 : 503;
    res.end();
  });
  https.on('secureConnection', (socket: { servername?: unknown }) => serverNames.push(socket.servername));
  httpsPort = await listen(https);
  httpPort = await listen(
    createHttpServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      received.set(path, req);
      const route = routes[path];
      if (route) return route(req, res);
      res.statusCode = path === '/ok' ? 200 : 404;
      res.end();
    }),
  );
  grpc = await startHealthServer({ '': SERVING, 'shop.Cart': SERVING });
  servers.push(grpc);
});

after(async () => {
  for (const s of servers) await s.close();
});

test('HTTPS: a self-signed certificate is accepted (not verified, as the kubelet does), a 503 fails with the URL', async () => {
  const p = probe({ httpGet: { scheme: 'HTTPS', path: '/healthz', port: 8443 } });
  assert.deepEqual(await check(p, target({ 8443: httpsPort })), { ok: true });
  httpsHealthy = false;
  try {
    assert.deepEqual(await check(p, target({ 8443: httpsPort })), { ok: false, detail: `HTTPS GET https://127.0.0.1:${httpsPort}/healthz: status 503` });
  } finally {
    httpsHealthy = true;
  }
  // A Host header names the virtual host for TLS too (SNI); an IP address is never sent as SNI.
  serverNames.length = 0;
  const named = probe({ httpGet: { scheme: 'HTTPS', path: '/healthz', port: 8443, httpHeaders: [{ name: 'Host', value: 'web.example:8443' }] } });
  assert.deepEqual(await check(named, target({ 8443: httpsPort })), { ok: true });
  assert.deepEqual(await check(p, target({ 8443: httpsPort })), { ok: true });
  assert.deepEqual(serverNames, ['web.example', false]);
  // A record without a scheme (as every record before HTTPS existed) is HTTP: against TLS, it fails.
  const plain = await check(probe({ httpGet: { path: '/healthz', port: 8443 } }), target({ 8443: httpsPort }));
  assert.equal(plain.ok, false);
  assert.match(plain.detail!, new RegExp(`^HTTP GET http://127\\.0\\.0\\.1:${httpsPort}/healthz: `));
  // And HTTPS against a plain HTTP server fails too (no silent downgrade).
  const tls = await check(probe({ httpGet: { scheme: 'HTTPS', path: '/ok', port: 80 } }), target({ 80: httpPort }));
  assert.equal(tls.ok, false);
  assert.match(tls.detail!, new RegExp(`^HTTPS GET https://127\\.0\\.0\\.1:${httpPort}/ok: `));
});

test('httpHeaders reach the server, repeats kept; a Host header replaces host:port; User-Agent and Accept have defaults', async () => {
  const headers = [
    { name: 'X-Probe', value: 'one' },
    { name: 'x-probe', value: 'two' },
    { name: 'Host', value: 'web.example:8080' },
    { name: 'User-Agent', value: 'custom/1' },
    { name: 'X-Name', value: 'café' },
  ];
  assert.deepEqual(await check(probe({ httpGet: { path: '/ok', port: 80, httpHeaders: headers } }), target({ 80: httpPort })), { ok: true });
  const req = received.get('/ok')!;
  assert.equal(req.headers.host, 'web.example:8080');
  assert.equal(req.headers['x-probe'], 'one, two');
  assert.equal(req.headers['user-agent'], 'custom/1');
  assert.equal(req.headers.accept, '*/*');
  // Sent as UTF-8 bytes, as the kubelet (Go) sends them.
  assert.equal(Buffer.from(req.headers['x-name'] as string, 'latin1').toString('utf8'), 'café');
  assert.equal(req.rawHeaders.filter((h) => h.toLowerCase() === 'host').length, 1);

  // Without headers: the node address and host port, our User-Agent.
  assert.deepEqual(await check(probe({ httpGet: { path: '/ok?x=1', port: 80 } }), target({ 80: httpPort })), { ok: true });
  const plain = received.get('/ok')!;
  assert.equal(plain.url, '/ok?x=1');
  assert.equal(plain.headers.host, `127.0.0.1:${httpPort}`);
  assert.equal(plain.headers['user-agent'], 'gantry-probe');
  // An empty Accept drops it, as the kubelet does.
  await check(probe({ httpGet: { path: '/ok', port: 80, httpHeaders: [{ name: 'Accept', value: '' }] } }), target({ 80: httpPort }));
  assert.equal(received.get('/ok')!.headers.accept, undefined);
});

test('redirects: followed on the same host (Host header kept on a relative one), not to another host, an endless loop fails', async () => {
  const redirect = (location: string): Handler => (_req, res) => {
    res.writeHead(302, { location });
    res.end();
  };
  routes = {
    '/relative': redirect('/ok'),
    '/to-404': redirect(`http://127.0.0.1:${httpPort}/missing`),
    '/elsewhere': redirect(`http://localhost:${httpPort}/not-followed`),
    '/loop': redirect('/loop'),
  };
  try {
    const get = (path: string, httpHeaders?: { name: string; value: string }[]) => check(probe({ httpGet: { path, port: 80, ...(httpHeaders ? { httpHeaders } : {}) } }), target({ 80: httpPort }));
    received.clear();
    assert.deepEqual(await get('/relative', [{ name: 'Host', value: 'web.example' }]), { ok: true });
    assert.equal(received.get('/ok')?.headers.host, 'web.example');
    assert.deepEqual(await get('/to-404'), { ok: false, detail: `HTTP GET http://127.0.0.1:${httpPort}/to-404 (redirected to http://127.0.0.1:${httpPort}/missing): status 404` });
    // Another host name: not followed, and the 302 counts as a success, as for the kubelet.
    assert.deepEqual(await get('/elsewhere'), { ok: true });
    assert.equal(received.has('/not-followed'), false);
    assert.deepEqual(await get('/loop'), { ok: false, detail: `HTTP GET http://127.0.0.1:${httpPort}/loop (redirected to http://127.0.0.1:${httpPort}/loop): stopped after 10 redirects` });
  } finally {
    routes = {};
  }
});

test('host: tcpSocket and httpGet connect where it says instead of the node address', async () => {
  // Listens on 127.0.0.2 only: the node address (127.0.0.1) refuses.
  const tcp = createTcpServer((s) => s.destroy());
  const tcpPort = await listen(tcp as unknown as Server, '127.0.0.2');
  const noHost = await check(probe({ tcpSocket: { port: 7000 } }), target({ 7000: tcpPort }));
  assert.equal(noHost.ok, false);
  assert.ok(noHost.detail?.startsWith(`TCP 127.0.0.1:${tcpPort}: `), noHost.detail);
  assert.deepEqual(await check(probe({ tcpSocket: { port: 7000, host: '127.0.0.2' } }), target({ 7000: tcpPort })), { ok: true });

  const web = createHttpServer((_req, res) => res.end());
  const webPort = await listen(web, '127.0.0.2');
  assert.deepEqual(await check(probe({ httpGet: { path: '/', port: 80, host: '127.0.0.2' } }), target({ 80: webPort })), { ok: true });
  assert.equal((await check(probe({ httpGet: { path: '/', port: 80 } }), target({ 80: webPort }))).ok, false);
});

test('grpc: Health/Check with the service, SERVING passes, NOT_SERVING and an unknown service fail saying why', async () => {
  const t = target({ 9090: grpc.port });
  grpc.calls.length = 0;
  assert.deepEqual(await check(probe({ grpc: { port: 9090 } }), t), { ok: true });
  assert.deepEqual(await check(probe({ grpc: { port: 9090, service: 'shop.Cart' } }), t), { ok: true });
  assert.deepEqual(grpc.calls, [
    { path: '/grpc.health.v1.Health/Check', contentType: 'application/grpc', service: '' },
    { path: '/grpc.health.v1.Health/Check', contentType: 'application/grpc', service: 'shop.Cart' },
  ]);
  grpc.statuses.set('shop.Cart', NOT_SERVING);
  try {
    assert.deepEqual(await check(probe({ grpc: { port: 9090, service: 'shop.Cart' } }), t), { ok: false, detail: `gRPC health check 127.0.0.1:${grpc.port} (service "shop.Cart"): NOT_SERVING` });
  } finally {
    grpc.statuses.set('shop.Cart', SERVING);
  }
  assert.deepEqual(await check(probe({ grpc: { port: 9090, service: 'nope' } }), t), { ok: false, detail: `gRPC health check 127.0.0.1:${grpc.port} (service "nope"): grpc-status 5 NOT_FOUND: unknown service` });
  // Not an HTTP/2 server at all, and nothing listening.
  const http1 = await check(probe({ grpc: { port: 80 } }), target({ 80: httpPort }));
  assert.equal(http1.ok, false);
  assert.match(http1.detail!, new RegExp(`^gRPC health check 127\\.0\\.0\\.1:${httpPort}: `));
  const closed = await check(probe({ grpc: { port: 1 } }), target());
  assert.deepEqual(closed, { ok: false, detail: 'gRPC health check 127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1' });
});

test('grpc: a server that accepts the call and never answers fails at the timeout', async () => {
  const { createServer } = await import('node:http2');
  const silent = createServer();
  silent.on('stream', () => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => new Promise((r) => silent.close(r)) });
  const port = (silent.address() as AddressInfo).port;
  const started = Date.now();
  assert.deepEqual(await check(probe({ grpc: { port } }), target()), { ok: false, detail: `gRPC health check 127.0.0.1:${port}: no answer within 1s` });
  assert.ok(Date.now() - started < 5000);
});

const spec = (over: Partial<ContainerSpec>): ContainerSpec => ({ name: 'main', command: ['x'], args: [], env: [], ports: [], cpuMilli: 0, memoryBytes: 0, ...over });

test('readiness follows a gRPC server: SERVING, then NOT_SERVING, then SERVING again', async () => {
  const health = await startHealthServer({ web: SERVING });
  servers.push(health);
  let changes = 0;
  const probes = new ContainerProbes(spec({ readinessProbe: probe({ grpc: { port: 9090, service: 'web' } }) }), target({ 9090: health.port }), () => changes++, () => {});
  probes.start(Date.now());
  try {
    await waitFor(() => probes.ready === true, { what: 'ready while SERVING' });
    health.statuses.set('web', NOT_SERVING);
    await waitFor(() => probes.ready === false, { what: 'not ready once NOT_SERVING' });
    health.statuses.set('web', SERVING);
    await waitFor(() => probes.ready === true, { what: 'ready again' });
    assert.ok(changes >= 3);
  } finally {
    probes.stop();
  }
});

test('a failed liveness probe reports its own terminationGracePeriodSeconds with what failed', async () => {
  const why = await new Promise<Unhealthy>((resolve) => {
    const probes = new ContainerProbes(spec({ livenessProbe: probe({ httpGet: { scheme: 'HTTPS', path: '/healthz', port: 8443 } }, { terminationGracePeriodSeconds: 2 }) }), target({ 8443: httpsPort }), () => {}, resolve);
    httpsHealthy = false;
    probes.start(Date.now());
  }).finally(() => (httpsHealthy = true));
  assert.deepEqual(why, {
    reason: 'LivenessProbeFailed',
    message: `Liveness probe of container main failed 1 times: HTTPS GET https://127.0.0.1:${httpsPort}/healthz: status 503`,
    terminationGracePeriodSeconds: 2,
  });
});
