/**
 * What scale-10k and idle-reconciler share: a real `gantry reconciler` process on a private
 * redis-server and a Git repository, and many hollow agents (`startAgent({ hollow: true })`,
 * agents/hollow-runtime.ts) in this process: real registration, heartbeats, jobs, host ports and
 * status writes, no processes. One process for all agents, not one each: a hundred Node processes
 * would take ~6 GiB and their start-up alone would swamp 2 cores, and a hollow agent is mostly
 * waiting on Redis. Each agent has its own loopback address (127.0.1.x), as nodes have their own
 * IPs, so their ports never collide. Everything is stopped and removed by the context's cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startAgent, type AgentHandle } from '../agents/agent.ts';
import { freePort } from '../cli/redis-server.ts';
import type { NodeView } from '../reconciler/api/views.ts';
import type { Deployment } from '../schemas/generated/index.ts';
import { connectRedis } from '../state/connection.ts';
import { createKeys } from '../state/keys.ts';
import { Store } from '../state/store.ts';
import { apiFetch } from '../test/helpers/api-auth.ts';
import { GANTRY_BIN } from '../test/helpers/gantry-process.ts';
import { createRepo, gitAsync, type TestRepo } from '../test/helpers/git-repo.ts';
import { NAMESPACES, namespaceObjects } from './fixtures.ts';
import { benchRedis, freshPrefix, sleep, tempDir, type BenchContext } from './harness.ts';

export interface HollowCluster {
  repo: TestRepo;
  store: Store;
  api: string;
  /** The reconciler's pid (its CPU and RSS are read from /proc). */
  reconcilerPid: number;
  redisPid: number;
  nodes: string[];
  /** The reconciler's last output lines, for error messages. */
  reconcilerOutput(): string;
  /** Throws when the reconciler process has exited; logs what agents reported as failing since the last call. */
  check(): void;
}

/** BENCH_RECONCILER_ARGS="--resync 60s": more flags for the reconciler, to see what a setting changes. */
export const EXTRA_RECONCILER_ARGS = (process.env.BENCH_RECONCILER_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Start-up steps that may take long on a loaded machine; each is a clear error past this. */
const STEP_TIMEOUT_MS = 120_000;

export async function startHollowCluster(ctx: BenchContext, opts: { agents: number; nodeArgs?: string[] }): Promise<HollowCluster> {
  const redis = await benchRedis(ctx);
  const prefix = freshPrefix();
  const dataDir = tempDir(ctx, 'hollow');
  const repo = await createRepo();
  ctx.defer(() => repo.cleanup());
  const ns = namespaceObjects().map((n) => stringify(n)).join('---\n');
  await repo.commitFiles({ 'namespaces.yaml': ns }, 'namespaces only');

  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  // --parent-pid: it also stops if this process dies without running its cleanup.
  const reconciler = spawnTail(
    ['reconciler', '--redis', redis.url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--parent-pid', String(process.pid), ...EXTRA_RECONCILER_ARGS],
    opts.nodeArgs,
  );
  ctx.defer(() => stopChild(reconciler.child));

  const redisConn = connectRedis(redis.url, 'bench-hollow');
  ctx.defer(() => redisConn.quit().catch(() => redisConn.disconnect()));
  const store = new Store(redisConn, createKeys(prefix));

  const nodes = Array.from({ length: opts.agents }, (_, i) => `hollow-${String(i).padStart(3, '0')}`);
  // Before the agents' stop is registered: cleanup runs in reverse, so the dir goes after them.
  const agentDir = memoryDir(ctx, 'hollow-agents');
  const agents: AgentHandle[] = [];
  // Registered before any agent starts: an agent that fails halfway is still stopped.
  ctx.defer(async () => {
    const stopped = Promise.allSettled(agents.map((a) => a.stop()));
    await Promise.race([stopped, sleep(20_000)]);
  });
  const agentErrors: string[] = [];
  // Ten at a time: each opens its connections, log server and worker.
  for (let i = 0; i < nodes.length; i += 10) {
    const batch = nodes.slice(i, i + 10).map((node, j) =>
      startAgent({
        redisUrl: redis.url,
        prefix,
        node,
        hollow: true,
        address: loopbackAddress(i + j),
        dataDir: agentDir,
        cpuMilli: 4000,
        memoryBytes: 8 * 1024 ** 3,
        log: (line) => {
          // Only trouble is worth keeping; start/stop lines for 10,000 instances are not.
          if (/fail|error/i.test(line) && agentErrors.length < 20) agentErrors.push(`${node}: ${line}`);
        },
      }),
    );
    agents.push(...(await Promise.all(batch)));
  }

  const cluster: HollowCluster = {
    repo,
    store,
    api,
    reconcilerPid: reconciler.child.pid!,
    redisPid: redis.process.pid!,
    nodes,
    reconcilerOutput: reconciler.tail,
    check() {
      if (reconciler.child.exitCode !== null || reconciler.child.signalCode !== null) throw new Error(`the reconciler exited (${reconciler.child.exitCode ?? reconciler.child.signalCode}):\n${reconciler.tail()}`);
      if (agentErrors.length > 0) ctx.log(`agent trouble: ${agentErrors.splice(0).join('; ')}`);
    },
  };
  // Every node ready, as the reconciler sees them, before the commit: it is placed on all of them.
  const deadline = performance.now() + STEP_TIMEOUT_MS;
  for (;;) {
    cluster.check();
    // -1 while the API does not answer (it comes up after the first sync), also with no agents.
    const ready = await apiFetch(`${api}/api/v1/nodes`)
      .then((r): Promise<{ items?: NodeView[] }> | { items?: NodeView[] } => (r.ok ? (r.json() as Promise<{ items: NodeView[] }>) : {}))
      .then((r) => r.items?.filter((n) => n.ready).length ?? -1, () => -1);
    if (ready === nodes.length) break;
    if (performance.now() > deadline) throw new Error(`only ${ready}/${nodes.length} hollow nodes ready after ${STEP_TIMEOUT_MS / 1000} s:\n${reconciler.tail()}`);
    await sleep(250);
  }
  return cluster;
}

/**
 * On /dev/shm where it is there: 10,000 instance dirs are made, rewritten and removed, and 100
 * nodes' worth of that on this one machine's disk measured the disk (removing them alone took
 * ~50 s on an ext4 mounted with `discard`), not Gantry.
 */
function memoryDir(ctx: BenchContext, label: string): string {
  if (!existsSync('/dev/shm')) return tempDir(ctx, label);
  const dir = mkdtempSync(join('/dev/shm', `gantry-bench-${label}-`));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** 127.0.1.1, 127.0.1.2, ...: the whole 127/8 is loopback on Linux. */
function loopbackAddress(i: number): string {
  return `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
}

/**
 * Deployment `i`: 1 replica (by default), one container with a port (a host port is allocated), small requests
 * so that 100 nodes hold 10,000; every fifth one has an image (the docker runtime, offered by the
 * hollow nodes). No probes: a hollow container answers on no port.
 */
export function scaleDeployment(i: number, replicas = 1): Deployment {
  const app = `app-${String(i).padStart(5, '0')}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app, namespace: NAMESPACES[i % NAMESPACES.length]!, labels: { app } },
    spec: {
      replicas,
      template: {
        metadata: { labels: { app } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'main',
              ...(i % 5 === 0 ? { image: `registry.example/app:${i % 17}` } : { command: ['node', 'server.js'] }),
              env: [{ name: 'GREETING', value: `hello ${i}` }],
              ports: [{ name: 'http', containerPort: 8080 }],
              resources: { requests: { cpu: '10m', memory: '16Mi' } },
            },
          ],
        },
      },
    },
  };
}

/**
 * Writes `count` deployments as `files` multi-document files under apps/ and stages them; the
 * caller times from just before the commit (commitStaged), as commit-to-serving does.
 */
export async function stageDeployments(repo: TestRepo, count: number, files: number, replicas = 1): Promise<void> {
  const perFile = Math.ceil(count / files);
  await mkdir(join(repo.workDir, 'apps'), { recursive: true });
  for (let f = 0; f * perFile < count; f++) {
    const docs: string[] = [];
    for (let i = f * perFile; i < Math.min(count, (f + 1) * perFile); i++) docs.push(stringify(scaleDeployment(i, replicas)));
    await writeFile(join(repo.workDir, 'apps', `group-${String(f).padStart(3, '0')}.yaml`), `# generated group ${f}\n${docs.join('---\n')}`);
  }
  await gitAsync(['add', '--all'], repo.workDir);
}

export async function commitStaged(repo: TestRepo, message: string): Promise<{ t0: number; sha: string }> {
  const t0 = performance.now();
  await gitAsync(['commit', '--quiet', '-m', message], repo.workDir);
  return { t0, sha: await gitAsync(['rev-parse', 'HEAD'], repo.workDir) };
}

export interface Progress {
  /** Instance records (created by the deployment controller). */
  created: number;
  /** Bound to a node by the scheduler. */
  bound: number;
  /** Reported Running by their agent. */
  running: number;
  /** Restarts reported by the Running ones (hollow containers never end: must stay 0). */
  restarts: number;
}

/**
 * Counts instances by stage. Ids seen Running are not read again (a hollow container never ends),
 * so each poll reads only the statuses still missing: cheap once most are Running.
 */
export class ProgressReader {
  private readonly running = new Map<string, number>();

  constructor(private readonly cluster: HollowCluster) {}

  async read(): Promise<Progress> {
    const { store, nodes } = this.cluster;
    const [{ instances }, perNode] = await Promise.all([store.counts(), Promise.all(nodes.map((n) => store.nodeInstanceIds(n)))]);
    const bound = perNode.flat();
    const unseen = bound.filter((id) => !this.running.has(id));
    for (let i = 0; i < unseen.length; i += 2_000) {
      const chunk = unseen.slice(i, i + 2_000);
      const statuses = await store.readInstanceStatuses(chunk);
      statuses.forEach((s, j) => {
        if (s?.phase === 'Running') this.running.set(chunk[j]!, s.restarts);
      });
    }
    let restarts = 0;
    for (const r of this.running.values()) restarts += r;
    return { created: instances, bound: bound.length, running: this.running.size, restarts };
  }
}

/** utime + stime of a process, in seconds, from /proc/<pid>/stat (Linux; ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the man page; the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident set size of a process, in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A `gantry` child process keeping only the last 64 KiB of its output (10,000 deployments log a lot). */
function spawnTail(args: string[], nodeArgs: string[] = []): { child: ChildProcess; tail: () => string } {
  const child = spawn(process.execPath, [...nodeArgs, GANTRY_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 128 * 1024) out = out.slice(-64 * 1024);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, tail: () => out.slice(-4_000) };
}

/** SIGTERM (a clean stop writes a --cpu-prof profile), SIGKILL after 10 s. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface Convergence {
  complete: boolean;
  /** Seconds from the commit to all Running, or to the timeout. */
  seconds: number;
  last: Progress;
  /** Seconds from the commit to each stage, when reached. */
  stages: { applied?: number; firstCreated?: number; allCreated?: number; allBound?: number; firstRunning?: number; allRunning?: number };
}

/**
 * Polls (every second) until `want` instances are Running or `timeoutMs` has passed since the
 * commit, logging progress every 10 s; a rejected commit or a dead reconciler throws.
 */
export async function waitRunning(ctx: BenchContext, cluster: HollowCluster, want: number, commit: { t0: number; sha: string }, timeoutMs: number): Promise<Convergence> {
  const reader = new ProgressReader(cluster);
  const stages: Convergence['stages'] = {};
  let nextLog = 10;
  for (;;) {
    cluster.check();
    const [p, source] = await Promise.all([reader.read(), cluster.store.readSourceStatus()]);
    const s = (performance.now() - commit.t0) / 1000;
    if (source?.rejectedCommit === commit.sha) throw new Error(`the commit was rejected: ${source.lastError ?? ''} ${(source.errors ?? []).slice(0, 3).join('; ')}`);
    if (stages.applied === undefined && source?.lastAppliedCommit === commit.sha) stages.applied = s;
    if (stages.firstCreated === undefined && p.created > 0) stages.firstCreated = s;
    if (stages.allCreated === undefined && p.created >= want) stages.allCreated = s;
    if (stages.allBound === undefined && p.bound >= want) stages.allBound = s;
    if (stages.firstRunning === undefined && p.running > 0) stages.firstRunning = s;
    if (p.running >= want) {
      stages.allRunning = s;
      return { complete: true, seconds: s, last: p, stages };
    }
    if (s >= nextLog) {
      ctx.log(`${s.toFixed(0).padStart(4)} s: ${stages.applied !== undefined ? 'applied' : 'not applied yet'}, ${p.created} created, ${p.bound} bound, ${p.running} Running`);
      nextLog += 10;
    }
    if (s * 1000 >= timeoutMs) return { complete: false, seconds: s, last: p, stages };
    await sleep(1_000);
  }
}
