/**
 * scheduler: placements per second against 1,000 and 5,000 registered nodes in a real Redis.
 *  - `scheduleOne`, 4 calls at a time, against 1,000 nodes: the figure this benchmark printed before
 *    batching, measured the same way (each call now joins whatever batch is forming).
 *  - the job path, against 1,000 and 5,000 nodes: each deployment's instances enqueued as the
 *    deployment controller enqueues them (Queues.enqueueSchedules after its creates), the BullMQ
 *    worker of Scheduler.start() placing them in batches (read, node cache, per-node counts, pick,
 *    bind-instances Lua, node jobs, events, change messages), timed until nothing is pending and
 *    no schedule job is left.
 * Each run ends with a check: no node over-committed, allocations and per-node counts equal to
 * what is bound, selectors and runtimes honoured. Then the pure decisions: selectNode against 1,000
 * node views, NodeTable.pick against 5,000 nodes.
 */
import { newInstanceRecord } from '../reconciler/controller/deployment-reconciler.ts';
import { toDeploymentRecord } from '../reconciler/desired/desired-state.ts';
import { normalizeDeployment } from '../reconciler/manifests/normalize.ts';
import type { InstanceRecord } from '../state/records/instance.ts';
import type { NodeRecord } from '../state/records/node.ts';
import { instanceId } from '../state/records/instance.ts';
import type { Redis } from 'ioredis';
import { Queues } from '../reconciler/queue/queues.ts';
import { connectRedis } from '../state/connection.ts';
import { createKeys, objectKey } from '../state/keys.ts';
import { Scheduler, type ScheduleOutcome } from '../reconciler/scheduler/scheduler.ts';
import { selectNode, type NodeCandidate } from '../reconciler/scheduler/select-node.ts';
import { NodeTable } from '../reconciler/scheduler/node-table.ts';
import type { DeploymentRecord } from '../state/records/deployment.ts';
import { Store } from '../state/store.ts';
import { deploymentObjects, rng } from './fixtures.ts';
import { benchRedis, freshPrefix, type BenchContext, type Benchmark, type Figure } from './harness.ts';
import { summarize } from './stats.ts';

const REPLICAS = 10;
const CONCURRENCY = 4;
const NODE_CPU = 1000;
const NODE_MEMORY = 1024 ** 3;
const SELECT_MS = 1_000;
/** Deployments per 1,000 nodes: 2,000 instances per 1,000 nodes, 46% of the cluster's cpu. */
const DEPLOYMENTS_PER_1000_NODES = 200;

const nodeName = (i: number) => `node-${String(i).padStart(4, '0')}`;

function nodeRecord(i: number): NodeRecord {
  return {
    name: nodeName(i),
    cpuMilli: NODE_CPU,
    memoryBytes: NODE_MEMORY,
    labels: { zone: `z${i % 4}`, rack: `r${i % 25}` },
    runtimes: i % 2 === 0 ? ['process', 'docker'] : ['process'],
    address: `10.${Math.floor(i / 62_500)}.${Math.floor(i / 250) % 250}.${i % 250}`,
    registeredAt: Date.now(),
  };
}

/** CPU seconds redis-server has used (INFO cpu), to put a cost per placement on both sides. */
async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

/** CPU per placement of this process and of redis-server since `from`. */
async function cpuPer(redis: Redis, from: { node: NodeJS.CpuUsage; redis: number }, placements: number): Promise<string> {
  const used = process.cpuUsage(from.node);
  const redisSeconds = (await redisCpu(redis)) - from.redis;
  return `cpu per placement: ${((used.user + used.system) / placements).toFixed(0)} µs here, ${((redisSeconds * 1e6) / placements).toFixed(0)} µs in redis-server`;
}

/** Runs `fn` over `items` with at most `n` in flight; resolves with the results in item order. */
async function pool<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

interface Cluster {
  redis: Redis;
  store: Store;
  queues: Queues;
  keys: ReturnType<typeof createKeys>;
  nodes: NodeRecord[];
  /** Each deployment's pending instances, in creation order. */
  byDeployment: InstanceRecord[][];
  records: InstanceRecord[];
}

/** `nodeCount` nodes registered as agents register them, and 10 pending instances per deployment. */
async function cluster(ctx: BenchContext, url: string, nodeCount: number): Promise<Cluster> {
  const keys = createKeys(freshPrefix());
  const redis = connectRedis(url, 'gantry-bench');
  ctx.defer(() => redis.disconnect());
  const store = new Store(redis, keys);
  const queues = new Queues(redis, keys);
  ctx.defer(() => queues.close());
  const nodes = Array.from({ length: nodeCount }, (_, i) => nodeRecord(i));
  const reg = redis.multi();
  for (const n of nodes) reg.set(keys.node(n.name), JSON.stringify(n)).sadd(keys.nodes, n.name).incr(keys.nodesVersion).set(keys.nodeHeartbeat(n.name), String(Date.now()));
  await reg.exec();
  const count = (nodeCount / 1000) * DEPLOYMENTS_PER_1000_NODES;
  const deployments: DeploymentRecord[] = deploymentObjects(count, 11).map((d) => toDeploymentRecord(normalizeDeployment({ ...d, spec: { ...d.spec, replicas: REPLICAS } }), 'c1', 'apps/x.yaml', 1));
  const byDeployment = deployments.map((d) =>
    Array.from({ length: REPLICAS }, (_, o) => newInstanceRecord(d, { type: 'create', id: instanceId(d.namespace, d.name, d.templateHash, o), ordinal: o, templateHash: d.templateHash }, Date.now())),
  );
  const created = await pool(byDeployment, 8, (rs) => store.createInstances(rs));
  if (created.flat().some((c) => !c)) throw new Error('createInstances refused an instance');
  // As a reconciler that has run: the per-node counts are built (a one-time walk of older data).
  await store.placement.ensureDeploymentNodes();
  const records = byDeployment.flat();
  const demandCpu = records.reduce((s, r) => s + r.cpuMilli, 0);
  ctx.log(`${nodeCount} nodes (${NODE_CPU}m, 1Gi, 4 zones, half offer docker); ${records.length} pending instances of ${count} deployments, ${((demandCpu / (nodeCount * NODE_CPU)) * 100).toFixed(0)}% of the cluster's cpu; 1/4 with a zone nodeSelector, 1/5 images`);
  return { redis, store, queues, keys, nodes, byDeployment, records };
}

/**
 * No node over-committed; each node's allocation exactly what is bound to it; each deployment's
 * per-node counts (what spread reads) exactly its bound instances; selectors and runtimes honoured.
 */
async function check(ctx: BenchContext, c: Cluster, expectBound: number): Promise<number> {
  const stored = await c.store.readNodes();
  const bound = (await c.store.readAllInstances()).filter((i) => i.record.node);
  const sums = new Map<string, { cpu: number; mem: number; n: number }>();
  const perDeploymentNode = new Map<string, Map<string, number>>();
  for (const { record: r } of bound) {
    const s = sums.get(r.node!) ?? { cpu: 0, mem: 0, n: 0 };
    s.cpu += r.cpuMilli;
    s.mem += r.memoryBytes;
    s.n += 1;
    sums.set(r.node!, s);
    const k = objectKey(r.namespace, r.deployment);
    const m = perDeploymentNode.get(k) ?? new Map<string, number>();
    m.set(r.node!, (m.get(r.node!) ?? 0) + 1);
    perDeploymentNode.set(k, m);
  }
  const over = stored.filter((n) => n.alloc.cpuMilli > n.record.cpuMilli || n.alloc.memoryBytes > n.record.memoryBytes || n.alloc.instances > (n.record.maxInstances ?? 110));
  const mismatched = stored.filter((n) => {
    const s = sums.get(n.record.name) ?? { cpu: 0, mem: 0, n: 0 };
    return s.cpu !== n.alloc.cpuMilli || s.mem !== n.alloc.memoryBytes || s.n !== n.alloc.instances;
  });
  const deployments = [...new Map(c.records.map((r) => [objectKey(r.namespace, r.deployment), { namespace: r.namespace, name: r.deployment }])).entries()];
  const counts = await c.store.placement.deploymentNodeCounts(deployments.map(([, d]) => d));
  const wrongCounts = deployments.filter(([key], i) => {
    const want = [...(perDeploymentNode.get(key) ?? new Map<string, number>())].sort();
    return JSON.stringify([...counts[i]!].sort()) !== JSON.stringify(want);
  });
  const byName = new Map(c.nodes.map((n) => [n.name, n]));
  const selectorViolations = bound.filter(({ record: r }) => {
    const n = byName.get(r.node!)!;
    return Object.entries(r.nodeSelector).some(([k, v]) => n.labels[k] !== v) || !n.runtimes.includes(r.runtime);
  });
  const maxUtil = Math.max(...stored.map((n) => n.alloc.cpuMilli / n.record.cpuMilli));
  const maxSpread = Math.max(...[...perDeploymentNode.values()].flatMap((m) => [...m.values()]));
  const ok = over.length === 0 && mismatched.length === 0 && wrongCounts.length === 0 && selectorViolations.length === 0 && bound.length === expectBound;
  ctx.log(
    `check ${ok ? 'OK' : 'FAILED'}: ${over.length}/${stored.length} nodes over-committed (alloc <= capacity), ${mismatched.length} with alloc != bound instances, ` +
      `${wrongCounts.length} deployments with per-node counts != bound instances, ${selectorViolations.length} selector/runtime violations; ${bound.length} bound; ` +
      `busiest node ${(maxUtil * 100).toFixed(0)}% cpu; at most ${maxSpread} replica(s) of a deployment per node`,
  );
  if (!ok) throw new Error('scheduler check failed (see above)');
  return over.length;
}

/** `scheduleOne` for every instance, CONCURRENCY at a time, in creation order: the old figure's way. */
async function viaScheduleOne(ctx: BenchContext, url: string, nodeCount: number): Promise<Figure[]> {
  const c = await cluster(ctx, url, nodeCount);
  // Nodes must stay ready for the whole run, whatever the machine's speed.
  const sched = new Scheduler({ redisUrl: url, store: c.store, queues: c.queues, keys: c.keys, nodeReadyMs: 3_600_000 });
  const latencies: number[] = [];
  const cpu0 = { node: process.cpuUsage(), redis: await redisCpu(c.redis) };
  const t0 = performance.now();
  const outcomes = await pool(c.records, CONCURRENCY, async (r): Promise<ScheduleOutcome> => {
    const t = performance.now();
    const o = await sched.scheduleOne(r.id);
    latencies.push(performance.now() - t);
    return o;
  });
  const ms = performance.now() - t0;
  const bound = outcomes.filter((o) => o === 'bound').length;
  const lat = summarize(latencies);
  ctx.log(`scheduleOne, ${nodeCount} nodes, conc ${CONCURRENCY}: ${bound} bound, ${outcomes.length - bound} not, in ${ms.toFixed(0)} ms = ${(bound / (ms / 1000)).toFixed(0)} placements/s; per call (ms): p50 ${lat.p50.toFixed(2)} p95 ${lat.p95.toFixed(2)} p99 ${lat.p99.toFixed(2)}; ${await cpuPer(c.redis, cpu0, bound)}`);
  const over = await check(ctx, c, bound);
  return [
    { name: `scheduleOne placements (${nodeCount} nodes, conc ${CONCURRENCY})`, value: bound / (ms / 1000), unit: 'placements/s' },
    { name: 'scheduleOne p50 latency', value: lat.p50, unit: 'ms', digits: 2 },
    { name: `over-committed nodes after ${bound} binds (${nodeCount} nodes)`, value: over, unit: 'nodes', digits: 0 },
  ];
}

/** Through the schedule queue and the scheduler's BullMQ worker, as the reconciler runs it. */
async function viaJobs(ctx: BenchContext, url: string, nodeCount: number): Promise<Figure[]> {
  const c = await cluster(ctx, url, nodeCount);
  // The node queues open, as in a reconciler that has run a while: opening a BullMQ queue (an INFO
  // and a meta write) is once per node and process, timed on its own.
  const w0 = performance.now();
  await Promise.all(c.nodes.map((n) => c.queues.node(n.name).waitUntilReady()));
  ctx.log(`opened ${nodeCount} node queues in ${(performance.now() - w0).toFixed(0)} ms (once per process; not in the figure below)`);
  const sched = new Scheduler({ redisUrl: url, store: c.store, queues: c.queues, keys: c.keys, nodeReadyMs: 3_600_000 });
  sched.start();
  ctx.defer(() => sched.stop());
  const redis = connectRedis(url, 'gantry-bench-poll');
  ctx.defer(() => redis.disconnect());
  const cpu0 = { node: process.cpuUsage(), redis: await redisCpu(redis) };
  const t0 = performance.now();
  // Every deployment's reconcile enqueues its creates at once, as after a commit that adds them all.
  await Promise.all(c.byDeployment.map((rs) => c.queues.enqueueSchedules(rs)));
  const enqueuedMs = performance.now() - t0;
  let firstIdle = 0;
  for (;;) {
    const [pending, jobs] = await Promise.all([redis.scard(c.keys.pendingInstances), c.queues.schedule.getJobCounts('waiting', 'active', 'delayed', 'prioritized')]);
    if (pending === 0 && Object.values(jobs).every((n) => n === 0)) break;
    if (performance.now() - t0 > 300_000) throw new Error(`still ${pending} pending after 300 s`);
    // Some jobs done, none left to take: a stuck placement, not a slow one.
    if (pending > 0 && Object.values(jobs).every((n) => n === 0)) {
      firstIdle ||= performance.now();
      if (performance.now() - firstIdle > 5_000) throw new Error(`${pending} instances left pending with no schedule job`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - t0;
  const bound = c.records.length - (await redis.scard(c.keys.pendingInstances));
  ctx.log(`jobs, ${nodeCount} nodes: ${c.byDeployment.length} schedule jobs (enqueued in ${enqueuedMs.toFixed(0)} ms), ${bound} placed in ${ms.toFixed(0)} ms = ${(bound / (ms / 1000)).toFixed(0)} placements/s; ${await cpuPer(redis, cpu0, bound)}`);
  const over = await check(ctx, c, bound);
  return [
    { name: `job path placements (${nodeCount} nodes, ${bound} instances)`, value: bound / (ms / 1000), unit: 'placements/s' },
    { name: `over-committed nodes after ${bound} binds (${nodeCount} nodes)`, value: over, unit: 'nodes', digits: 0 },
  ];
}

/** Decisions per second of `decide` over `SELECT_MS`, after a warm-up. */
function rate(records: InstanceRecord[], decide: (r: InstanceRecord) => boolean): { decisions: number; placed: number; ms: number } {
  for (let i = 0; i < 200; i++) decide(records[i % records.length]!);
  let decisions = 0;
  let placed = 0;
  const s0 = performance.now();
  let ms = 0;
  do {
    for (let i = 0; i < 100; i++) {
      if (decide(records[decisions % records.length]!)) placed++;
      decisions++;
    }
    ms = performance.now() - s0;
  } while (ms < SELECT_MS);
  return { decisions, placed, ms };
}

export const scheduler: Benchmark = {
  name: 'scheduler',
  description: `placements against 1,000 and 5,000 nodes (scheduleOne conc ${CONCURRENCY}; the job path); selectNode, NodeTable.pick`,
  async run(ctx) {
    const server = await benchRedis(ctx);
    const figures: Figure[] = [];
    figures.push(...(await viaScheduleOne(ctx, server.url, 1_000)));
    figures.push(...(await viaJobs(ctx, server.url, 1_000)));
    figures.push(...(await viaJobs(ctx, server.url, 5_000)));

    // The pure decisions, on varied allocation (1% not ready), instances of every shape.
    const random = rng(3);
    const nodes = Array.from({ length: 5_000 }, (_, i) => nodeRecord(i));
    const views: NodeCandidate[] = nodes.map((record) => ({
      record,
      alloc: { cpuMilli: Math.floor(random() * 900), memoryBytes: Math.floor(random() * 0.9 * NODE_MEMORY), instances: Math.floor(random() * 5) },
      ready: random() > 0.01,
      sameDeployment: random() < 0.02 ? 1 : 0,
    }));
    const deployments = deploymentObjects(200, 11).map((d) => toDeploymentRecord(normalizeDeployment({ ...d, spec: { ...d.spec, replicas: 1 } }), 'c1', 'apps/x.yaml', 1));
    const records = deployments.map((d) => newInstanceRecord(d, { type: 'create', id: instanceId(d.namespace, d.name, d.templateHash, 0), ordinal: 0, templateHash: d.templateHash }, Date.now()));
    const small = views.slice(0, 1_000);
    const sel = rate(records, (r) => 'node' in selectNode(r, small));
    ctx.log(`selectNode: ${sel.decisions} decisions in ${sel.ms.toFixed(0)} ms against 1000 node views (${sel.placed} placed)`);
    const table = new NodeTable(views.map((v) => ({ record: v.record, alloc: v.alloc, heartbeatAt: 0 })));
    const o = { ready: Uint8Array.from(views, (v) => (v.ready ? 1 : 0)), spread: Int32Array.from(views, (v) => v.sameDeployment) };
    const pick = rate(records, (r) => table.pick(r, o) >= 0);
    ctx.log(`NodeTable.pick: ${pick.decisions} decisions in ${pick.ms.toFixed(0)} ms against 5000 nodes (${pick.placed} placed)`);
    figures.push(
      { name: 'selectNode (1000 node views)', value: sel.decisions / (sel.ms / 1000), unit: 'decisions/s' },
      { name: 'NodeTable.pick (5000 nodes)', value: pick.decisions / (pick.ms / 1000), unit: 'decisions/s' },
    );
    return figures;
  },
};
