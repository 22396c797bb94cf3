import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computePlan, type ActualInstance, type PlanAction } from '../../reconciler/plan/compute-plan.ts';
import type { DeploymentRecord } from '../../reconciler/state/records.ts';
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
    name: 'template change: new instances created, old ones kept while the new are not ready',
    desired: d3v2,
    actual: [run(d3, 0), run(d3, 1), run(d3, 2)],
    want: ['+default.web-h2-0', '+default.web-h2-1', '+default.web-h2-2'],
  },
  {
    name: 'template change: old instances go as new ones become ready',
    desired: d3v2,
    actual: [run(d3, 0), run(d3, 1), run(d3, 2), run(d3v2, 0, 'h2'), run(d3v2, 1, 'h2'), pending(d3v2, 2, 'h2')],
    want: ['-default.web-h1-1(replaced)', '-default.web-h1-2(replaced)'],
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
