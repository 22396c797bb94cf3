/**
 * rollout-20: time to roll 20 replicas through a rolling update (maxSurge 25%, maxUnavailable
 * 25%), from `git commit` to the last instance of the old revision gone, on real processes: the
 * reconciler and two agents as separate processes, as test/e2e/rollout.test.ts runs them.
 */
import type { InstanceView } from '../reconciler/api/views.ts';
import { freePort } from '../cli/redis-server.ts';
import { spawnGantry } from '../test/helpers/gantry-process.ts';
import { createRepo } from '../test/helpers/git-repo.ts';
import { benchRedis, freshPrefix, sleep, tempDir, type Benchmark } from './harness.ts';
import { summarize } from './stats.ts';
import { apiFetch } from '../test/helpers/api-auth.ts';

const ROLLOUTS = Number(process.env.BENCH_ROLLOUTS ?? 3);
const REPLICAS = 20;

const web = (greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS}
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 25%, maxUnavailable: 25% } }
  template:
    metadata:
      labels: { app: web }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end(process.env.GREETING)).listen(+process.env.PORT, '127.0.0.1')"]
          env: [{ name: GREETING, value: "${greeting}" }]
          ports: [{ name: http, containerPort: 8080 }]
`;

export const rollout20: Benchmark = {
  name: 'rollout-20',
  description: `commit -> last old instance gone, rolling update of ${REPLICAS} replicas (maxSurge 25%), ${ROLLOUTS} rollouts`,
  async run(ctx) {
    const redis = await benchRedis(ctx);
    const prefix = freshPrefix();
    const dataDir = tempDir(ctx, 'rollout');
    const repo = await createRepo();
    ctx.defer(() => repo.cleanup());
    await repo.commitFiles({ 'web.yaml': web('v0') }, 'v0');
    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const procs = [
      spawnGantry(['reconciler', '--redis', redis.url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir]),
      ...['node-1', 'node-2'].map((n) => spawnGantry(['agent', '--node', n, '--redis', redis.url, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '16', '--stop-instances-on-exit'])),
    ];
    for (const p of procs) ctx.defer(() => p.stop());
    const instances = async () => ((await (await apiFetch(`${api}/api/v1/instances`)).json()) as { items: InstanceView[] }).items;
    const until = async (check: (all: InstanceView[]) => boolean, what: string) => {
      const deadline = Date.now() + 120_000;
      for (;;) {
        const all = await instances().catch(() => undefined);
        if (all && check(all)) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(10);
      }
    };
    const settled = (all: InstanceView[]) => all.length === REPLICAS && all.every((i) => i.phase === 'Running') && new Set(all.map((i) => i.revision)).size === 1;
    await until(settled, 'the first revision running');
    const times: number[] = [];
    for (let i = 1; i <= ROLLOUTS; i++) {
      const old = (await instances())[0]!.revision;
      const t0 = performance.now();
      await repo.commitFiles({ 'web.yaml': web(`v${i}`) }, `v${i}`);
      await until((all) => settled(all) && all[0]!.revision !== old, `rollout ${i}`);
      times.push(performance.now() - t0);
      ctx.log(`rollout ${i}: ${(times.at(-1)! / 1000).toFixed(2)} s`);
    }
    const s = summarize(times);
    return [
      { name: `rollout of ${REPLICAS} replicas (maxSurge 25%) p50`, value: s.p50 / 1000, unit: 's', digits: 2 },
      { name: `rollout of ${REPLICAS} replicas (maxSurge 25%) max`, value: s.max / 1000, unit: 's', digits: 2 },
    ];
  },
};
