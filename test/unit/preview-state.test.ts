import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildPreviewState, previewNamespace, previewOwner } from '../../reconciler/preview/preview-state.ts';
import type { DesiredState } from '../../reconciler/desired/desired-state.ts';
import { deployment } from '../helpers/records.ts';

/** A pull request's desired state, moved into its own namespaces, capped and owned. */

const desired = (replicas: number, specHash = 's1'): DesiredState => ({
  commit: 'c2',
  namespaces: [{ name: 'shop', commit: 'c2', labels: { team: 'a' }, annotations: {} }],
  deployments: [deployment({ namespace: 'shop', name: 'web', replicas, specHash, commit: 'c2' }), deployment({ namespace: 'default', name: 'job', replicas: 1, commit: 'c2' })],
});

test('namespaces are renamed pr-<N>-<ns>, "default" included, and everything is owned by pr-<N>', () => {
  const p = buildPreviewState(desired(3), 7, { maxReplicas: 1 }, []);
  assert.deepEqual(p.namespaces.map((n) => [n.name, n.owner, n.annotations['gantry.dev/preview-of']]), [['pr-7-default', 'pr-7', 'default'], ['pr-7-shop', 'pr-7', 'shop']]);
  assert.deepEqual(p.namespaces.find((n) => n.name === 'pr-7-shop')!.labels, { team: 'a' });
  assert.deepEqual(p.deployments.map((d) => [d.namespace, d.name, d.owner, d.replicas, d.generation]), [['pr-7-shop', 'web', 'pr-7', 1, 1], ['pr-7-default', 'job', 'pr-7', 1, 1]]);
  assert.equal(p.deployments[0]!.annotations['gantry.dev/preview-of'], 'shop/web');
  assert.equal(p.deployments[0]!.templateHash, 'h1', 'the template is the pull request\'s, unchanged');
  assert.equal(previewOwner(7), 'pr-7');
  assert.equal(previewNamespace(7, 'shop'), 'pr-7-shop');
});

test('replicas are capped, never raised; generations move only when the capped spec does', () => {
  assert.equal(buildPreviewState(desired(3), 1, { maxReplicas: 2 }, []).deployments[0]!.replicas, 2);
  assert.equal(buildPreviewState(desired(0), 1, { maxReplicas: 2 }, []).deployments[0]!.replicas, 0);
  const first = buildPreviewState(desired(3), 7, { maxReplicas: 1 }, []);
  // 3 -> 5 replicas in the pull request: capped to 1 either way, but the spec changed.
  const same = buildPreviewState(desired(3), 7, { maxReplicas: 1 }, first.deployments);
  assert.equal(same.deployments[0]!.generation, 1);
  const changed = buildPreviewState(desired(5, 's2'), 7, { maxReplicas: 1 }, first.deployments);
  assert.equal(changed.deployments[0]!.generation, 2);
});
