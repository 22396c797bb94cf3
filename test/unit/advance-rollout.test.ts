import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advanceRollout, effectiveTemplateHash } from '../../reconciler/rollout/advance-rollout.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { ActualInstance } from '../../state/records/instance.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import { deployment, instance } from '../helpers/records.ts';

const ready = (d: DeploymentRecord, n: number, hash = d.templateHash): ActualInstance[] =>
  Array.from({ length: n }, (_, i) => instance(d, i, { hash, node: 'n1', phase: 'Running' }));
const pending = (d: DeploymentRecord, n: number, hash = d.templateHash): ActualInstance[] => Array.from({ length: n }, (_, i) => instance(d, i, { hash }));

function completeV1(): { v1: DeploymentRecord; state: RolloutState } {
  const v1 = deployment({ replicas: 2, commit: 'aaaaaaaa1', commitMessage: 'first' });
  const a = advanceRollout(v1, undefined, [], 1000);
  assert.equal(a.state.target, 1);
  assert.equal(a.state.phase, 'Progressing');
  assert.deepEqual(a.events.map((e) => e.reason), ['RolloutStarted']);
  const b = advanceRollout(v1, a.state, ready(v1, 2), 2000);
  assert.equal(b.state.phase, 'Complete');
  assert.equal(b.state.stable, 1);
  assert.deepEqual(b.events.map((e) => e.reason), ['RolloutComplete']);
  return { v1, state: b.state };
}

test('a first rollout completes and becomes the stable revision', () => {
  const { state } = completeV1();
  assert.deepEqual(state.revisions.map((r) => [r.revision, r.commit, r.message]), [[1, 'aaaaaaaa1', 'first']]);
});

test('a rollout with no progress past its deadline fails and rolls back to the stable revision, pinned', () => {
  const { v1, state } = completeV1();
  const v2 = deployment({ replicas: 2, templateHash: 'h2', generation: 2, commit: 'bbbbbbbb2', progressDeadlineSeconds: 5 });
  const started = advanceRollout(v2, state, ready(v1, 2), 10_000);
  assert.equal(started.target.revision, 2);
  assert.equal(started.requeueAfterMs, 5_010);
  const stuck = [...ready(v1, 2), ...pending(v2, 1, 'h2')];
  const moved = advanceRollout(v2, started.state, stuck, 11_000);
  assert.equal(moved.state.phase, 'Progressing');
  const late = advanceRollout(v2, moved.state, stuck, 16_001);
  assert.equal(late.target.revision, 1, 'back to the stable revision');
  assert.deepEqual(late.state.pin, { revision: 1, generation: 2, reason: 'rollback', failedRevision: 2, failedCommit: 'bbbbbbbb2' });
  assert.deepEqual(late.events.map((e) => e.reason), ['ProgressDeadlineExceeded', 'RolledBack', 'RolloutStarted']);
  assert.match(late.events[1]!.message, /commit bbbbbbb \(revision 2\) failed: ProgressDeadlineExceeded; returning to revision 1 \(commit aaaaaaa\)/);
  // The same generation stays pinned (continuous sync does not retry the failed commit)...
  const held = advanceRollout(v2, late.state, ready(v1, 2), 20_000);
  assert.equal(held.target.revision, 1);
  assert.equal(held.state.phase, 'Complete');
  // ...until Git changes the deployment again.
  const v3 = deployment({ replicas: 2, templateHash: 'h3', generation: 3, commit: 'cccccccc3' });
  const next = advanceRollout(v3, held.state, ready(v1, 2), 30_000);
  assert.equal(next.state.pin, undefined);
  assert.equal(next.target.revision, 3);
  assert.deepEqual(next.events.map((e) => e.reason), ['PinReleased', 'RolloutStarted']);
});

test('rollback: none leaves a failed rollout failed', () => {
  const { v1, state } = completeV1();
  const v2 = deployment({ replicas: 2, templateHash: 'h2', generation: 2, progressDeadlineSeconds: 1, rollback: 'none' });
  const a = advanceRollout(v2, state, ready(v1, 2), 10_000);
  const b = advanceRollout(v2, a.state, ready(v1, 2), 12_000);
  assert.equal(b.state.phase, 'Failed');
  assert.equal(b.state.reason, 'ProgressDeadlineExceeded');
  assert.equal(b.target.revision, 2);
  assert.equal(b.state.pin, undefined);
});

test('a paused rollout holds and does not fail on its deadline', () => {
  const { v1, state } = completeV1();
  const v2 = deployment({ replicas: 2, templateHash: 'h2', generation: 2, progressDeadlineSeconds: 1 });
  const a = advanceRollout(v2, { ...state, paused: true }, ready(v1, 2), 10_000);
  assert.equal(a.hold, true);
  const b = advanceRollout(v2, a.state, ready(v1, 2), 60_000);
  assert.equal(b.state.phase, 'Progressing');
});

test('canary: weights, a timed pause, an indefinite pause until promoted, then full', () => {
  const { v1, state } = completeV1();
  const steps = [{ setWeight: 50 }, { pause: { durationMs: 30_000 } }, { setWeight: 50 }, { pause: {} }];
  const v2 = deployment({ replicas: 2, templateHash: 'h2', generation: 2, strategy: { type: 'Canary', maxSurge: '25%', maxUnavailable: '25%', steps } });
  const s1 = advanceRollout(v2, state, ready(v1, 2), 1_000);
  assert.equal(s1.canaryReplicas, 1);
  assert.equal(s1.stable?.revision, 1);
  const s2 = advanceRollout(v2, s1.state, [...ready(v1, 1), ...ready(v2, 1, 'h2')], 2_000);
  assert.equal(s2.state.canaryStep, 1);
  assert.equal(s2.state.reason, 'CanaryPaused');
  assert.ok(s2.requeueAfterMs! <= 30_000 && s2.requeueAfterMs! > 29_000);
  const s3 = advanceRollout(v2, s2.state, [...ready(v1, 1), ...ready(v2, 1, 'h2')], 40_000);
  assert.equal(s3.state.canaryStep, 3, 'past the timed pause and the second weight, at the indefinite pause');
  assert.match(s3.state.message, /gantry rollout promote/);
  assert.equal(s3.canaryReplicas, 1);
  const s4 = advanceRollout(v2, { ...s3.state, promote: true }, [...ready(v1, 1), ...ready(v2, 1, 'h2')], 50_000);
  assert.equal(s4.canaryReplicas, undefined, 'all steps done: the whole deployment moves');
  const s5 = advanceRollout(v2, s4.state, ready(v2, 2, 'h2'), 60_000);
  assert.equal(s5.state.phase, 'Complete');
  assert.equal(s5.state.stable, 2);
});

test('a restart nonce makes a new revision of the same template; history is bounded', () => {
  let { v1, state } = completeV1();
  const restarted = advanceRollout(v1, { ...state, restartNonce: 'r1', restartGeneration: 1 }, ready(v1, 2), 5_000);
  assert.equal(restarted.target.revision, 2);
  assert.equal(restarted.target.templateHash, effectiveTemplateHash(v1.templateHash, 'r1'));
  assert.notEqual(restarted.target.templateHash, v1.templateHash);
  state = restarted.state;
  for (let g = 2; g < 20; g++) {
    const d = deployment({ replicas: 2, templateHash: `g${g}`, generation: g, revisionHistoryLimit: 3 });
    state = advanceRollout(d, state, ready(d, 2, `g${g}`), g * 10_000).state;
  }
  assert.ok(state.revisions.length <= 5, `kept ${state.revisions.length} revisions`);
  assert.equal(state.revisions.at(-1)!.templateHash, 'g19');
});
