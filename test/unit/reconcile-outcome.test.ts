import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StalledError, TransientError, WaitingError } from '../../lib/errors/index.ts';
import { GitSourceError } from '../../reconciler/git/errors.ts';
import { GitHostError } from '../../reconciler/git-host/git-host-client.ts';
import { backoffDelay, decideNext, describeDecision, type ReconcileDecision, type ReconcileResult } from '../../reconciler/controller/reconcile-outcome.ts';
import { RECONCILE_BACKOFF } from '../../state/queues.ts';

/** One switch from a reconcile's outcome to the queue's next step, with the jitter pinned. */

const ok = (outcome?: { requeueAfterMs?: number }): ReconcileResult => ({ ok: true, outcome });
const threw = (error: unknown): ReconcileResult => ({ ok: false, error });
const MID = () => 0.5; // the jitter's midpoint: the bare exponential delay

const cases: { name: string; result: ReconcileResult; failures?: number; random?: () => number; want: ReconcileDecision }[] = [
  { name: 'success: done', result: ok(), want: { action: 'done' } },
  { name: 'success with an empty outcome: done', result: ok({}), want: { action: 'done' } },
  { name: 'success asking for a look later: requeue after it, no jitter', result: ok({ requeueAfterMs: 1_500 }), random: () => 0, want: { action: 'requeue', afterMs: 1_500, reason: 'requested' } },
  { name: 'success asking for a look now', result: ok({ requeueAfterMs: 0 }), want: { action: 'requeue', afterMs: 0, reason: 'requested' } },
  { name: 'a negative requeue is now', result: ok({ requeueAfterMs: -5 }), want: { action: 'requeue', afterMs: 0, reason: 'requested' } },
  { name: 'success after failures: done (the count ends)', result: ok(), failures: 7, want: { action: 'done' } },
  { name: 'WaitingError: requeue after its delay, not a failure', result: threw(new WaitingError('NOT_PLACED', 'not yet', 2_000)), failures: 3, want: { action: 'requeue', afterMs: 2_000, reason: 'waiting' } },
  { name: 'StalledError: terminal', result: threw(new StalledError('SCHEMA', 'fix the manifest')), failures: 2, want: { action: 'terminal' } },
  { name: 'a stalled code of another class: terminal', result: threw(new GitSourceError('INVALID_CONFIG', 'bad ref')), want: { action: 'terminal' } },
  { name: 'TransientError, first failure: base delay', result: threw(new TransientError('CONFLICT', 'raced')), random: MID, want: { action: 'backoff', afterMs: 100, failures: 1 } },
  { name: 'a transient code of another class: backoff', result: threw(new GitHostError('GIT_HOST_UNREACHABLE', 'down')), failures: 1, random: MID, want: { action: 'backoff', afterMs: 200, failures: 2 } },
  { name: 'an unknown error: backoff, counted', result: threw(new Error('boom')), failures: 2, random: MID, want: { action: 'backoff', afterMs: 400, failures: 3 } },
  { name: 'a thrown string: backoff', result: threw('boom'), random: MID, want: { action: 'backoff', afterMs: 100, failures: 1 } },
  { name: 'a thrown undefined: still a failure', result: threw(undefined), random: MID, want: { action: 'backoff', afterMs: 100, failures: 1 } },
  { name: 'jitter low end: -20 %', result: threw(new Error('x')), failures: 3, random: () => 0, want: { action: 'backoff', afterMs: 640, failures: 4 } },
  { name: 'jitter high end: +20 %', result: threw(new Error('x')), failures: 3, random: () => 1, want: { action: 'backoff', afterMs: 960, failures: 4 } },
  { name: 'the 10th failure: 51.2 s', result: threw(new Error('x')), failures: 9, random: MID, want: { action: 'backoff', afterMs: 51_200, failures: 10 } },
  { name: 'the 11th failure: capped at 60 s', result: threw(new Error('x')), failures: 10, random: MID, want: { action: 'backoff', afterMs: 60_000, failures: 11 } },
  { name: 'jitter never goes above the cap', result: threw(new Error('x')), failures: 20, random: () => 1, want: { action: 'backoff', afterMs: 60_000, failures: 21 } },
  { name: 'jitter spreads below the cap', result: threw(new Error('x')), failures: 20, random: () => 0, want: { action: 'backoff', afterMs: 48_000, failures: 21 } },
  { name: 'thousands of failures: still the cap, not Infinity', result: threw(new Error('x')), failures: 5_000, random: MID, want: { action: 'backoff', afterMs: 60_000, failures: 5_001 } },
];

for (const c of cases) {
  test(`decideNext: ${c.name}`, () => {
    assert.deepEqual(decideNext(c.result, c.failures ?? 0, c.random ?? MID), c.want);
  });
}

test('the backoff is the reconcile queue policy: 100 ms doubling to 60 s', () => {
  assert.deepEqual(RECONCILE_BACKOFF, { baseMs: 100, capMs: 60_000, jitter: 0.2 });
  assert.deepEqual([1, 2, 3, 4, 5, 10, 11].map((n) => backoffDelay(n, MID)), [100, 200, 400, 800, 1_600, 51_200, 60_000]);
});

test('each delay stays within +-20 % of its step, for any random value', () => {
  for (let n = 1; n <= 12; n++) {
    const bare = Math.min(60_000, 100 * 2 ** (n - 1));
    for (const r of [0, 0.1, 0.37, 0.5, 0.9, 0.999]) {
      const d = backoffDelay(n, () => r);
      assert.ok(d >= Math.round(bare * 0.8) && d <= Math.min(60_000, Math.round(bare * 1.2)), `n=${n} r=${r}: ${d}`);
    }
  }
});

test('describeDecision: what the reconciler logs', () => {
  const table: [ReconcileDecision, string][] = [
    [{ action: 'backoff', afterMs: 400, failures: 3 }, 'retry in 400 ms'],
    [{ action: 'terminal' }, 'stalled, not retried'],
    [{ action: 'requeue', afterMs: 2_000, reason: 'waiting' }, 'waiting, looked at again in 2000 ms'],
    [{ action: 'requeue', afterMs: 1_500, reason: 'requested' }, 'requeued in 1500 ms'],
    [{ action: 'done' }, 'done'],
  ];
  for (const [d, want] of table) assert.equal(describeDecision(d), want);
});
