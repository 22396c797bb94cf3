/**
 * webhook-to-serving: a signed GitHub push webhook received by the reconciler -> fetch over smart
 * HTTP (git http-backend), validate, apply, plan, schedule -> two agent processes -> every replica
 * of the pushed commit answering HTTP. The repository is a bare one behind the test helper's smart
 * HTTP server; the reconciler polls once an hour, so only the webhook triggers the fetch. Each push
 * changes the template (a greeting), so 3 new replicas replace the old ones. Times run from just
 * before the webhook POST (the commit is already pushed) until 3 replicas answer with the new
 * greeting; between pushes the bench waits, untimed, for exactly 3 Running and the old ports closed.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { InstanceView } from '../reconciler/api/views.ts';
import { freePort, startRedisServer } from '../cli/redis-server.ts';
import { spawnGantry, type GantryProcess } from '../test/helpers/gantry-process.ts';
import { startGitHttpServer } from '../test/helpers/git-http-server.ts';
import { createRepo } from '../test/helpers/git-repo.ts';
import { Deferred, freshPrefix, sleep, tempDir, type Benchmark, type BenchContext, type Figure, httpGet } from './harness.ts';
import { formatSummary, summarize } from './stats.ts';
import { apiFetch } from '../test/helpers/api-auth.ts';

const PUSHES = Number(process.env.BENCH_PUSHES ?? 20);
const REPLICAS = 3;
const POLL_MS = 5;
const STEP_TIMEOUT_MS = 30_000;
const SECRET = randomUUID();

const web = (greeting: string) => `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: ${REPLICAS}
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: server
          command: ["node", "-e"]
          args:
            - "require('http').createServer((q, s) => s.end(process.env.GREETING)).listen(+process.env.PORT, '127.0.0.1')"
          env:
            - name: GREETING
              value: "${greeting}"
          ports:
            - name: http
              containerPort: 8080
          resources:
            cpu: 100m
            memory: 32Mi
`;

export const webhookToServing: Benchmark = {
  name: 'webhook-to-serving',
  description: `signed push webhook -> ${REPLICAS} replicas of the pushed commit answering, remote repo over smart HTTP, reconciler + 2 agents as processes (${PUSHES} pushes)`,
  async run(ctx) {
    const redisDir = tempDir(ctx, 'redis');
    const redis = await startRedisServer({ dir: redisDir });
    ctx.defer(async () => {
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5_000).unref());
      if ((await Promise.race([redis.stop(), timeout])) === 'timeout') redis.process.kill('SIGKILL');
    });
    const dataDir = tempDir(ctx, 'data');
    const repo = await createRepo({ bare: true });
    ctx.defer(() => repo.cleanup());
    let greeting = 'g-initial';
    await repo.commitFiles({ 'shop.yaml': web(greeting) }, 'initial');
    const git = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
    ctx.defer(() => git.close());
    const repoUrl = `${git.url}/${basename(repo.dir)}`;

    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const hookPort = await freePort();
    const hooks = `http://127.0.0.1:${hookPort}`;
    const prefix = freshPrefix();
    const procs: GantryProcess[] = [];
    ctx.defer(() => stopAll(procs, dataDir));
    const parent = ['--parent-pid', String(process.pid)];
    procs.push(
      spawnGantry(
        ['reconciler', '--redis', redis.url, '--prefix', prefix, '--repo', repoUrl, '--port', String(port), '--webhook-port', String(hookPort), '--data-dir', dataDir, '--resync', '2s', '--poll-interval', '1h', '--webhook-secret-env', 'BENCH_WEBHOOK_SECRET', ...parent],
        { env: { BENCH_WEBHOOK_SECRET: SECRET } },
      ),
    );
    for (const node of ['node-1', 'node-2']) {
      procs.push(spawnGantry(['agent', '--node', node, '--redis', redis.url, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '2', '--memory', '1Gi', '--heartbeat', '1s', '--stop-instances-on-exit', ...parent]));
    }

    const listInstances = async (): Promise<InstanceView[]> => {
      for (const p of procs) if (p.child.exitCode !== null) throw new Error(`a gantry process exited (${p.child.exitCode}):\n${p.output().slice(-2000)}`);
      const res = await apiFetch(`${api}/api/v1/instances?namespace=shop&deployment=web`);
      if (res.status !== 200) throw new Error(`GET /api/v1/instances: ${res.status}`);
      return ((await res.json()) as { items: InstanceView[] }).items;
    };
    const answers = new Map<string, string>();
    const answerOf = async (i: InstanceView): Promise<string | undefined> => {
      const p = i.ports[0]?.hostPort;
      if (i.phase !== 'Running' || !p || !i.hostIP) return undefined;
      const key = `${i.id}|${i.pid}|${p}`;
      if (!answers.has(key)) {
        try {
          answers.set(key, await httpGet(i.hostIP, p));
        } catch {
          return undefined;
        }
      }
      return answers.get(key);
    };
    const waitServing = async (g: string, t0: number): Promise<number> => {
      for (;;) {
        const items = await listInstances();
        const bodies = await Promise.all(items.map(answerOf));
        if (bodies.filter((b) => b === g).length >= REPLICAS) return performance.now() - t0;
        if (performance.now() - t0 > STEP_TIMEOUT_MS) throw new Error(`timed out: replicas do not answer "${g}": ${JSON.stringify(items.map((i) => [i.id, i.phase]))}`);
        await sleep(POLL_MS);
      }
    };
    const waitSettled = async (): Promise<void> => {
      const t0 = performance.now();
      for (;;) {
        const items = await listInstances();
        if (items.length === REPLICAS && items.every((i) => i.phase === 'Running')) {
          const live = new Set(items.map((i) => i.ports[0]?.hostPort));
          const gone = [...answers.keys()].filter((k) => !live.has(Number(k.split('|')[2])));
          const closed = await Promise.all(gone.map((k) => httpGet('127.0.0.1', Number(k.split('|')[2]), 500).then(() => false, () => true)));
          if (closed.every(Boolean)) {
            for (const k of gone) answers.delete(k);
            return;
          }
        }
        if (performance.now() - t0 > STEP_TIMEOUT_MS) throw new Error('timed out settling');
        await sleep(20);
      }
    };
    const webhook = async (sha: string): Promise<number> => {
      const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'bench/shop', clone_url: repoUrl } });
      const res = await fetch(`${hooks}/webhooks/github`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
        body,
      });
      await res.text();
      if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
      return performance.now();
    };

    const tStart = performance.now();
    while (!(await fetch(`${api}/healthz`).then((r) => r.ok, () => false))) {
      if (performance.now() - tStart > STEP_TIMEOUT_MS) throw new Error(`the API did not come up:\n${procs[0]!.output().slice(-2000)}`);
      await sleep(50);
    }
    await waitServing(greeting, performance.now());
    await waitSettled();
    ctx.log(`start-up: reconciler + 2 agents + ${REPLICAS} replicas serving in ${(performance.now() - tStart).toFixed(0)} ms`);

    const toServing: number[] = [];
    const toAck: number[] = [];
    for (let i = 0; i <= PUSHES; i++) {
      greeting = `g${i}-${Math.random().toString(36).slice(2, 8)}`;
      const sha = await repo.commitFiles({ 'shop.yaml': web(greeting) }, greeting); // pushed to the bare repository, untimed
      const t0 = performance.now();
      const acked = await webhook(sha);
      const ms = await waitServing(greeting, t0);
      if (i > 0) {
        // the first one is a warm-up
        toServing.push(ms);
        toAck.push(acked - t0);
      }
      await waitSettled();
    }
    const serving = summarize(toServing);
    const ack = summarize(toAck);
    ctx.log(`webhook -> 202 (ms)                      ${formatSummary(ack)}`);
    ctx.log(`webhook -> ${REPLICAS} new replicas answering (ms) ${formatSummary(serving)}`);
    return [
      { name: `webhook -> ${REPLICAS} replicas answering p50`, value: serving.p50, unit: 'ms' },
      { name: `webhook -> ${REPLICAS} replicas answering p95`, value: serving.p95, unit: 'ms' },
      { name: 'webhook -> 202 accepted p50', value: ack.p50, unit: 'ms' },
    ];
  },
};

/** The figures as the lead's runner registers them: name, formatted value, unit. */
export async function benchWebhookToServing(): Promise<{ name: string; value: string; unit: string }[]> {
  const deferred = new Deferred();
  const ctx: BenchContext = { log: (line) => console.log(`   ${line}`), defer: (fn) => deferred.add(fn) };
  try {
    const figures: Figure[] = await webhookToServing.run(ctx);
    return figures.map((f) => ({ name: f.name, value: f.value.toFixed(f.digits ?? (Math.abs(f.value) >= 100 ? 0 : 1)), unit: f.unit }));
  } finally {
    await deferred.runAll((err) => console.error(`   cleanup failed: ${err instanceof Error ? err.message : String(err)}`));
  }
}

/** SIGTERM (agents stop their instances), SIGKILL after 5 s, then any process left in the data dir. */
async function stopAll(procs: GantryProcess[], dataDir: string): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 5_000);
      await p.stop('SIGTERM');
      clearTimeout(timer);
    }),
  );
  let root: string;
  try {
    root = realpathSync(dataDir);
  } catch {
    return;
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(root + '/')) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone, or not ours to look at
    }
  }
}
