/**
 * The Gantry half of swarm-scale: a real Git repository, the reconciler and one agent as processes
 * (one node, as the one-node swarm it is compared with), a Deployment of busybox httpd on the local
 * engine, and polls of the API until the wanted instances run and answer on their host ports. Each
 * poll also records when every instance reached each stage, for the breakdown.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InstanceView } from '../reconciler/api/views.ts';
import { freePort } from '../cli/redis-server.ts';
import { spawnGantry, type GantryProcess } from '../test/helpers/gantry-process.ts';
import { createRepo, gitAsync, type TestRepo } from '../test/helpers/git-repo.ts';
import { apiFetch } from '../test/helpers/api-auth.ts';
import { httpGet, sleep, type BenchContext } from './harness.ts';

export const IMAGE = 'gantry-test/busybox:latest';
/**
 * Between polls, on both sides alike. Each poll costs the side it asks (Gantry's API, the swarm
 * manager in dockerd) CPU that a 2-core machine takes from the starts: every 10 ms, the polls of
 * Gantry's API alone cost about 1.5 CPU-seconds per scale-up.
 */
export const POLL_MS = 25;

const deployment = (replicas: number, greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 25%, maxUnavailable: 25% } }
  template:
    metadata:
      labels: { app: web }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: httpd
          image: ${IMAGE}
          command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
          env: [{ name: GREETING, value: "${greeting}" }]
          ports: [{ name: http, containerPort: 8080 }]
          resources: { requests: { cpu: 10m, memory: 16Mi } }
`;

/** When (ms after the commit) each instance was first seen at each stage. */
export interface InstanceStages {
  listed: number;
  bound?: number;
  /** The agent wrote a first status (Pending/Starting): it has picked the job up. */
  picked?: number;
  running?: number;
  answering?: number;
}

export class GantryCluster {
  private readonly procs: GantryProcess[] = [];
  private api = '';
  private replicas = 3;
  private greeting = 'v0';
  private constructor(
    private readonly repo: TestRepo,
    readonly node: string,
  ) {}

  static async start(ctx: BenchContext, o: { redisUrl: string; prefix: string; dataDir: string; node: string; agentArgs?: string[] }): Promise<GantryCluster> {
    const repo = await createRepo();
    ctx.defer(() => repo.cleanup());
    const c = new GantryCluster(repo, o.node);
    await repo.commitFiles({ 'web.yaml': deployment(3, 'v0') }, 'v0');
    const port = await freePort();
    c.api = `http://127.0.0.1:${port}`;
    const parent = ['--parent-pid', String(process.pid)];
    c.procs.push(spawnGantry(['reconciler', '--redis', o.redisUrl, '--prefix', o.prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', o.dataDir, ...parent]));
    c.procs.push(spawnGantry(['agent', '--node', o.node, '--redis', o.redisUrl, '--prefix', o.prefix, '--data-dir', o.dataDir, '--cpu', '64', '--memory', '64Gi', '--heartbeat', '1s', '--stop-instances-on-exit', ...(o.agentArgs ?? []), ...parent]));
    ctx.defer(() =>
      Promise.all(
        c.procs.map(async (p) => {
          // An agent stopping 20 containers takes a few seconds; one that hangs is killed.
          const timer = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
          await p.stop('SIGTERM');
          clearTimeout(timer);
        }),
      ),
    );
    return c;
  }

  output(): string {
    return this.procs.map((p) => p.output().slice(-3000)).join('\n---\n');
  }

  async instances(): Promise<InstanceView[]> {
    for (const p of this.procs) if (p.child.exitCode !== null) throw new Error(`a gantry process exited (${p.child.exitCode}):\n${this.output()}`);
    const res = await apiFetch(`${this.api}/api/v1/instances?namespace=default&deployment=web`);
    if (res.status !== 200) throw new Error(`GET /api/v1/instances: ${res.status}`);
    return ((await res.json()) as { items: InstanceView[] }).items;
  }

  async waitApi(): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (!(await fetch(`${this.api}/healthz`).then((r) => r.ok, () => false))) {
      if (Date.now() > deadline) throw new Error(`the API did not come up:\n${this.output()}`);
      await sleep(50);
    }
  }

  /** Writes and stages the change (untimed); the returned function is the timed `git commit`. */
  async prepare(change: { replicas?: number; greeting?: string }): Promise<() => Promise<void>> {
    this.replicas = change.replicas ?? this.replicas;
    this.greeting = change.greeting ?? this.greeting;
    await writeFile(join(this.repo.workDir, 'web.yaml'), deployment(this.replicas, this.greeting));
    await gitAsync(['add', '--all'], this.repo.workDir);
    return async () => {
      await gitAsync(['commit', '--quiet', '-m', `replicas ${this.replicas}, ${this.greeting}`], this.repo.workDir);
    };
  }

  /**
   * Polls until `want` instances of one revision (the newest, once `rollout` is set: no other
   * revision left) are Running and answer; stage times per instance, relative to t0.
   */
  async waitServing(t0: number, want: number, opts: { rollout?: string; before?: string[]; timeoutMs?: number; pollMs?: number } = {}): Promise<{ running: number; answering: number; stages: Map<string, InstanceStages> }> {
    const stages = new Map<string, InstanceStages>();
    const answered = new Set<string>();
    // Instances from before the change are not its stages.
    const before = new Set(opts.before ?? []);
    let running: number | undefined;
    const deadline = t0 + (opts.timeoutMs ?? 60_000);
    for (;;) {
      const items = await this.instances();
      const t = performance.now() - t0;
      for (const i of items) {
        if (before.has(i.id)) continue;
        const s = stages.get(i.id) ?? { listed: t };
        stages.set(i.id, s);
        if (s.bound === undefined && i.node) s.bound = t;
        // hostIP comes with the agent's first status only.
        if (s.picked === undefined && i.hostIP !== null) s.picked = t;
        if (s.running === undefined && i.phase === 'Running') s.running = t;
      }
      const current = opts.rollout === undefined ? items : items.filter((i) => i.revision !== opts.rollout);
      const others = items.length - current.length;
      const live = current.filter((i) => i.phase === 'Running');
      await Promise.all(
        live.map(async (i) => {
          const port = i.ports[0]?.hostPort;
          const key = `${i.id}|${port}`;
          if (!port || answered.has(key)) return;
          if (await httpGet(i.hostIP ?? '127.0.0.1', port, 500).then(() => true, () => false)) {
            answered.add(key);
            const st = stages.get(i.id);
            if (st) st.answering ??= performance.now() - t0;
          }
        }),
      );
      const answering = live.filter((i) => answered.has(`${i.id}|${i.ports[0]?.hostPort}`)).length;
      if (running === undefined && live.length >= want && others === 0) running = performance.now() - t0;
      if (answering >= want && others === 0 && current.length === want) return { running: running ?? performance.now() - t0, answering: performance.now() - t0, stages };
      if (performance.now() > deadline) throw new Error(`timed out: ${answering}/${want} answering; ${JSON.stringify(items.map((i) => [i.id, i.revision, i.phase, i.reason]))}\n${this.output()}`);
      await sleep(opts.pollMs ?? POLL_MS);
    }
  }

  async ids(): Promise<string[]> {
    return (await this.instances()).map((i) => i.id);
  }

  /** Revision of the instances now (one revision when settled). */
  async revision(): Promise<string> {
    return (await this.instances())[0]!.revision;
  }
}
