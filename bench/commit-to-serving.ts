/**
 * commit-to-serving: the whole path on real parts, timed. A `git commit` in a real repository ->
 * the reconciler process (refs watcher, validate, desired state, plan, schedule) -> Redis/BullMQ ->
 * two agent processes -> new `node -e` HTTP servers, until every replica answers with what the
 * commit says on the host port the API reports. Processes are started exactly as
 * test/e2e/backbone.test.ts starts them.
 */
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readInstanceState } from '../agents/instance-dir.ts';
import type { InstanceView } from '../reconciler/api/views.ts';
import { freePort } from '../cli/redis-server.ts';
import { spawnGantry, type GantryProcess } from '../test/helpers/gantry-process.ts';
import { createRepo, gitAsync } from '../test/helpers/git-repo.ts';
import { benchRedis, freshPrefix, sleep, tempDir, type Benchmark, httpGet } from './harness.ts';
import { formatSummary, summarize } from './stats.ts';
import { bareNodeStart } from './bare-node.ts';
import { apiFetch } from '../test/helpers/api-auth.ts';

const TEMPLATE_COMMITS = Number(process.env.BENCH_COMMITS ?? 20);
const SCALE_PAIRS = Number(process.env.BENCH_SCALE_PAIRS ?? 10);
/** Commits of replicas 0 -> 3 (all three start at once), beside 3 bare servers started at once. */
const FROM_ZERO = Number(process.env.BENCH_FROM_ZERO ?? 10);
const POLL_MS = 5;
const STEP_TIMEOUT_MS = 30_000;

/** The replicas' server, also started bare (bare-node.ts) for the floor. */
const SERVER_JS = "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE_ID + ' ' + process.env.GREETING)).listen(+process.env.PORT, '127.0.0.1')";

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;
const web = (replicas: number, greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: ${replicas}
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
            - "${SERVER_JS}"
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

const refuses = (host: string, port: number) => httpGet(host, port, 500).then(() => false, () => true);

interface Stages {
  /** First instance record of this commit listed by the API (commit seen, applied, planned). */
  created?: number;
  /** All wanted instances of this commit reported Running by their agents. */
  running?: number;
  /** All wanted replicas answer HTTP with the commit's greeting (the figure). */
  serving?: number;
  /** Fewest listed replicas answering HTTP (either greeting) seen by any poll meanwhile. */
  minAnswering?: number;
  /** How long (ms) no listed replica answered at all. */
  outageMs?: number;
}

export const commitToServing: Benchmark = {
  name: 'commit-to-serving',
  description: `git commit -> all replicas answering, reconciler + 2 agents as processes (${TEMPLATE_COMMITS} template commits, ${SCALE_PAIRS} scale up/down pairs)`,
  async run(ctx) {
    const redis = await benchRedis(ctx);
    const prefix = freshPrefix();
    const dataDir = tempDir(ctx, 'data');
    const repo = await createRepo();
    ctx.defer(() => repo.cleanup());
    let greeting = 'g-initial';
    let replicas = 3;
    await repo.commitFiles({ 'namespaces.yaml': NAMESPACE, 'apps/web.yaml': web(replicas, greeting) }, 'web: 3 replicas');

    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const procs: GantryProcess[] = [];
    const pids = new Set<number>();
    ctx.defer(() => stopAll(procs, pids, dataDir));
    // --parent-pid: they also stop if this process dies without running its cleanup.
    const parent = ['--parent-pid', String(process.pid)];
    procs.push(spawnGantry(['reconciler', '--redis', redis.url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--resync', '2s', ...parent]));
    for (const node of ['node-1', 'node-2']) {
      procs.push(spawnGantry(['agent', '--node', node, '--redis', redis.url, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '2', '--memory', '1Gi', '--heartbeat', '1s', '--stop-instances-on-exit', ...parent]));
    }

    const listInstances = async (): Promise<InstanceView[]> => {
      for (const p of procs) if (p.child.exitCode !== null) throw new Error(`a gantry process exited (${p.child.exitCode}):\n${p.output().slice(-2000)}`);
      const res = await apiFetch(`${api}/api/v1/instances?namespace=shop&deployment=web`);
      if (res.status !== 200) throw new Error(`GET /api/v1/instances: ${res.status}`);
      const items = ((await res.json()) as { items: InstanceView[] }).items;
      for (const i of items) if (i.pid) pids.add(i.pid);
      return items;
    };

    // Answers per incarnation: an instance never changes its greeting, so each is asked until it answers once.
    const answers = new Map<string, string>();
    const answerOf = async (i: InstanceView): Promise<string | undefined> => {
      const port = i.ports[0]?.hostPort;
      if (i.phase !== 'Running' || !port || !i.hostIP) return undefined;
      const key = `${i.id}|${i.pid}|${port}`;
      if (!answers.has(key)) {
        try {
          answers.set(key, await httpGet(i.hostIP, port));
        } catch {
          return undefined; // not listening yet
        }
      }
      return answers.get(key);
    };

    /** Polls every ~5 ms until `want` replicas answer with `greeting`; stage times relative to t0. */
    const waitServing = async (t0: number, sha: string, want: number, g: string, wantNew = want): Promise<Stages> => {
      const stages: Stages = {};
      let lastPoll: number | undefined;
      let lastAnswering: number | undefined;
      const deadline = t0 + STEP_TIMEOUT_MS;
      for (;;) {
        const items = await listInstances();
        const now = () => performance.now() - t0;
        const ofCommit = items.filter((i) => i.commit === sha);
        if (stages.created === undefined && ofCommit.length > 0) stages.created = now();
        // For a rollout all replicas belong to the commit; for a scale-up only the added one.
        if (stages.running === undefined && ofCommit.filter((i) => i.phase === 'Running').length >= wantNew) stages.running = now();
        const bodies = await Promise.all(items.map(async (i) => [i.id, await answerOf(i)] as const));
        const serving = new Set(bodies.filter(([id, b]) => b === `${id} ${g}`).map(([id]) => id));
        // Listed replicas that answer at all (old or new greeting): what a client following the API could reach.
        const answering = bodies.filter(([, b]) => b !== undefined).length;
        stages.minAnswering = Math.min(stages.minAnswering ?? Infinity, answering);
        // Time during which no listed replica answered, between polls (so within ~one poll period).
        const t = now();
        if (answering === 0 && lastPoll !== undefined && lastAnswering === 0) stages.outageMs = (stages.outageMs ?? 0) + (t - lastPoll);
        stages.outageMs ??= 0;
        lastPoll = t;
        lastAnswering = answering;
        if (serving.size >= want) {
          stages.serving = now();
          return stages;
        }
        if (performance.now() > deadline) throw new Error(`timed out: ${serving.size}/${want} replicas answer "${g}"; instances: ${JSON.stringify(items.map((i) => [i.id, i.phase, i.reason]))}`);
        await sleep(POLL_MS);
      }
    };

    /** Not timed: exactly `want` instances, all Running, and every port of a removed one closed. */
    const waitSettled = async (want: number): Promise<InstanceView[]> => {
      const deadline = performance.now() + STEP_TIMEOUT_MS;
      for (;;) {
        const items = await listInstances();
        if (items.length === want && items.every((i) => i.phase === 'Running')) {
          const live = new Set(items.map((i) => i.ports[0]?.hostPort));
          const gone = [...answers.keys()].map((k) => Number(k.split('|')[2])).filter((p) => !live.has(p));
          const closed = await Promise.all(gone.map((p) => refuses('127.0.0.1', p)));
          if (closed.every(Boolean)) {
            for (const k of [...answers.keys()]) if (!live.has(Number(k.split('|')[2]))) answers.delete(k);
            return items;
          }
        }
        if (performance.now() > deadline) throw new Error(`timed out settling at ${want} instances: ${JSON.stringify(items.map((i) => [i.id, i.phase]))}`);
        await sleep(20);
      }
    };

    const commit = async (msg: string): Promise<{ t0: number; sha: string }> => {
      await writeFile(join(repo.workDir, 'apps/web.yaml'), web(replicas, greeting));
      await gitAsync(['add', '--all'], repo.workDir);
      const t0 = performance.now();
      await gitAsync(['commit', '--quiet', '-m', msg], repo.workDir);
      return { t0, sha: await gitAsync(['rev-parse', 'HEAD'], repo.workDir) };
    };

    // Start-up (not timed): the first commit fully serving.
    const tStart = performance.now();
    for (;;) {
      for (const p of procs) if (p.child.exitCode !== null) throw new Error(`a gantry process exited (${p.child.exitCode}):\n${p.output().slice(-2000)}`);
      if ((await fetch(`${api}/healthz`).then((r) => r.ok, () => false))) break;
      if (performance.now() - tStart > STEP_TIMEOUT_MS) throw new Error(`the API did not come up:\n${procs[0]!.output().slice(-2000)}`);
      await sleep(50);
    }
    await waitServing(performance.now(), '-', 3, greeting).catch((err: Error) => {
      throw new Error(`${err.message}\n${procs.map((p) => p.output().slice(-1500)).join('\n---\n')}`);
    });
    await waitSettled(3);
    ctx.log(`start-up: reconciler + 2 agents + 3 replicas serving in ${(performance.now() - tStart).toFixed(0)} ms`);

    const template: Stages[] = [];
    // The same server started by hand, between the commits: what any replica's start costs on this machine now.
    const bare1: number[] = [];
    for (let i = 0; i <= TEMPLATE_COMMITS; i++) {
      greeting = `g${i}-${Math.random().toString(36).slice(2, 8)}`;
      const { t0, sha } = await commit(`greeting ${greeting}`);
      const s = await waitServing(t0, sha, replicas, greeting);
      if (i > 0) template.push(s); // the first one is a warm-up
      await waitSettled(replicas);
      if (i > 0) bare1.push(await bareNodeStart(SERVER_JS, 1, POLL_MS));
    }

    const up: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < SCALE_PAIRS; i++) {
      replicas = 4;
      let c = await commit('scale to 4');
      up.push((await waitServing(c.t0, c.sha, 4, greeting, 1)).serving!);
      const before = await waitSettled(4);
      replicas = 3;
      c = await commit('scale to 3');
      // Done when the API lists 3 and the removed replica's port refuses connections.
      for (;;) {
        const items = await listInstances();
        if (items.length === 3) {
          const removed = before.filter((b) => !items.some((i) => i.id === b.id));
          const closed = await Promise.all(removed.map((r) => refuses(r.hostIP ?? '127.0.0.1', r.ports[0]!.hostPort)));
          if (closed.every(Boolean)) break;
        }
        if (performance.now() - c.t0 > STEP_TIMEOUT_MS) throw new Error('timed out scaling down to 3');
        await sleep(POLL_MS);
      }
      down.push(performance.now() - c.t0);
      await waitSettled(3);
    }

    // 0 -> 3: the three start together, so the floor is three bare servers started together.
    const zero: number[] = [];
    const bare3: number[] = [];
    for (let i = 0; i < FROM_ZERO; i++) {
      replicas = 0;
      await commit('scale to 0');
      await waitSettled(0);
      replicas = 3;
      const c = await commit('scale to 3');
      zero.push((await waitServing(c.t0, c.sha, 3, greeting)).serving!);
      await waitSettled(3);
      bare3.push(await bareNodeStart(SERVER_JS, 3, POLL_MS));
    }

    const serving = summarize(template.map((s) => s.serving!));
    const created = summarize(template.map((s) => s.created!));
    const running = summarize(template.map((s) => s.running!));
    const upS = summarize(up);
    const downS = summarize(down);
    ctx.log(`template change, 3 replicas replaced (ms):`);
    ctx.log(`  first new instance listed  ${formatSummary(created)}`);
    ctx.log(`  all 3 new ones Running     ${formatSummary(running)}`);
    ctx.log(`  all 3 answer new greeting  ${formatSummary(serving)}`);
    const dips = template.filter((s) => s.minAnswering! < 3);
    const minAnswering = Math.min(...template.map((s) => s.minAnswering!));
    const outage = summarize(template.map((s) => s.outageMs!));
    ctx.log(`  during the rollout, fewer than 3 listed replicas answered in ${dips.length}/${template.length} commits (fewest: ${minAnswering})`);
    ctx.log(`  no listed replica answering  ${formatSummary(outage)}`);
    if (SCALE_PAIRS > 0) {
      ctx.log(`scale 3 -> 4, 4th answers (ms)   ${formatSummary(upS)}`);
      ctx.log(`scale 4 -> 3, 4th gone (ms)      ${formatSummary(downS)}`);
    }
    const b1 = summarize(bare1);
    const b3 = summarize(bare3);
    const z = summarize(zero);
    ctx.log(`bare node server, start -> answering (ms): ${formatSummary(b1)}`);
    ctx.log(`  (a template change rolls 1 replica at a time, maxSurge 25% of 3: three starts one after another)`);
    if (FROM_ZERO > 0) {
      ctx.log(`scale 0 -> 3, 3 answer (ms)      ${formatSummary(z)}`);
      ctx.log(`3 bare node servers at once (ms) ${formatSummary(b3)}`);
    }
    return [
      { name: 'commit -> 3 replicas answering (template) p50', value: serving.p50, unit: 'ms' },
      { name: 'commit -> 3 replicas answering (template) p95', value: serving.p95, unit: 'ms' },
      { name: 'commit -> 3 new instances Running (API) p50', value: running.p50, unit: 'ms' },
      { name: 'bare node server start -> answering p50 (same run)', value: b1.p50, unit: 'ms' },
      { name: 'template commit -> 3 answering minus bare start (p50; goal <= 50)', value: serving.p50 - b1.p50, unit: 'ms' },
      ...(FROM_ZERO > 0
        ? [
            { name: 'commit -> 3 replicas answering (scale 0 -> 3) p50', value: z.p50, unit: 'ms' },
            { name: '3 bare node servers at once -> answering p50', value: b3.p50, unit: 'ms' },
            { name: 'scale 0 -> 3 minus 3 bare servers (p50)', value: z.p50 - b3.p50, unit: 'ms' },
          ]
        : []),
      { name: 'rollouts with < 3 replicas answering', value: dips.length, unit: `of ${template.length}`, digits: 0 },
      { name: 'rollout: no replica answering p50', value: outage.p50, unit: 'ms' },
      ...(SCALE_PAIRS > 0
        ? [
            { name: 'commit -> 4th replica answering (scale up) p50', value: upS.p50, unit: 'ms' },
            { name: 'commit -> 4th replica answering (scale up) p95', value: upS.p95, unit: 'ms' },
            { name: 'commit -> 4th replica stopped (scale down) p50', value: downS.p50, unit: 'ms' },
          ]
        : []),
    ];
  },
};

/**
 * SIGTERM (agents stop their instances), SIGKILL after 5 s (an agent whose Redis is gone never
 * finishes stopping), then SIGKILL every process still running in the data dir: instances the API
 * reported, ones in the agents' state files, and any other process whose cwd lies there (Linux).
 */
async function stopAll(procs: GantryProcess[], pids: Set<number>, dataDir: string): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      const timer = setTimeout(() => p.child.kill('SIGKILL'), 5_000);
      await p.stop('SIGTERM');
      clearTimeout(timer);
    }),
  );
  const candidates = new Set(pids);
  const agentsDir = join(dataDir, 'agents');
  for (const node of safeReaddir(agentsDir)) {
    for (const id of safeReaddir(join(agentsDir, node, 'instances'))) {
      const state = readInstanceState(join(agentsDir, node, 'instances', id));
      for (const c of state?.containers ?? []) candidates.add(c.pid).add(c.pgid);
    }
  }
  for (const entry of safeReaddir('/proc')) if (/^\d+$/.test(entry)) candidates.add(Number(entry));
  const root = realpathSync(dataDir);
  for (const pid of candidates) {
    let cwd: string;
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    if (!cwd.startsWith(root + '/')) continue; // only processes started for this run
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
