/**
 * The agent's service proxy against calling an instance directly, in the same run.
 *
 * Three HTTP backends run in a child process (as instances do); a real ServiceProxy (real Redis,
 * its endpoints record written as the endpoints controller writes it) forwards to them. Every
 * request opens a new TCP connection (no keep-alive), which is the proxy's unit of balancing, for
 * both paths. Latency: sequential requests, proxy and direct alternating in blocks so that load on
 * the machine moves both alike; "added" is proxy minus direct at the same percentile. Throughput:
 * 32 concurrent clients for a fixed time per path. The proxy shares this process with the client
 * (the backends do not), so the figures are a pessimistic bound for a proxy in its own agent.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { ServiceProxy } from '../agents/service-proxy.ts';
import { freePort } from '../cli/redis-server.ts';
import { connectRedis } from '../state/connection.ts';
import { createKeys } from '../state/keys.ts';
import type { EndpointsRecord } from '../state/records/service.ts';
import { benchRedis, freshPrefix, sleep, type Benchmark } from './harness.ts';
import { summarize } from './stats.ts';

const LATENCY_RUNS = Number(process.env.BENCH_PROXY_RUNS ?? 2_000);
const THROUGHPUT_MS = Number(process.env.BENCH_PROXY_MS ?? 3_000);
const CONCURRENCY = 32;
const BACKENDS = 3;

function get(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve());
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function timed(port: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await get(port);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Requests per second of `CONCURRENCY` clients, each calling `nextPort()` until time is up. */
async function throughput(nextPort: () => number): Promise<number> {
  const end = Date.now() + THROUGHPUT_MS;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) {
        await get(nextPort());
        done++;
      }
    }),
  );
  return done / (THROUGHPUT_MS / 1000);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export const serviceProxy: Benchmark = {
  name: 'service-proxy',
  description: `requests through the agent's service proxy (${BACKENDS} endpoints, a new connection per request) beside calling the instances directly`,
  async run(ctx) {
    const redis = await benchRedis(ctx);
    const ports = await Promise.all(Array.from({ length: BACKENDS }, () => freePort()));
    const backends = spawn(process.execPath, ['-e', `for (const p of ${JSON.stringify(ports)}) require('http').createServer((q, s) => s.end('ok')).listen(p, '127.0.0.1')`], { stdio: 'ignore' });
    ctx.defer(() => backends.kill('SIGKILL'));
    for (const p of ports) await until(() => accepts(p), `backend on ${p}`);

    const keys = createKeys(freshPrefix());
    const servicePort = await freePort();
    const record: EndpointsRecord = {
      namespace: 'default',
      name: 'bench',
      ports: [{ port: servicePort, targetPort: 'http' }],
      listen: [servicePort],
      endpoints: ports.map((p, i) => ({ instanceId: `default.bench-h-${i}`, node: 'bench', host: '127.0.0.1', ports: { [String(servicePort)]: p }, revision: 'h' })),
      conditions: [],
      updatedAt: Date.now(),
    };
    const admin = connectRedis(redis.url, 'bench-admin');
    ctx.defer(() => admin.quit());
    await admin.multi().sadd(keys.services, 'default/bench').set(keys.endpoints('default', 'bench'), JSON.stringify(record)).exec();
    const proxy = new ServiceProxy({ redisUrl: redis.url, keys, node: 'bench', address: '127.0.0.1', log: () => {} });
    ctx.defer(() => proxy.stop());
    await proxy.start();
    await until(() => accepts(servicePort), 'the proxy listening');

    let rr = 0;
    const direct = () => ports[rr++ % ports.length]!;
    for (let i = 0; i < 200; i++) {
      await timed(servicePort); // warm-up of both paths, not counted
      await timed(direct());
    }
    const viaProxy: number[] = [];
    const viaDirect: number[] = [];
    const block = 100;
    for (let done = 0; done < LATENCY_RUNS; done += block) {
      for (let i = 0; i < block; i++) viaProxy.push(await timed(servicePort));
      for (let i = 0; i < block; i++) viaDirect.push(await timed(direct()));
    }
    const p = summarize(viaProxy);
    const d = summarize(viaDirect);
    const rpsDirect = await throughput(direct);
    const rpsProxy = await throughput(() => servicePort);
    ctx.log(`latency ms (n=${LATENCY_RUNS} each): proxy p50 ${p.p50.toFixed(3)} p99 ${p.p99.toFixed(3)}; direct p50 ${d.p50.toFixed(3)} p99 ${d.p99.toFixed(3)}`);
    ctx.log(`throughput (${CONCURRENCY} clients, ${THROUGHPUT_MS / 1000}s each): proxy ${rpsProxy.toFixed(0)} req/s, direct ${rpsDirect.toFixed(0)} req/s`);
    return [
      { name: 'service proxy requests/s (new connection each)', value: rpsProxy, unit: 'req/s' },
      { name: 'direct requests/s (same load)', value: rpsDirect, unit: 'req/s' },
      { name: 'proxy added latency p50', value: p.p50 - d.p50, unit: 'ms', digits: 3 },
      { name: 'proxy added latency p99', value: p.p99 - d.p99, unit: 'ms', digits: 3 },
      { name: 'proxy latency p50', value: p.p50, unit: 'ms', digits: 3 },
      { name: 'proxy latency p99', value: p.p99, unit: 'ms', digits: 3 },
      { name: 'direct latency p50', value: d.p50, unit: 'ms', digits: 3 },
      { name: 'direct latency p99', value: d.p99, unit: 'ms', digits: 3 },
    ];
  },
};
