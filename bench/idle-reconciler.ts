/**
 * idle-reconciler: what the reconciler costs while nothing changes, holding 10,000 Deployments,
 * all applied and reconciled once, over 30 s: its own periodic resync (10 s, the default) counts
 * as idle work. CPU (utime + stime) and RSS are read from /proc/<pid> of the reconciler process only.
 *
 * By default the Deployments have `replicas: 0` and no agent runs: no instances, so the figure is
 * the cost of holding and resyncing the Deployments themselves, and it is reached within a minute
 * or two whatever the scheduler's speed. BENCH_IDLE_AGENTS=100 runs them with 1 replica each on
 * that many hollow agents (bench/hollow-cluster.ts) instead, idle once all 10,000 are Running:
 * a cluster at rest with heartbeats, node checks and agent resyncs (this needs scale-10k to
 * converge within BENCH_SCALE_TIMEOUT_S).
 */
import { loadavg } from 'node:os';
import { commitStaged, cpuSeconds, EXTRA_RECONCILER_ARGS, rssMiB, scaleDeployment, stageDeployments, startHollowCluster, waitRunning, type HollowCluster } from './hollow-cluster.ts';
import { collectGarbage, sleep, type BenchContext, type Benchmark } from './harness.ts';
import { median } from './stats.ts';

const DEPLOYMENTS = Number(process.env.BENCH_IDLE_DEPLOYMENTS ?? 10_000);
const AGENTS = Number(process.env.BENCH_IDLE_AGENTS ?? 0);
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60);
/** After convergence: the tail of triggered reconciles ends, one resync period. */
const SETTLE_S = Number(process.env.BENCH_IDLE_SETTLE_S ?? 10);
const CONVERGE_TIMEOUT_S = Number(process.env.BENCH_SCALE_TIMEOUT_S ?? 240);
const PROF_DIR = process.env.BENCH_CPU_PROF;
const what = AGENTS > 0 ? `Running on ${AGENTS} hollow agents` : 'with replicas 0 (no agents, no instances)';

export const idleReconciler: Benchmark = {
  name: 'idle-reconciler',
  description: `reconciler CPU and RSS at rest holding ${DEPLOYMENTS.toLocaleString('en-US')} Deployments ${what}, over ${IDLE_S} s (reconciler ${EXTRA_RECONCILER_ARGS.length ? EXTRA_RECONCILER_ARGS.join(' ') : 'defaults: resync 10 s'})`,
  async run(ctx) {
    const cluster = await startHollowCluster(ctx, { agents: AGENTS, nodeArgs: PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [] });
    const pid = cluster.reconcilerPid;
    const rssEmpty = rssMiB(pid);
    await stageDeployments(cluster.repo, DEPLOYMENTS, 100, AGENTS > 0 ? 1 : 0);
    const commit = await commitStaged(cluster.repo, `${DEPLOYMENTS} deployments`);
    if (AGENTS > 0) {
      const r = await waitRunning(ctx, cluster, DEPLOYMENTS, commit, CONVERGE_TIMEOUT_S * 1000);
      if (!r.complete) throw new Error(`did not converge within ${CONVERGE_TIMEOUT_S} s (${r.last.running}/${DEPLOYMENTS} Running): nothing idle to measure`);
      ctx.log(`converged: ${DEPLOYMENTS.toLocaleString('en-US')} instances Running ${r.seconds.toFixed(1)} s after the commit; settling ${SETTLE_S} s`);
    } else {
      const s = await waitReconciled(ctx, cluster, commit);
      ctx.log(`converged: all ${DEPLOYMENTS.toLocaleString('en-US')} Deployments reconciled at the commit ${s.toFixed(1)} s after it; settling ${SETTLE_S} s`);
    }
    await sleep(SETTLE_S * 1000);
    cluster.check();

    // The bench's own polling has stopped: this process is now only the agents (if any).
    collectGarbage();
    const t0 = performance.now();
    const start = { reconciler: cpuSeconds(pid), redis: cpuSeconds(cluster.redisPid), agents: process.cpuUsage() };
    const slices: number[] = [];
    const rssSamples: number[] = [];
    let last = { t: t0, cpu: start.reconciler };
    for (let s = 1; s <= IDLE_S; s++) {
      await sleep(t0 + s * 1000 - performance.now());
      cluster.check();
      rssSamples.push(rssMiB(pid));
      if (s % 10 === 0 || s === IDLE_S) {
        const now = { t: performance.now(), cpu: cpuSeconds(pid) };
        slices.push((100 * (now.cpu - last.cpu)) / ((now.t - last.t) / 1000));
        last = now;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const pct = (cpu: number) => (100 * cpu) / seconds;
    const reconcilerPct = pct(cpuSeconds(pid) - start.reconciler);
    const redisPct = pct(cpuSeconds(cluster.redisPid) - start.redis);
    const u = process.cpuUsage(start.agents);
    // The median of one sample a second: the heap breathes by 100+ MiB between collections.
    const rss = median(rssSamples);
    const peakRss = Math.max(...rssSamples);
    const per1k = rss / (DEPLOYMENTS / 1000);
    ctx.log(`reconciler over ${seconds.toFixed(1)} s idle: ${reconcilerPct.toFixed(2)}% of one core (per 10 s: ${slices.map((x) => `${x.toFixed(1)}%`).join(', ')}); load average ${loadavg()[0]!.toFixed(1)}`);
    ctx.log(`reconciler RSS ${rss.toFixed(0)} MiB (median of the window, peak ${peakRss.toFixed(0)} MiB; ${rssEmpty.toFixed(0)} MiB before the commit, so ${((rss - rssEmpty) / (DEPLOYMENTS / 1000)).toFixed(1)} MiB per 1,000 Deployments above that)`);
    ctx.log(`meanwhile: redis-server ${redisPct.toFixed(1)}% of one core${AGENTS > 0 ? `, the ${AGENTS} hollow agents (this process) ${pct((u.user + u.system) / 1e6).toFixed(1)}%` : ''}`);
    return [
      { name: `idle reconciler CPU (${DEPLOYMENTS} deployments)`, value: reconcilerPct, unit: '% of a core', digits: 2 },
      // The window's average holds the one major collection of the commit's garbage (a 10 s slice
      // of ~13% once, 20 to 30 s after the commit); the median slice is the steady state.
      { name: 'idle reconciler CPU, median 10 s slice', value: median(slices), unit: '% of a core', digits: 2 },
      { name: 'idle reconciler RSS', value: rss, unit: 'MiB' },
      { name: 'idle reconciler RSS per 1,000 deployments', value: per1k, unit: 'MiB' },
    ];
  },
};

/** Seconds from the commit until every Deployment's status was written at that commit (replicas 0: nothing else to wait for). */
async function waitReconciled(ctx: BenchContext, cluster: HollowCluster, commit: { t0: number; sha: string }): Promise<number> {
  const pending = new Map(Array.from({ length: DEPLOYMENTS }, (_, i) => scaleDeployment(i, 0).metadata).map((m) => [`${m.namespace}/${m.name}`, { namespace: m.namespace!, name: m.name }]));
  let nextLog = 10;
  for (;;) {
    cluster.check();
    const left = [...pending.values()];
    for (let i = 0; i < left.length; i += 2_000) {
      const chunk = left.slice(i, i + 2_000);
      const statuses = await cluster.store.readDeploymentStatuses(chunk);
      statuses.forEach((s, j) => {
        if (s?.observedCommit === commit.sha) pending.delete(`${chunk[j]!.namespace}/${chunk[j]!.name}`);
      });
    }
    const s = (performance.now() - commit.t0) / 1000;
    if (pending.size === 0) return s;
    if (s >= nextLog) {
      ctx.log(`${s.toFixed(0).padStart(4)} s: ${DEPLOYMENTS - pending.size} of ${DEPLOYMENTS} Deployments reconciled`);
      nextLog += 10;
    }
    if (s >= CONVERGE_TIMEOUT_S) throw new Error(`only ${DEPLOYMENTS - pending.size}/${DEPLOYMENTS} Deployments reconciled within ${CONVERGE_TIMEOUT_S} s: nothing idle to measure`);
    await sleep(1_000);
  }
}
