import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advanceRollout, effectiveTemplateHash, type RolloutDecision } from '../../reconciler/rollout/advance-rollout.ts';
import { applyRolloutAction } from '../../reconciler/rollout/rollout-commands.ts';
import { computePlan } from '../../reconciler/plan/compute-plan.ts';
import { computeDeploymentStatus } from '../../reconciler/status/deployment-status.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { ActualInstance } from '../../state/records/instance.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import { deployment, instance } from '../helpers/records.ts';

/**
 * A deployment pinned to a revision other than Git's (automatic rollback, abort, undo): what
 * `gantry rollout restart` does to it, and what its status says.
 */

const REPLICAS = 4;
const strategy = { type: 'RollingUpdate' as const, maxSurge: 1, maxUnavailable: 1 };
const v1 = deployment({ replicas: REPLICAS, strategy, commit: 'aaaaaaaa1', commitMessage: 'v1' });
const v2 = deployment({ replicas: REPLICAS, strategy, templateHash: 'h2', generation: 2, commit: 'bbbbbbbb2', commitMessage: 'v2', progressDeadlineSeconds: 5 });
const v3 = deployment({ replicas: REPLICAS, strategy, templateHash: 'h3', generation: 3, commit: 'cccccccc3', commitMessage: 'v3' });

const running = (d: DeploymentRecord, hash: string, ordinals: number[]): ActualInstance[] => ordinals.map((o) => instance(d, o, { hash, node: 'n1', phase: 'Running' }));
const all = Array.from({ length: REPLICAS }, (_, i) => i);

/** v1 complete, then v2 (unschedulable) past its deadline: rolled back to revision 1 and pinned, v1 serving. */
function rolledBack(): RolloutState {
  let s = advanceRollout(v1, undefined, [], 1_000).state;
  s = advanceRollout(v1, s, running(v1, 'h1', all), 2_000).state;
  s = advanceRollout(v2, s, running(v1, 'h1', all), 10_000).state;
  const stuck = [...running(v1, 'h1', all), instance(v2, 0, { hash: 'h2' })];
  s = advanceRollout(v2, s, stuck, 11_000).state;
  const late = advanceRollout(v2, s, stuck, 16_001);
  assert.equal(late.state.pin?.reason, 'rollback');
  return advanceRollout(v2, late.state, running(v1, 'h1', all), 17_000).state;
}

/** v1 complete, v2 complete, then undo to revision 1 (completed). */
function undone(): { d: DeploymentRecord; state: RolloutState } {
  let s = advanceRollout(v1, undefined, [], 1_000).state;
  s = advanceRollout(v1, s, running(v1, 'h1', all), 2_000).state;
  const v2ok = { ...v2, progressDeadlineSeconds: 600 };
  s = advanceRollout(v2ok, s, running(v1, 'h1', all), 3_000).state;
  s = advanceRollout(v2ok, s, running(v2ok, 'h2', all), 4_000).state;
  s = applyRolloutAction(s, 'undo', 2, { toRevision: 1 });
  s = advanceRollout(v2ok, s, running(v1, 'h1', all), 5_000).state;
  return { d: v2ok, state: s };
}

/** v1 complete, v2 rolling out, aborted; v1 serving again. */
function aborted(): RolloutState {
  let s = advanceRollout(v1, undefined, [], 1_000).state;
  s = advanceRollout(v1, s, running(v1, 'h1', all), 2_000).state;
  const v2ok = { ...v2, progressDeadlineSeconds: 600 };
  s = advanceRollout(v2ok, s, running(v1, 'h1', all), 3_000).state;
  s = applyRolloutAction(s, 'abort', 2);
  return advanceRollout(v2ok, s, running(v1, 'h1', all), 4_000).state;
}

const pinnedCases: { name: string; make: () => { d: DeploymentRecord; state: RolloutState }; reason: string; statusReason: string; message: RegExp }[] = [
  {
    name: 'automatic rollback',
    make: () => ({ d: v2, state: rolledBack() }),
    reason: 'rollback',
    statusReason: 'RolledBack',
    message: /^running revision 1 \(commit aaaaaaa\): revision 2 \(commit bbbbbbb\) failed \(ProgressDeadlineExceeded\) and was rolled back; out of sync with Git until/,
  },
  {
    name: 'undo',
    make: undone,
    reason: 'undo',
    statusReason: 'Undone',
    message: /^running revision 1 \(commit aaaaaaa\): gantry rollout undo; Git asks for revision 2 \(commit bbbbbbb\); out of sync with Git until/,
  },
  {
    name: 'abort',
    make: () => ({ d: v2, state: aborted() }),
    reason: 'abort',
    statusReason: 'Aborted',
    message: /^running revision 1 \(commit aaaaaaa\): the rollout of revision 2 \(commit bbbbbbb\) was aborted; out of sync with Git until/,
  },
];

/**
 * Runs reconciles to convergence the way the controller does: advanceRollout, then the plan for its
 * target (creates become ready at the next step). Checks the strategy's bounds at every step.
 */
function converge(d: DeploymentRecord, state: RolloutState, instances: ActualInstance[], t0: number): { decision: RolloutDecision; instances: ActualInstance[]; steps: number } {
  let live = instances;
  for (let step = 1; step <= 50; step++) {
    const now = t0 + step * 100;
    const decision = advanceRollout(d, state, live, now);
    state = decision.state;
    const actions = computePlan({ ...d, templateHash: decision.target.templateHash, template: decision.target.template }, live, { now });
    if (actions.length === 0) return { decision, instances: live, steps: step };
    const deleted = new Set(actions.flatMap((a) => (a.type === 'delete' ? [a.id] : [])));
    live = live.filter((i) => !deleted.has(i.record.id));
    // The strategy's bounds hold after the deletes (made first) and after the creates.
    assert.ok(live.length >= REPLICAS - strategy.maxUnavailable, `step ${step}: only ${live.length} ready`);
    for (const a of actions) if (a.type === 'create') live = [...live, ...running(d, a.templateHash, [a.ordinal])];
    assert.ok(live.length <= REPLICAS + strategy.maxSurge, `step ${step}: ${live.length} instances`);
  }
  throw new Error('did not converge');
}

for (const c of pinnedCases) {
  test(`restart while pinned (${c.name}) rolls every instance of the pinned revision within maxSurge/maxUnavailable`, () => {
    const { d, state } = c.make();
    assert.equal(state.pin?.reason, c.reason);
    assert.equal(state.phase, 'Complete');
    const before = state.revisions.map((r) => r.revision);
    const restarted = applyRolloutAction(state, 'restart', d.generation, { nonce: 'n1' });
    const first = advanceRollout(d, restarted, running(v1, 'h1', all), 20_000);
    const hash = effectiveTemplateHash('h1', 'n1');
    assert.equal(first.target.templateHash, hash, 'the target is a restart of the pinned template');
    assert.deepEqual(first.target.template, v1.template);
    assert.equal(first.target.commit, 'aaaaaaaa1');
    assert.equal(first.git.revision, 2, "Git's revision is unchanged: the failed template is not restarted");
    assert.deepEqual(first.state.revisions.map((r) => r.revision), [...before, Math.max(...before) + 1]);
    assert.equal(first.state.pin?.revision, first.target.revision, 'the pin moves to the restarted revision');
    assert.equal(first.state.pin?.reason, c.reason);
    assert.equal(first.state.pin?.failedRevision, state.pin?.failedRevision);
    assert.equal(first.state.pin?.restartNonce, undefined, 'the restart is consumed');
    assert.equal(first.state.phase, 'Progressing');
    assert.deepEqual(first.events.map((e) => e.reason), ['RolloutStarted']);

    const done = converge(d, first.state, running(v1, 'h1', all), 20_000);
    assert.ok(done.steps > 2, 'paced, not all at once');
    assert.deepEqual(done.instances.map((i) => i.record.templateHash), Array(REPLICAS).fill(hash));
    assert.equal(done.decision.state.phase, 'Complete');
    assert.equal(done.decision.state.stable, first.target.revision);
    assert.equal(done.decision.state.pin?.revision, first.target.revision, 'still pinned: Git has not changed');

    // A second restart rolls again.
    const again = advanceRollout(d, applyRolloutAction(done.decision.state, 'restart', d.generation, { nonce: 'n2' }), done.instances, 60_000);
    assert.equal(again.target.templateHash, effectiveTemplateHash(hash, 'n2'));
    assert.equal(again.state.pin?.revision, again.target.revision);
  });

  test(`status while pinned (${c.name}) describes the pinned revision`, () => {
    const { d, state } = c.make();
    const instances = running(v1, 'h1', all);
    const decision = advanceRollout(d, state, instances, 30_000);
    const status = computeDeploymentStatus(d, instances, undefined, undefined, 30_000, decision);
    assert.equal(status.templateHash, 'h1');
    assert.equal(status.updatedReplicas, REPLICAS);
    assert.equal(status.rollout?.revision, 1);
    assert.equal(status.rollout?.phase, 'Complete');
    assert.equal(status.rollout?.commit, 'aaaaaaaa1');
    assert.equal(status.observedCommit, 'bbbbbbbb2', 'the Git commit observed');
    const cond = (type: string) => status.conditions.find((x) => x.type === type);
    assert.deepEqual([cond('Progressing')?.status, cond('Progressing')?.reason], ['True', 'NewReplicaSetAvailable']);
    assert.equal(cond('Progressing')?.message, 'revision 1 (h1) of commit aaaaaaa is available');
    assert.deepEqual([cond('Available')?.status], ['True']);
    assert.deepEqual([cond('Pinned')?.status, cond('Pinned')?.reason], ['True', c.statusReason]);
    assert.match(cond('Pinned')!.message, c.message);
  });
}

const statusCases: { name: string; state: () => RolloutState; d: DeploymentRecord; instances: ActualInstance[]; want: { updated: number; progressing: string; message: RegExp; pinned: boolean } }[] = [
  {
    name: 'rolling back: the stable revision is the target, old = instances of the failed one',
    state: () => {
      let s = advanceRollout(v1, undefined, [], 1_000).state;
      s = advanceRollout(v1, s, running(v1, 'h1', all), 2_000).state;
      s = advanceRollout(v2, s, running(v1, 'h1', all), 10_000).state;
      return advanceRollout(v2, s, [...running(v1, 'h1', [0, 1, 2]), instance(v2, 0, { hash: 'h2' })], 11_000).state;
    },
    d: v2,
    // Past v2's deadline with one v2 instance pending: this reconcile rolls back.
    instances: [...running(v1, 'h1', [0, 1, 2]), instance(v2, 0, { hash: 'h2' })],
    want: { updated: 3, progressing: 'RollingBack', message: /^commit bbbbbbb failed \(ProgressDeadlineExceeded\): returning to revision 1/, pinned: true },
  },
  {
    name: 'restart without a pin: updated counts the restarted revision',
    state: () => {
      let s = advanceRollout(v1, undefined, [], 1_000).state;
      s = advanceRollout(v1, s, running(v1, 'h1', all), 2_000).state;
      return applyRolloutAction(s, 'restart', 1, { nonce: 'r1' });
    },
    d: v1,
    instances: running(v1, effectiveTemplateHash('h1', 'r1'), all),
    want: { updated: REPLICAS, progressing: 'NewReplicaSetAvailable', message: new RegExp(`^revision 2 \\(${effectiveTemplateHash('h1', 'r1')}\\) of commit aaaaaaa is available$`), pinned: false },
  },
  {
    name: 'a new commit releases the pin: Git is the target again',
    state: rolledBack,
    d: v3,
    instances: [...running(v1, 'h1', all), ...running(v3, 'h3', [0])],
    want: { updated: 1, progressing: 'ReplicaSetUpdating', message: /^1\/4 instances of revision 3 \(h3\) ready, 4 old instance\(s\) left$/, pinned: false },
  },
];

for (const c of statusCases) {
  test(`status: ${c.name}`, () => {
    const decision = advanceRollout(c.d, c.state(), c.instances, 40_000);
    const status = computeDeploymentStatus(c.d, c.instances, undefined, undefined, 40_000, decision);
    const progressing = status.conditions.find((x) => x.type === 'Progressing')!;
    assert.equal(status.updatedReplicas, c.want.updated);
    assert.equal(progressing.reason, c.want.progressing);
    assert.match(progressing.message, c.want.message);
    assert.equal(status.conditions.some((x) => x.type === 'Pinned'), c.want.pinned);
  });
}

test('restart: applies to the pin of this generation, otherwise to Git', () => {
  const state = rolledBack();
  const pinned = applyRolloutAction(state, 'restart', 2, { nonce: 'x' });
  assert.equal(pinned.pin?.restartNonce, 'x');
  assert.equal(pinned.restartNonce, undefined, "Git's template is not restarted");
  // A pin Git has moved past (released at the next reconcile): the restart is Git's.
  const stale = applyRolloutAction(state, 'restart', 3, { nonce: 'y' });
  assert.equal(stale.pin?.restartNonce, undefined);
  assert.deepEqual([stale.restartNonce, stale.restartGeneration], ['y', 3]);
  const next = advanceRollout(v3, stale, running(v1, 'h1', all), 50_000);
  assert.equal(next.state.pin, undefined);
  assert.equal(next.target.templateHash, effectiveTemplateHash('h3', 'y'));
});
