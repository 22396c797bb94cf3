import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computePlan, rollingBounds, type PlanAction } from '../../reconciler/plan/compute-plan.ts';
import { isReady, type ActualInstance } from '../../state/records/instance.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import { deployment, instance } from '../helpers/records.ts';

const d3 = deployment({ replicas: 3 });
const d1 = deployment({ replicas: 1 });
const d3v2 = deployment({ replicas: 3, templateHash: 'h2' });
const recreate = deployment({ replicas: 2, templateHash: 'h2', strategy: { type: 'Recreate', maxSurge: 0, maxUnavailable: 0 } });
const run = (d: DeploymentRecord, o: number, hash?: string) => instance(d, o, { node: 'n1', phase: 'Running', hash });
const pending = (d: DeploymentRecord, o: number, hash?: string) => instance(d, o, { hash });

const brief = (a: PlanAction) => (a.type === 'create' ? `+${a.id}` : `-${a.id}(${a.reason})`);

const cases: { name: string; desired: DeploymentRecord | undefined; actual: ActualInstance[]; want: string[] }[] = [
  { name: 'create from nothing', desired: d3, actual: [], want: ['+default.web-h1-0', '+default.web-h1-1', '+default.web-h1-2'] },
  { name: 'converged: nothing to do', desired: d3, actual: [run(d3, 0), run(d3, 1), run(d3, 2)], want: [] },
  { name: 'pending instances are not recreated', desired: d3, actual: [pending(d3, 0), pending(d3, 1), pending(d3, 2)], want: [] },
  { name: 'scale up fills the missing ordinals', desired: d3, actual: [run(d3, 0)], want: ['+default.web-h1-1', '+default.web-h1-2'] },
  { name: 'scale down removes the highest ordinals', desired: d1, actual: [run(d1, 0), run(d1, 1), run(d1, 2)], want: ['-default.web-h1-1(scaled-down)', '-default.web-h1-2(scaled-down)'] },
  { name: 'scale to zero', desired: deployment({ replicas: 0 }), actual: [run(d3, 0), run(d3, 1)], want: ['-default.web-h1-0(scaled-down)', '-default.web-h1-1(scaled-down)'] },
  { name: 'prune deletes everything', desired: undefined, actual: [run(d3, 1), run(d3, 0)], want: ['-default.web-h1-0(pruned)', '-default.web-h1-1(pruned)'] },
  {
    name: 'rolling update (25%/25% of 3 = surge 1, unavailable 0): one new instance first, no old one goes',
    desired: d3v2,
    actual: [run(d3, 0), run(d3, 1), run(d3, 2)],
    want: ['+default.web-h2-0'],
  },
  {
    name: 'rolling update: nothing more while the surge instance is not ready',
    desired: d3v2,
    actual: [run(d3, 0), run(d3, 1), run(d3, 2), pending(d3v2, 0, 'h2')],
    want: [],
  },
  {
    name: 'rolling update: old instances go as new ones become ready',
    desired: d3v2,
    actual: [run(d3, 0), run(d3, 1), run(d3, 2), run(d3v2, 0, 'h2'), run(d3v2, 1, 'h2'), pending(d3v2, 2, 'h2')],
    want: ['-default.web-h1-0(replaced)', '-default.web-h1-1(replaced)'],
  },
  {
    name: 'rolling update with maxSurge 0, maxUnavailable 1: an old one goes first',
    desired: deployment({ templateHash: 'h2', strategy: { type: 'RollingUpdate', maxSurge: 0, maxUnavailable: 1 } }),
    actual: [run(d3, 0), run(d3, 1), run(d3, 2)],
    want: ['-default.web-h1-0(replaced)'],
  },
  {
    name: 'rolling update of 10 with 25%/25%: surge 3, unavailable 2',
    desired: deployment({ replicas: 10, templateHash: 'h2' }),
    actual: Array.from({ length: 10 }, (_, i) => run(deployment({ replicas: 10 }), i)),
    want: ['+default.web-h2-0', '+default.web-h2-1', '+default.web-h2-2', '-default.web-h1-0(replaced)', '-default.web-h1-1(replaced)'],
  },
  {
    name: 'template change: old instances that are not ready go at once',
    desired: d3v2,
    actual: [pending(d3, 0), run(d3, 1), run(d3v2, 0, 'h2'), run(d3v2, 1, 'h2'), run(d3v2, 2, 'h2')],
    want: ['-default.web-h1-0(superseded)', '-default.web-h1-1(replaced)'],
  },
  { name: 'recreate: old instances stop before any new one is created', desired: recreate, actual: [run(d3, 0), run(d3, 1)], want: ['-default.web-h1-0(replaced)', '-default.web-h1-1(replaced)'] },
  { name: 'recreate: new ones once the old are gone', desired: recreate, actual: [], want: ['+default.web-h2-0', '+default.web-h2-1'] },
];

for (const c of cases) {
  test(`computePlan: ${c.name}`, () => {
    assert.deepEqual(computePlan(c.desired, c.actual).map(brief), c.want);
  });
}

test('computePlan is deterministic and idempotent: applying its creates leaves nothing to do', () => {
  const first = computePlan(d3, [run(d3, 1)]);
  assert.deepEqual(first, computePlan(d3, [run(d3, 1)]));
  const after = [run(d3, 1), ...first.filter((a) => a.type === 'create').map((a) => pending(d3, (a as { ordinal: number }).ordinal))];
  assert.deepEqual(computePlan(d3, after), []);
});

test('computePlan ignores a status that belongs to an older uid when judging readiness', () => {
  const stale = run(d3, 0);
  stale.status = { ...stale.status!, uid: 'someone-else' };
  const actions = computePlan(d3v2, [stale, run(d3v2, 0, 'h2'), run(d3v2, 1, 'h2'), run(d3v2, 2, 'h2')]);
  assert.deepEqual(actions.map(brief), ['-default.web-h1-0(superseded)']);
});

test('rolling updates keep Kubernetes invariants at every step and converge (simulated)', () => {
  const strategies: [number | string, number | string][] = [['25%', '25%'], [0, 1], [1, 0], [2, 3], ['50%', 0], [0, '100%']];
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const [maxSurge, maxUnavailable] of strategies) {
    for (const replicas of [1, 3, 10]) {
      const v1 = deployment({ replicas });
      const v2 = deployment({ replicas, templateHash: 'h2', strategy: { type: 'RollingUpdate', maxSurge, maxUnavailable } });
      const { maxSurge: surge, maxUnavailable: unavailable } = rollingBounds(v2);
      let world: ActualInstance[] = Array.from({ length: replicas }, (_, i) => run(v1, i));
      let steps = 0;
      for (;;) {
        const actions = computePlan(v2, world);
        for (const a of actions) {
          if (a.type === 'delete') world = world.filter((i) => i.record.id !== a.id);
          else world.push(pending(v2, a.ordinal, 'h2'));
        }
        const label = `surge ${maxSurge} unavailable ${maxUnavailable} replicas ${replicas} step ${steps}`;
        assert.ok(world.length <= replicas + surge, `${label}: ${world.length} instances`);
        assert.ok(world.filter(isReady).length >= replicas - unavailable, `${label}: too few ready`);
        const done = world.length === replicas && world.every((i) => i.record.templateHash === 'h2' && isReady(i));
        if (done) break;
        if (actions.length === 0) {
          // Some new instances become ready, in a random order.
          for (const i of world) if (!isReady(i) && random() < 0.5) world[world.indexOf(i)] = run(v2, i.record.ordinal, 'h2');
        }
        assert.ok(++steps < 500, `${label}: no convergence`);
      }
    }
  }
});
