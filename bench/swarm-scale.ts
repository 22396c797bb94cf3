/**
 * swarm-scale: Gantry beside Docker Swarm on the same engine and image, in one run. A scale-up of
 * busybox httpd from 3 to 20 replicas, and a rolling update of 6 (Swarm with its defaults, and with
 * update-parallelism matched to what Gantry's 25%/25% rolls at once), each timed until all wanted
 * replicas run and answer HTTP on their host ports. Gantry's clock starts just before `git commit`,
 * Swarm's just before the service update API call. Rounds alternate Gantry, Swarm and the engine
 * alone (engine-floor.ts), so load on the machine moves all of them alike.
 *
 * Skips itself (one line, no figures) without a Docker engine or the test image, or when
 * `docker swarm init` fails; a swarm initialised here is left at the end (`docker swarm leave --force`).
 */
import { randomUUID } from 'node:crypto';
import { connectDocker, probeEngine } from '../agents/docker-engine.ts';
import { ensurePauseImage } from '../agents/pause-image.ts';
import { benchRedis, freshPrefix, sleep, tempDir, type BenchContext, type Benchmark, type Figure } from './harness.ts';
import { engineFloor } from './engine-floor.ts';
import { GantryCluster, IMAGE, POLL_MS, type InstanceStages } from './swarm-gantry.ts';
import { joinSwarm, SWARM_DEFAULT_UPDATE, SWARM_SERVICE_PREFIX, SwarmService, type UpdatePolicy } from './swarm-side.ts';
import { median } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_SWARM_ROUNDS ?? 3);
const UPDATES = Number(process.env.BENCH_SWARM_UPDATES ?? 2);
const FROM = 3;
const TO = 20;
const ROLL = 6;
/** What Gantry's default rolling update (maxSurge 25% rounded up, maxUnavailable 25% down) has in flight at once for 6 replicas. */
const MATCHED: UpdatePolicy = { parallelism: Math.ceil(ROLL / 4) + Math.floor(ROLL / 4), order: 'start-first' };
/** Parallel creates+starts of the engine-alone sample (about what a 2-core engine sustains; see agents/README.md). */
const FLOOR_CONCURRENCY = Number(process.env.BENCH_FLOOR_CONCURRENCY ?? 8);
/** Extra `gantry agent` flags (e.g. BENCH_AGENT_ARGS="--concurrency 4"), to compare settings. */
const AGENT_ARGS = (process.env.BENCH_AGENT_ARGS ?? '').split(' ').filter(Boolean);

export const swarmScale: Benchmark = {
  name: 'swarm-scale',
  description: `Gantry beside Docker Swarm on the local engine: scale ${FROM} -> ${TO} busybox httpd (${ROUNDS} rounds), rolling update of ${ROLL} (${UPDATES} each)`,
  run: runSwarmScale,
};

async function runSwarmScale(ctx: BenchContext): Promise<Figure[]> {
  const docker = connectDocker();
  const probe = await probeEngine(docker);
  if (!probe.ok) return skip(ctx, `no Docker engine (${probe.error})`);
  const image = await docker.getImage(IMAGE).inspect().catch(() => undefined);
  if (!image) return skip(ctx, `no ${IMAGE} on the engine (scripts/docker-setup.sh builds it)`);
  const swarm = await joinSwarm(docker);
  if (!swarm.ok) return skip(ctx, swarm.why);
  if (swarm.initialised) ctx.defer(() => docker.swarmLeave({ force: true }));
  const pause = await ensurePauseImage(docker);
  const tag = randomUUID().slice(0, 6);
  ctx.log(`engine ${probe.version}, swarm ${swarm.initialised ? 'initialised for the run (left at the end)' : 'already active (kept)'}; image ${IMAGE} (${image.Id.slice(7, 19)})`);

  const redis = await benchRedis(ctx);
  const gantry = await GantryCluster.start(ctx, { redisUrl: redis.url, prefix: freshPrefix(), dataDir: tempDir(ctx, 'swarm'), node: `swarm-${tag}`, agentArgs: AGENT_ARGS });
  await gantry.waitApi();
  await gantry.waitServing(performance.now(), FROM);
  const service = await SwarmService.create(docker, `${SWARM_SERVICE_PREFIX}-${tag}`, image.Id, FROM, SWARM_DEFAULT_UPDATE);
  ctx.defer(() => service.remove());
  await swarmServing(service, FROM);

  const nodeContainers = async () => (await docker.listContainers({ all: true, filters: { label: [`dev.gantry.node=${gantry.node}`] } })).length;
  const g: { running: number[]; answering: number[]; stages: Map<string, InstanceStages>[] } = { running: [], answering: [], stages: [] };
  const s: { running: number[]; answering: number[] } = { running: [], answering: [] };
  const floor: number[] = [];
  const floorPod: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let commit = await gantry.prepare({ replicas: TO });
    const before = await gantry.ids();
    let t0 = performance.now();
    await commit();
    const gr = await gantry.waitServing(t0, TO, { before });
    g.running.push(gr.running);
    g.answering.push(gr.answering);
    g.stages.push(gr.stages);
    commit = await gantry.prepare({ replicas: FROM });
    await commit();
    // A pod is 2 containers (sandbox + app); the removed ones must be gone before the next sample.
    await until(async () => (await gantry.instances()).length === FROM && (await nodeContainers()) === 2 * FROM, 'Gantry back at 3');

    const scale = await service.prepareScale(TO);
    t0 = performance.now();
    await scale();
    const sr = await swarmServing(service, TO, t0);
    s.running.push(sr.running);
    s.answering.push(sr.answering);
    await (await service.prepareScale(FROM))();
    await swarmSettled(service, FROM);

    floor.push((await engineFloor(docker, { image: IMAGE, n: TO - FROM, concurrency: FLOOR_CONCURRENCY, label: `gantry-bench-floor-${tag}` })).ms);
    floorPod.push((await engineFloor(docker, { image: IMAGE, pauseImage: pause, n: TO - FROM, concurrency: FLOOR_CONCURRENCY, label: `gantry-bench-floor-${tag}` })).ms);
    ctx.log(`round ${r + 1}: Gantry ${sec(gr.running)} Running, ${sec(gr.answering)} answering; Swarm ${sec(sr.running)} running, ${sec(sr.answering)} answering; engine alone ${sec(floor.at(-1)!)} (pods ${sec(floorPod.at(-1)!)})`);
  }
  logBreakdown(ctx, g.stages);

  // Rolling updates of 6: both scaled to 6 first (untimed).
  await (await gantry.prepare({ replicas: ROLL }))();
  await gantry.waitServing(performance.now(), ROLL);
  await (await service.prepareScale(ROLL))();
  await swarmServing(service, ROLL);
  const roll: Record<'gantry' | 'swarmDefault' | 'swarmMatched', number[]> = { gantry: [], swarmDefault: [], swarmMatched: [] };
  for (let u = 1; u <= UPDATES; u++) {
    const old = await gantry.revision();
    const commit = await gantry.prepare({ greeting: `v${u}` });
    let t0 = performance.now();
    await commit();
    roll.gantry.push((await gantry.waitServing(t0, ROLL, { rollout: old })).answering);
    await until(async () => (await nodeContainers()) === 2 * ROLL, 'old Gantry pods removed');
    for (const [key, policy] of [['swarmDefault', SWARM_DEFAULT_UPDATE], ['swarmMatched', MATCHED]] as const) {
      await service.setUpdatePolicy(policy);
      const update = await service.prepareTemplate(`v${u}-${key}`);
      t0 = performance.now();
      await update();
      roll[key].push((await swarmServing(service, ROLL, t0, true)).answering);
    }
    ctx.log(`update ${u}: Gantry ${sec(roll.gantry.at(-1)!)}; Swarm defaults ${sec(roll.swarmDefault.at(-1)!)}, parallelism ${MATCHED.parallelism} ${MATCHED.order} ${sec(roll.swarmMatched.at(-1)!)}`);
  }

  const gA = median(g.answering);
  const sA = median(s.answering);
  return [
    { name: `Gantry scale ${FROM}->${TO}: all Running p50`, value: median(g.running) / 1000, unit: 's', digits: 2 },
    { name: `Gantry scale ${FROM}->${TO}: all answering p50`, value: gA / 1000, unit: 's', digits: 2 },
    { name: `Swarm scale ${FROM}->${TO}: all running p50`, value: median(s.running) / 1000, unit: 's', digits: 2 },
    { name: `Swarm scale ${FROM}->${TO}: all answering p50`, value: sA / 1000, unit: 's', digits: 2 },
    { name: `engine alone: ${TO - FROM} containers with a port, ${FLOOR_CONCURRENCY} at a time p50`, value: median(floor) / 1000, unit: 's', digits: 2 },
    { name: `engine alone: ${TO - FROM} pods (pause + app), ${FLOOR_CONCURRENCY} at a time p50`, value: median(floorPod) / 1000, unit: 's', digits: 2 },
    { name: `scale: Gantry / Swarm (answering, p50; goal <= 0.25)`, value: gA / sA, unit: 'x', digits: 2 },
    { name: `rolling update of ${ROLL}: Gantry (25%/25%) p50`, value: median(roll.gantry) / 1000, unit: 's', digits: 2 },
    { name: `rolling update of ${ROLL}: Swarm defaults (parallelism 1) p50`, value: median(roll.swarmDefault) / 1000, unit: 's', digits: 2 },
    { name: `rolling update of ${ROLL}: Swarm parallelism ${MATCHED.parallelism} ${MATCHED.order} p50`, value: median(roll.swarmMatched) / 1000, unit: 's', digits: 2 },
    { name: `update: Gantry / Swarm defaults (p50)`, value: median(roll.gantry) / median(roll.swarmDefault), unit: 'x', digits: 2 },
    { name: `update: Gantry / Swarm matched (p50)`, value: median(roll.gantry) / median(roll.swarmMatched), unit: 'x', digits: 2 },
  ];
}

function skip(ctx: BenchContext, why: string): Figure[] {
  ctx.log(`skipped: ${why}`);
  return [];
}

const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Until `want` tasks of the current spec run and answer (and, for an update, no old one runs). */
async function swarmServing(service: SwarmService, want: number, t0 = performance.now(), update = false): Promise<{ running: number; answering: number }> {
  const answered = new Set<string>();
  let running: number | undefined;
  const deadline = t0 + 120_000;
  for (;;) {
    const look = await service.look(answered);
    const clean = !update || look.oldRunning === 0;
    if (running === undefined && look.running >= want && clean) running = performance.now() - t0;
    if (look.answering >= want && clean) return { running: running ?? performance.now() - t0, answering: performance.now() - t0 };
    if (performance.now() > deadline) throw new Error(`timed out: Swarm service ${service.name} has ${look.answering}/${want} answering (${look.oldRunning} old running)`);
    await sleep(POLL_MS);
  }
}

/** A scale-down is over once `want` containers run and the rest have left the engine (no change for 0.5 s). */
async function swarmSettled(service: SwarmService, want: number): Promise<void> {
  let last = -1;
  let since = performance.now();
  await until(async () => {
    const n = await service.containers();
    if (n !== last) [last, since] = [n, performance.now()];
    return n <= want + ROLL * 5 && (await service.running()) === want && performance.now() - since > 500;
  }, `Swarm back at ${want}`);
}

/** Where Gantry's scale-up spent its time: when the last of the 17 new instances reached each stage, median over rounds. */
function logBreakdown(ctx: BenchContext, rounds: Map<string, InstanceStages>[]): void {
  const at = (pick: (st: InstanceStages) => number | undefined, agg: (xs: number[]) => number) => median(rounds.map((m) => agg([...m.values()].map(pick).filter((x): x is number => x !== undefined))));
  const last = (xs: number[]) => Math.max(...xs);
  const first = (xs: number[]) => Math.min(...xs);
  const per = (a: (st: InstanceStages) => number | undefined, b: (st: InstanceStages) => number | undefined) =>
    median(rounds.map((m) => median([...m.values()].flatMap((st) => (a(st) !== undefined && b(st) !== undefined ? [b(st)! - a(st)!] : [])))));
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  ctx.log(`Gantry scale-up breakdown (ms after the commit; median of ${rounds.length} rounds; API polled every ~${POLL_MS} ms):`);
  ctx.log(`  new instances listed: first ${ms(at((s) => s.listed, first))}, last ${ms(at((s) => s.listed, last))}; bound to the node: last ${ms(at((s) => s.bound, last))}`);
  ctx.log(`  first status from the agent: first ${ms(at((s) => s.picked, first))}, last ${ms(at((s) => s.picked, last))}`);
  ctx.log(`  Running: first ${ms(at((s) => s.running, first))}, last ${ms(at((s) => s.running, last))}; answering: last ${ms(at((s) => s.answering, last))}`);
  ctx.log(`  per instance (median): bound -> first status ${ms(per((s) => s.bound, (s) => s.picked))}, first status -> Running ${ms(per((s) => s.picked, (s) => s.running))}, Running -> answering ${ms(per((s) => s.running, (s) => s.answering))}`);
}
