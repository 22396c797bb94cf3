import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Redis } from 'ioredis';
import { freePort, startRedisServer, type RedisServerHandle } from '../../cli/redis-server.ts';
import { connectRedis } from '../../state/connection.ts';
import type { DeploymentView, InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { GantryEvent } from '../../state/events.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet, pidAlive, processGroupsOf } from '../helpers/agent-fixtures.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/**
 * Redis loses its data (FLUSHALL; a restart without persistence) under a reconciler and two agents
 * running as `gantry` processes: nothing is restarted. The agents keep what runs and claim it, the
 * reconciler re-applies Git and adopts the claims, and every instance is Running again on the same
 * node with the same pid and 0 restarts, answering HTTP all along.
 */

// Instance ids follow from the template: a per-run value keeps other runs' processes out of the counts.
const RUN = randomUUID().slice(0, 8);
const WEB = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 3
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE_ID)).listen(+process.env.PORT, '127.0.0.1')"]
          env: [{ name: RUN, value: "${RUN}" }]
          ports: [{ name: http, containerPort: 8080 }]
`;

let server: RedisServerHandle;
const redisDirs: string[] = [];
let redis: Redis;
let repo: TestRepo;
let dataDir: string;
let api: string;
let head: string;
const procs: GantryProcess[] = [];

async function get<T>(path: string): Promise<T> {
  return (await (await apiFetch(api + path)).json()) as T;
}
const instances = async () => (await get<{ items: InstanceView[] }>('/api/v1/instances')).items;
const nodes = async () => (await get<{ items: NodeView[] }>('/api/v1/nodes')).items;
const deployments = async () => (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items;
const events = async () => (await get<{ items: GantryEvent[] }>('/api/v1/events?limit=1000')).items;

async function startServer(port?: number): Promise<RedisServerHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-lost-redis-'));
  redisDirs.push(dir);
  const h = await startRedisServer({ dir, ...(port !== undefined ? { port } : {}) });
  h.process.stdout?.destroy();
  h.process.stderr?.destroy();
  // Never outlives this test process, even one that crashed.
  process.once('exit', () => h.process.kill('SIGKILL'));
  return h;
}

before(async () => {
  server = await startServer();
  redis = connectRedis(server.url, 'data-loss-test');
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-lost-'));
  repo = await createRepo();
  await repo.commitFiles({ 'README.md': 'empty' }, 'empty');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const common = ['--redis', server.url, '--prefix', 'gantry', '--data-dir', dataDir];
  procs.push(spawnGantry(['reconciler', ...common, '--repo', repo.dir, '--port', String(port), '--resync', '1s']));
  for (const node of ['node-1', 'node-2']) procs.push(spawnGantry(['agent', '--node', node, ...common, '--heartbeat', '500ms', '--stop-instances-on-exit']));
  // Both nodes first, so that the replicas spread over them.
  await waitFor(async () => {
    const items = await nodes().catch(() => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
  head = await repo.commitFiles({ 'web.yaml': WEB }, 'web x3');
  await waitFor(async () => {
    const r = await instances().catch(() => []);
    return r.length === 3 && r.every((i) => i.phase === 'Running' && i.ready && i.ports[0]);
  }, { timeoutMs: 30_000, what: '3 running instances' });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  if (process.env.GANTRY_TEST_VERBOSE) console.log(procs.map((p) => p.output()).join('\n'));
  await redis?.quit().catch(() => undefined);
  await server?.stop();
  await repo?.cleanup();
  for (const dir of [dataDir, ...redisDirs]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * The body an instance answers with, 'refused' when nothing listens, 'slow' when it took over 5 s.
 * A new connection each time: a kept-alive one can be closed by the server just as it is reused,
 * which says nothing about the instance.
 */
function ask(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', (err) => resolve(`error ${err.message}`));
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('slow');
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : `error ${err.code ?? err.message}`));
    req.end();
  });
}

/**
 * Runs `lose` (which empties Redis) while every instance is asked over HTTP, then waits until all
 * 3 are Running again and checks that none was restarted, moved or went silent.
 */
async function survives(t: { diagnostic(msg: string): void }, lose: () => Promise<void>): Promise<void> {
  const before = new Map((await instances()).map((i) => [i.id, i]));
  assert.equal(before.size, 3);
  for (const i of before.values()) assert.ok(i.pid && pidAlive(i.pid), `${i.id} runs`);
  // Running is "spawned" (no readiness probe here): first every instance must really answer, or a
  // process still starting up would read as one that the data loss made go silent.
  await waitFor(async () => (await Promise.all([...before.values()].map(async (i) => (await ask(i.ports[0]!.hostPort)) === i.id))).every(Boolean), { what: 'every instance answering before Redis loses its data' });
  const failures: string[] = [];
  let asking = true;
  const prober = (async () => {
    while (asking) {
      for (const i of before.values()) {
        const answer = await ask(i.ports[0]!.hostPort);
        // A refused connection or another body means the process went away or was replaced; a
        // slow answer on a loaded machine means neither.
        if (answer !== i.id && answer !== 'slow') failures.push(`${i.id}: ${answer}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const t0 = Date.now();
  try {
    await lose();
    const back = await waitFor(async () => {
      const r = await instances().catch(() => [] as InstanceView[]);
      return r.length === 3 && r.every((i) => i.phase === 'Running' && i.ready) ? r : undefined;
    }, { timeoutMs: 40_000, what: '3 instances Running again' });
    t.diagnostic(`data lost to all 3 Running again: ${Date.now() - t0} ms`);
    for (const i of back) {
      const was = before.get(i.id);
      assert.ok(was, `${i.id} is one of those that ran before`);
      assert.equal(i.node, was.node, `${i.id} on the same node`);
      assert.equal(i.pid, was.pid, `${i.id} has the same pid`);
      assert.equal(i.restarts, 0, `${i.id} was never restarted`);
      assert.ok(pidAlive(i.pid!), `${i.id}'s process is alive`);
      assert.equal(processGroupsOf(i.id).size, 1, `one copy of ${i.id}`);
      assert.equal(await httpGet(i.ports[0]!.hostPort), i.id);
    }
  } finally {
    asking = false;
    await prober;
  }
  assert.deepEqual(failures, [], 'every instance answered HTTP throughout');
  // Desired state is back from Git, and the nodes registered again.
  const [d] = await waitFor(async () => {
    const ds = await deployments();
    return ds.length === 1 && ds[0]!.ready === 3 && ds[0]!.replicas === 3 ? ds : undefined;
  }, { what: 'the deployment back from Git, 3 ready' });
  assert.equal(d!.commit, head.trim());
  assert.deepEqual((await nodes()).map((n) => [n.name, n.ready]), [['node-1', true], ['node-2', true]]);
  const evs = await events();
  assert.ok(evs.some((e) => e.reason === 'RedisDataLost' && e.object === 'cluster'), 'the reconciler recorded RedisDataLost');
  assert.ok(evs.some((e) => e.reason === 'Adopted' && e.object === 'deployment/default/web'), 'the instances were adopted');
  assert.ok(!evs.some((e) => e.reason === 'Created' && e.object === 'deployment/default/web'), 'no instance was created anew');
}

/** The processes' last lines with a failure: what the reconciler and the agents decided. */
async function explained(work: Promise<void>): Promise<void> {
  try {
    await work;
  } catch (err) {
    if (err instanceof Error) err.message += `\n${procs.map((p) => p.output().slice(-3000)).join('\n---\n')}`;
    throw err;
  }
}

test('FLUSHALL: every instance keeps running on its node, is adopted, and nothing restarts', async (t) => {
  await explained(survives(t, async () => {
    await redis.flushall();
  }));
});

test('Redis restarted empty (no persistence): the same', async (t) => {
  await explained(survives(t, async () => {
    const port = server.port;
    await server.stop();
    // An empty dir: nothing of the old data comes back.
    server = await startServer(port);
  }));
});
