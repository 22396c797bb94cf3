/**
 * scheduler: placements per second of Scheduler.scheduleOne (read instance, node snapshot, spread
 * view, selectNode, bind Lua script, node job, event) against 1,000 registered nodes in a real
 * Redis, then the pure selectNode decision rate against 1,000 node views.
 */
import { newInstanceRecord } from '../reconciler/controller/deployment-reconciler.ts';
import { toDeploymentRecord } from '../reconciler/desired/desired-state.ts';
import { normalizeDeployment } from '../reconciler/manifests/normalize.ts';
import type { InstanceRecord } from '../state/records/instance.ts';
import type { NodeRecord } from '../state/records/node.ts';
import { instanceId } from '../state/records/instance.ts';
import { Queues } from '../reconciler/queue/queues.ts';
import { connectRedis } from '../state/connection.ts';
import { createKeys } from '../state/keys.ts';
import { Scheduler, type ScheduleOutcome } from '../reconciler/scheduler/scheduler.ts';
import { selectNode, type NodeCandidate } from '../reconciler/scheduler/select-node.ts';
import type { DeploymentRecord } from '../state/records/deployment.ts';
import { Store } from '../state/store.ts';
import { deploymentObjects, rng } from './fixtures.ts';
import { benchRedis, freshPrefix, type Benchmark } from './harness.ts';
import { summarize } from './stats.ts';

const NODES = 1_000;
const DEPLOYMENTS = 200;
const REPLICAS = 10;
const CONCURRENCY = 4;
const NODE_CPU = 1000;
const NODE_MEMORY = 1024 ** 3;
const SELECT_MS = 1_000;

const nodeName = (i: number) => `node-${String(i).padStart(4, '0')}`;

function nodeRecord(i: number): NodeRecord {
  return {
    name: nodeName(i),
    cpuMilli: NODE_CPU,
    memoryBytes: NODE_MEMORY,
    labels: { zone: `z${i % 4}`, rack: `r${i % 25}` },
    runtimes: i % 2 === 0 ? ['process', 'docker'] : ['process'],
    address: `10.0.${Math.floor(i / 250)}.${i % 250}`,
    registeredAt: Date.now(),
  };
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

export const scheduler: Benchmark = {
  name: 'scheduler',
  description: `Scheduler.scheduleOne for ${DEPLOYMENTS * REPLICAS} instances on ${NODES} nodes (concurrency ${CONCURRENCY}); selectNode`,
  async run(ctx) {
    const server = await benchRedis(ctx);
    const keys = createKeys(freshPrefix());
    const redis = connectRedis(server.url, 'gantry-bench');
    ctx.defer(() => redis.disconnect());
    const store = new Store(redis, keys);
    const queues = new Queues(redis, keys);
    ctx.defer(() => queues.close());

    // 1,000 nodes, as agents register them: record, membership, heartbeat.
    const nodes = Array.from({ length: NODES }, (_, i) => nodeRecord(i));
    const reg = redis.multi();
    for (const n of nodes) reg.set(keys.node(n.name), JSON.stringify(n)).sadd(keys.nodes, n.name).set(keys.nodeHeartbeat(n.name), String(Date.now()));
    await reg.exec();

    // 200 deployments x 10 replicas, pending, created as the deployment controller creates them.
    const deployments: DeploymentRecord[] = deploymentObjects(DEPLOYMENTS, 11).map((d) => toDeploymentRecord(normalizeDeployment({ ...d, spec: { ...d.spec, replicas: REPLICAS } }), 'c1', 'apps/x.yaml', 1));
    const records: InstanceRecord[] = deployments.flatMap((d) =>
      Array.from({ length: REPLICAS }, (_, o) => newInstanceRecord(d, { type: 'create', id: instanceId(d.namespace, d.name, d.templateHash, o), ordinal: o, templateHash: d.templateHash }, Date.now())),
    );
    const created = await pool(records, 16, (r) => store.createInstance(r));
    if (created.some((c) => !c)) throw new Error('createInstance refused an instance');
    const demandCpu = records.reduce((s, r) => s + r.cpuMilli, 0);
    ctx.log(`${NODES} nodes (${NODE_CPU}m, 1Gi, 4 zones, half offer docker); ${records.length} pending instances, ${(demandCpu / (NODES * NODE_CPU) * 100).toFixed(0)}% of the cluster's cpu; 1/4 with a zone nodeSelector, 1/5 images`);

    // Nodes must stay ready for the whole run, whatever the machine's speed.
    const sched = new Scheduler({ redisUrl: server.url, store, queues, keys, nodeReadyMs: 3_600_000 });
    // Jobs arrive in creation order (deployment by deployment), as the controller enqueues them.
    const latencies: number[] = [];
    const t0 = performance.now();
    const outcomes = await pool(records, CONCURRENCY, async (r): Promise<ScheduleOutcome> => {
      const t = performance.now();
      const o = await sched.scheduleOne(r.id);
      latencies.push(performance.now() - t);
      return o;
    });
    const ms = performance.now() - t0;
    const tally = new Map<ScheduleOutcome, number>();
    for (const o of outcomes) tally.set(o, (tally.get(o) ?? 0) + 1);
    const lat = summarize(latencies);
    ctx.log(`outcomes: ${[...tally].map(([k, v]) => `${v} ${k}`).join(', ')} in ${ms.toFixed(0)} ms; per call (ms, incl. waiting on siblings): p50 ${lat.p50.toFixed(2)} p95 ${lat.p95.toFixed(2)} p99 ${lat.p99.toFixed(2)}`);

    // Check: no node over-committed, and each node's allocation is exactly what is bound to it.
    const stored = await store.readNodes();
    const bound = (await store.readAllInstances()).filter((i) => i.record.node);
    const sums = new Map<string, { cpu: number; mem: number; n: number }>();
    const perDeploymentNode = new Map<string, number>();
    for (const { record: r } of bound) {
      const s = sums.get(r.node!) ?? { cpu: 0, mem: 0, n: 0 };
      s.cpu += r.cpuMilli;
      s.mem += r.memoryBytes;
      s.n += 1;
      sums.set(r.node!, s);
      const k = `${r.namespace}/${r.deployment}@${r.node}`;
      perDeploymentNode.set(k, (perDeploymentNode.get(k) ?? 0) + 1);
    }
    const over = stored.filter((n) => n.alloc.cpuMilli > n.record.cpuMilli || n.alloc.memoryBytes > n.record.memoryBytes);
    const mismatched = stored.filter((n) => {
      const s = sums.get(n.record.name) ?? { cpu: 0, mem: 0, n: 0 };
      return s.cpu !== n.alloc.cpuMilli || s.mem !== n.alloc.memoryBytes || s.n !== n.alloc.instances;
    });
    const selectorViolations = bound.filter(({ record: r }) => {
      const n = nodes.find((x) => x.name === r.node)!;
      return Object.entries(r.nodeSelector).some(([k, v]) => n.labels[k] !== v) || !n.runtimes.includes(r.runtime);
    });
    const maxUtil = Math.max(...stored.map((n) => n.alloc.cpuMilli / n.record.cpuMilli));
    const maxSpread = Math.max(...perDeploymentNode.values());
    const ok = over.length === 0 && mismatched.length === 0 && selectorViolations.length === 0 && bound.length === (tally.get('bound') ?? 0);
    ctx.log(`check ${ok ? 'OK' : 'FAILED'}: ${over.length}/${stored.length} nodes over-committed (sum of alloc <= capacity), ${mismatched.length} with alloc != bound instances, ${selectorViolations.length} selector/runtime violations; busiest node ${(maxUtil * 100).toFixed(0)}% cpu; at most ${maxSpread} replica(s) of a deployment per node`);
    if (!ok) throw new Error('scheduler check failed (see above)');

    // The pure decision: 1,000 node views with varied allocation, instances of every shape.
    const random = rng(3);
    const views: NodeCandidate[] = nodes.map((record) => ({
      record,
      alloc: { cpuMilli: Math.floor(random() * 900), memoryBytes: Math.floor(random() * 0.9 * NODE_MEMORY), instances: Math.floor(random() * 5) },
      ready: random() > 0.01,
      sameDeployment: random() < 0.02 ? 1 : 0,
    }));
    for (let i = 0; i < 200; i++) selectNode(records[i % records.length]!, views); // warm-up
    let decisions = 0;
    let placed = 0;
    const s0 = performance.now();
    let elapsed = 0;
    do {
      for (let i = 0; i < 100; i++) {
        if ('node' in selectNode(records[decisions % records.length]!, views)) placed++;
        decisions++;
      }
      elapsed = performance.now() - s0;
    } while (elapsed < SELECT_MS);
    ctx.log(`selectNode: ${decisions} decisions in ${elapsed.toFixed(0)} ms (${placed} placed, ${decisions - placed} unschedulable)`);

    return [
      { name: `scheduleOne placements (${NODES} nodes, conc ${CONCURRENCY})`, value: (tally.get('bound') ?? 0) / (ms / 1000), unit: 'placements/s' },
      { name: 'scheduleOne p50 latency', value: lat.p50, unit: 'ms', digits: 2 },
      { name: `over-committed nodes after ${tally.get('bound') ?? 0} binds`, value: over.length, unit: 'nodes', digits: 0 },
      { name: `selectNode (${NODES} node views)`, value: decisions / (elapsed / 1000), unit: 'decisions/s' },
    ];
  },
};
