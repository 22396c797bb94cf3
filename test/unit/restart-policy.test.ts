import assert from 'node:assert/strict';
import { test } from 'node:test';
import { afterExit, wantsRestart, type EndedRun } from '../../agents/restart-policy.ts';
import type { RestartPolicy } from '../../state/records/instance.ts';

/** What follows a container's end, by restartPolicy, for containers and init containers (Kubernetes' rules). */

const backoff = { initialMs: 10_000, maxMs: 300_000, resetMs: 600_000 };
const run = (over: Partial<EndedRun>): EndedRun => ({ init: false, exitCode: 0, finishedAt: 1_000_000, startedAt: 999_000, backoffStep: 0, ...over });

test('wantsRestart: containers follow the policy; init containers treat Always as OnFailure', () => {
  const cases: [RestartPolicy, Partial<EndedRun>, boolean][] = [
    ['Always', { exitCode: 0 }, true],
    ['Always', { exitCode: 1 }, true],
    ['OnFailure', { exitCode: 0 }, false],
    ['OnFailure', { exitCode: 2 }, true],
    ['OnFailure', { exitCode: undefined }, true],
    ['OnFailure', { exitCode: 0, startError: 'no such file' }, true],
    ['Never', { exitCode: 1 }, false],
    ['Always', { init: true, exitCode: 0 }, false],
    ['Always', { init: true, exitCode: 3 }, true],
    ['Never', { init: true, exitCode: 3 }, false],
  ];
  for (const [policy, over, want] of cases) assert.equal(wantsRestart(policy, run(over)), want, `${policy} ${JSON.stringify(over)}`);
});

test('afterExit: an init container that exited 0 completed; a failed one restarts with the backoff from its exit', () => {
  assert.deepEqual(afterExit('Always', run({ init: true }), backoff), { kind: 'completed' });
  // Stopped by the agent (a failed probe or hook: no exit code recorded) is no completion.
  assert.equal(afterExit('OnFailure', run({ init: true, exitCode: undefined, reason: 'PostStartHookError' }), backoff).kind, 'restart');
  // An exit 0 with a reason (OOMKilled reported with 0) is no completion either, and OnFailure does not restart it.
  assert.deepEqual(afterExit('OnFailure', run({ init: true, exitCode: 0, reason: 'OOMKilled' }), backoff), { kind: 'done' });
  assert.deepEqual(afterExit('Never', run({ init: true, exitCode: 1 }), backoff), { kind: 'done' });
  const first = afterExit('Always', run({ exitCode: 1 }), backoff);
  assert.equal(first.kind, 'restart');
  // The first crash restarts at once; the next ones wait, counted from the exit.
  assert.deepEqual(first, { kind: 'restart', backoffStep: 1, delayMs: 0, at: 1_000_000 });
  const second = afterExit('Always', run({ exitCode: 1, backoffStep: 1 }), backoff);
  assert.deepEqual(second, { kind: 'restart', backoffStep: 2, delayMs: 10_000, at: 1_010_000 });
});
