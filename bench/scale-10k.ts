/**
 * scale-10k: one commit of 10,000 Deployments (1 replica each) to all 10,000 instances Running,
 * on a real reconciler process and 100 hollow agents (bench/hollow-cluster.ts): the reconciler's
 * whole path (read, validate, desired state, plan, create, schedule, bind, node jobs, statuses)
 * at the scale of a large cluster, without the cost of running 10,000 processes. Ends at a
 * timeout with how far it got and the rate, so the run always ends.
 */
import { loadavg } from 'node:os';
import { commitStaged, cpuSeconds, EXTRA_RECONCILER_ARGS, rssMiB, stageDeployments, startHollowCluster, waitRunning } from './hollow-cluster.ts';
import type { Benchmark, Figure } from './harness.ts';

const DEPLOYMENTS = Number(process.env.BENCH_SCALE_DEPLOYMENTS ?? 10_000);
const AGENTS = Number(process.env.BENCH_SCALE_AGENTS ?? 100);
const TIMEOUT_S = Number(process.env.BENCH_SCALE_TIMEOUT_S ?? 240);
/** BENCH_CPU_PROF=<dir>: the reconciler writes a V8 CPU profile there when it stops (node --cpu-prof). */
const PROF_DIR = process.env.BENCH_CPU_PROF;

export const scale10k: Benchmark = {
  name: 'scale-10k',
  description: `git commit of ${DEPLOYMENTS.toLocaleString('en-US')} Deployments (1 replica) -> all instances Running, reconciler process${EXTRA_RECONCILER_ARGS.length ? ` (${EXTRA_RECONCILER_ARGS.join(' ')})` : ''} + ${AGENTS} hollow agents (timeout ${TIMEOUT_S} s)`,
  async run(ctx) {
    const tStart = performance.now();
    const cluster = await startHollowCluster(ctx, { agents: AGENTS, nodeArgs: PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [] });
    ctx.log(`start-up: reconciler + ${AGENTS} hollow agents (one process) ready in ${((performance.now() - tStart) / 1000).toFixed(1)} s`);
    await stageDeployments(cluster.repo, DEPLOYMENTS, 100);

    const cpu0 = { reconciler: cpuSeconds(cluster.reconcilerPid), redis: cpuSeconds(cluster.redisPid), agents: process.cpuUsage() };
    const commit = await commitStaged(cluster.repo, `${DEPLOYMENTS} deployments`);
    const r = await waitRunning(ctx, cluster, DEPLOYMENTS, commit, TIMEOUT_S * 1000);
    const cpu = {
      reconciler: cpuSeconds(cluster.reconcilerPid) - cpu0.reconciler,
      redis: cpuSeconds(cluster.redisPid) - cpu0.redis,
      // This process: the 100 agents, plus the bench's own polling.
      agents: (() => {
        const u = process.cpuUsage(cpu0.agents);
        return (u.user + u.system) / 1e6;
      })(),
    };

    const at = (s: number | undefined) => (s === undefined ? 'not reached' : `${s.toFixed(1)} s`);
    ctx.log(`stages from the commit: applied ${at(r.stages.applied)}, first instance created ${at(r.stages.firstCreated)}, all created ${at(r.stages.allCreated)}, all bound ${at(r.stages.allBound)}, first Running ${at(r.stages.firstRunning)}, all Running ${at(r.stages.allRunning)}`);
    ctx.log(`CPU over those ${r.seconds.toFixed(0)} s: reconciler ${cpu.reconciler.toFixed(1)} s, redis-server ${cpu.redis.toFixed(1)} s, hollow agents (this process) ${cpu.agents.toFixed(1)} s; reconciler RSS now ${rssMiB(cluster.reconcilerPid).toFixed(0)} MiB`);
    ctx.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (other work on this machine slows every figure)`);
    ctx.log(`restarts reported by Running instances: ${r.last.restarts} (hollow containers never end: must be 0)`);
    const rate = r.last.running / r.seconds;
    if (!r.complete) {
      ctx.log(`TIMED OUT after ${TIMEOUT_S} s: ${r.last.running.toLocaleString('en-US')}/${DEPLOYMENTS.toLocaleString('en-US')} instances Running (${r.last.created} created, ${r.last.bound} bound), ${rate.toFixed(0)} instances/s`);
      return [
        { name: `scale-10k: Running at the ${TIMEOUT_S} s timeout`, value: r.last.running, unit: `of ${DEPLOYMENTS}`, digits: 0 },
        { name: 'scale-10k: throughput until the timeout', value: rate, unit: 'instances/s' },
      ] satisfies Figure[];
    }
    if (r.stages.firstRunning !== undefined && r.seconds > r.stages.firstRunning) {
      ctx.log(`from the first Running to the last: ${((DEPLOYMENTS - 1) / (r.seconds - r.stages.firstRunning)).toFixed(0)} instances/s`);
    }
    ctx.log(`commit -> ${DEPLOYMENTS.toLocaleString('en-US')} instances Running: ${r.seconds.toFixed(1)} s (${rate.toFixed(0)} instances/s)`);
    return [
      { name: `commit -> ${DEPLOYMENTS} instances Running`, value: r.seconds, unit: 's' },
      { name: 'scale-10k throughput', value: rate, unit: 'instances/s' },
    ];
  },
};
