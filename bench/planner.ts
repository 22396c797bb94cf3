/**
 * planner: buildDesiredState (commit -> DeploymentRecords) and computePlan (desired + actual ->
 * actions) for 10,000 deployments, the pure core a commit and every reconcile pass go through.
 */
import { buildDesiredState, type LoadedObject } from '../reconciler/desired/desired-state.ts';
import { normalizeDeployment } from '../reconciler/manifests/normalize.ts';
import { computePlan, type PlanAction } from '../reconciler/plan/compute-plan.ts';
import { type ActualInstance } from '../state/records/instance.ts';
import type { DeploymentRecord } from '../state/records/deployment.ts';
import { instance } from '../test/helpers/records.ts';
import { deploymentObjects, rng } from './fixtures.ts';
import type { Benchmark } from './harness.ts';
import { median } from './stats.ts';

const DEPLOYMENTS = 10_000;
const RUNS = 7;

type Shape = 'converged' | 'scale-up' | 'scale-down' | 'template-change';

/** Realistic actual states: mostly converged, some mid-scale and some mid-rollout. */
function actualFor(d: DeploymentRecord, shape: Shape, random: () => number): ActualInstance[] {
  const node = (o: number) => `node-${o % 50}`;
  const running = (o: number, hash = d.templateHash) => instance(d, o, { hash, node: node(o), phase: 'Running' });
  const r = d.replicas;
  switch (shape) {
    case 'converged':
      return Array.from({ length: r }, (_, o) => running(o));
    case 'scale-up': {
      const have = Math.max(0, r - 1 - Math.floor(random() * 3));
      return Array.from({ length: have }, (_, o) => running(o));
    }
    case 'scale-down':
      return Array.from({ length: r + 1 + Math.floor(random() * 3) }, (_, o) => running(o));
    case 'template-change': {
      // Old revision fully running; the new one half created, half of that ready.
      const old = Array.from({ length: r }, (_, o) => running(o, 'oldhash000'));
      const created = Math.ceil(r / 2);
      const fresh = Array.from({ length: created }, (_, o) => (o % 2 === 0 ? running(o) : instance(d, o, { node: node(o), phase: 'Starting' })));
      return [...old, ...fresh];
    }
  }
}

function shapeOf(i: number): Shape {
  const m = i % 10;
  return m < 7 ? 'converged' : m === 7 ? 'scale-up' : m === 8 ? 'scale-down' : 'template-change';
}

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

export const planner: Benchmark = {
  name: 'planner',
  description: `buildDesiredState and computePlan for ${DEPLOYMENTS.toLocaleString('en')} deployments`,
  async run(ctx) {
    const objects: LoadedObject[] = deploymentObjects(DEPLOYMENTS).map((d, i) => ({ manifest: normalizeDeployment(d), file: `apps/group-${Math.floor(i / 100)}.yaml`, line: 1 + (i % 100) * 40 }));

    // buildDesiredState against the previous commit's records (the steady case: generations carry over).
    const previous = buildDesiredState(objects, 'c0', []).deployments;
    let desired = previous;
    buildDesiredState(objects.slice(0, 500), 'warm', previous); // warm-up
    const buildTimes = Array.from({ length: RUNS }, () => time(() => (desired = buildDesiredState(objects, 'c1', previous).deployments)));
    if (desired.length !== DEPLOYMENTS) throw new Error(`buildDesiredState returned ${desired.length} deployments`);
    const buildMs = median(buildTimes);

    const random = rng(7);
    const actual = desired.map((d, i) => actualFor(d, shapeOf(i), random));
    const instances = actual.reduce((s, a) => s + a.length, 0);

    let plans: PlanAction[][] = [];
    const planAll = () => (plans = desired.map((d, i) => computePlan(d, actual[i]!)));
    planAll(); // warm-up
    const planTimes = Array.from({ length: RUNS }, () => time(planAll));
    const planMs = median(planTimes);

    const counts = new Map<string, number>();
    for (const p of plans) for (const a of p) counts.set(a.type === 'create' ? 'create' : `delete/${a.reason}`, (counts.get(a.type === 'create' ? 'create' : `delete/${a.reason}`) ?? 0) + 1);
    const converged = plans.filter((p, i) => shapeOf(i) === 'converged' && p.length > 0).length;
    if (converged > 0) throw new Error(`${converged} converged deployments got a non-empty plan`);
    ctx.log(`actual state: ${instances} instances (70% converged, 10% each scale-up, scale-down, mid-rollout)`);
    ctx.log(`plan: ${[...counts].map(([k, v]) => `${v} ${k}`).join(', ')}`);
    ctx.log(`buildDesiredState runs (ms): ${buildTimes.map((t) => t.toFixed(0)).join(', ')}`);
    ctx.log(`computePlan runs (ms): ${planTimes.map((t) => t.toFixed(1)).join(', ')}`);
    return [
      { name: 'computePlan 10k deployments', value: planMs, unit: 'ms' },
      { name: 'computePlan per deployment', value: (planMs * 1000) / DEPLOYMENTS, unit: 'µs', digits: 2 },
      { name: 'buildDesiredState 10k deployments', value: buildMs, unit: 'ms' },
      { name: 'buildDesiredState per deployment', value: (buildMs * 1000) / DEPLOYMENTS, unit: 'µs', digits: 1 },
    ];
  },
};
