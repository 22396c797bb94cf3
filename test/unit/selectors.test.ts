import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadManifests, type ManifestFile } from '../../reconciler/manifests/index.ts';
import { overlappingSelectors, requirementMatches, selectorMatches, type SelectorRequirement } from '../../reconciler/manifests/selector.ts';
import { advanceRollout } from '../../reconciler/rollout/advance-rollout.ts';
import { deployment, instance } from '../helpers/records.ts';

/** Label selectors (issue 12, section 2) and spec.paused. */

const files = (f: Record<string, string>): ManifestFile[] => Object.entries(f).map(([path, content]) => ({ path, content }));
const text = (xs: { toString(): string }[]) => xs.map((x) => x.toString());

test('requirements and selectors match as in Kubernetes', () => {
  const labels = { app: 'web', tier: 'front' };
  const cases: Array<[SelectorRequirement, boolean]> = [
    [{ key: 'app', operator: 'In', values: ['web', 'api'] }, true],
    [{ key: 'app', operator: 'In', values: ['api'] }, false],
    [{ key: 'env', operator: 'In', values: ['prod'] }, false],
    [{ key: 'app', operator: 'NotIn', values: ['api'] }, true],
    [{ key: 'app', operator: 'NotIn', values: ['web'] }, false],
    [{ key: 'env', operator: 'NotIn', values: ['prod'] }, true],
    [{ key: 'tier', operator: 'Exists' }, true],
    [{ key: 'env', operator: 'Exists' }, false],
    [{ key: 'env', operator: 'DoesNotExist' }, true],
    [{ key: 'tier', operator: 'DoesNotExist' }, false],
  ];
  for (const [r, expected] of cases) assert.equal(requirementMatches(r, labels), expected, JSON.stringify(r));
  assert.equal(selectorMatches({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, labels), true);
  assert.equal(selectorMatches({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, labels), false);
});

const dep = (name: string, labels: string, selector: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  selector: ${selector}
  template:
    metadata: { labels: ${labels} }
    spec:
      containers: [{ name: main, command: [sleep, "1000"] }]
`;

test('matchExpressions are checked: values per operator, and the template must be selected', () => {
  const res = loadManifests(files({
    'a.yaml': dep('a', '{ app: a }', '{ matchExpressions: [{ key: app, operator: In, values: [] }] }'),
    'b.yaml': dep('b', '{ app: b }', '{ matchExpressions: [{ key: app, operator: Exists, values: [b] }] }'),
    'c.yaml': dep('c', '{ app: c }', '{ matchExpressions: [{ key: app, operator: NotIn, values: [c] }] }'),
    'd.yaml': dep('d', '{ app: d }', '{ matchExpressions: [{ key: app, operator: Sometimes }] }'),
    'e.yaml': dep('e', '{ app: e, track: stable }', '{ matchLabels: { app: e }, matchExpressions: [{ key: track, operator: In, values: [stable, canary] }] }'),
  }));
  assert.deepEqual(text(res.errors), [
    'a.yaml:5:34 Deployment default/a /spec/selector/matchExpressions/0: operator In needs at least one value',
    'b.yaml:5:72 Deployment default/b /spec/selector/matchExpressions/0/values: operator Exists takes no values',
    'c.yaml:5:34 Deployment default/c /spec/selector/matchExpressions/0: selector requirement "app notin (c)" does not select the template\'s labels',
    'd.yaml:5:56 Deployment default/d /spec/selector/matchExpressions/0/operator: must be equal to one of: In, NotIn, Exists, DoesNotExist',
  ]);
  const e = res.objects.find((o) => o.manifest.metadata.name === 'e')!.manifest;
  assert.ok(e.kind === 'Deployment');
  assert.deepEqual(e.spec.selector.matchExpressions, [{ key: 'track', operator: 'In', values: ['stable', 'canary'] }]);
});

test('overlapping selectors in a namespace are an error on the later deployment, naming the earlier one', () => {
  const res = loadManifests(files({
    'a.yaml': dep('web', '{ app: web, track: stable }', '{ matchLabels: { app: web } }'),
    'b.yaml': dep('web-canary', '{ app: web, track: canary }', '{ matchLabels: { app: web, track: canary } }'),
    'c.yaml': dep('api', '{ app: api }', '{ matchLabels: { app: api } }'),
    'd.yaml': dep('api-v2', '{ app: api-v2 }', '{ matchExpressions: [{ key: app, operator: In, values: [api-v2] }] }'),
  }));
  assert.deepEqual(text(res.errors), [
    "b.yaml:5:13 Deployment default/web-canary /spec/selector: selector overlaps Deployment default/web (a.yaml:1:1): each could own the other's instances; give their templates a label that tells them apart",
  ]);
  assert.deepEqual(res.objects.map((o) => o.manifest.metadata.name).sort(), ['api', 'api-v2', 'web']);
  // The index keeps it linear: 2,000 deployments with distinct app labels have no overlap to report.
  const many = Array.from({ length: 2000 }, (_, i) => ({ key: `default/d${i}`, selector: { matchLabels: { app: `d${i}` } }, templateLabels: { app: `d${i}`, team: 'all' } }));
  assert.deepEqual(overlappingSelectors(many), []);
});

test('spec.paused holds a new template from Git while replicas still follow, with no deadline', () => {
  const v1 = deployment({ replicas: 2, commit: 'aaaaaaaa1' });
  const first = advanceRollout(v1, undefined, [], 1000);
  const ready = (d: typeof v1, n: number) => Array.from({ length: n }, (_, i) => instance(d, i, { node: 'n1', phase: 'Running' }));
  const done = advanceRollout(v1, first.state, ready(v1, 2), 2000);
  assert.equal(done.state.phase, 'Complete');
  const v2 = deployment({ replicas: 3, templateHash: 'h2', generation: 2, commit: 'bbbbbbbb2', paused: true, progressDeadlineSeconds: 1 });
  const held = advanceRollout(v2, done.state, ready(v1, 2), 10_000);
  assert.equal(held.target.templateHash, v1.templateHash, 'still the old template');
  assert.equal(held.state.reason, 'DeploymentPaused');
  assert.match(held.state.message, /^paused \(spec\.paused\): revision 2 \(commit bbbbbbb\) from Git waits until spec\.paused is false$/);
  const later = advanceRollout(v2, held.state, ready(v1, 2), 100_000);
  assert.notEqual(later.state.phase, 'Failed', 'no progress deadline while paused');
  const resumed = advanceRollout({ ...v2, paused: false, generation: 3 }, later.state, ready(v1, 2), 101_000);
  assert.equal(resumed.target.templateHash, 'h2');
});
