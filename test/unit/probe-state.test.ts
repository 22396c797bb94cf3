import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialProbeState, nextProbeState } from '../../agents/probe-state.ts';

/** The verdict after each result, starting from `initial`. */
function verdicts(initial: boolean, results: boolean[], successThreshold: number, failureThreshold: number): boolean[] {
  let state = initialProbeState(initial);
  return results.map((ok) => (state = nextProbeState(state, ok, { successThreshold, failureThreshold })).passing);
}

test('probe verdicts follow Kubernetes thresholds', () => {
  const cases: { name: string; initial: boolean; results: boolean[]; success: number; failure: number; want: boolean[] }[] = [
    { name: 'readiness passes on the first success (threshold 1)', initial: false, results: [false, true], success: 1, failure: 3, want: [false, true] },
    { name: 'readiness needs successThreshold in a row', initial: false, results: [true, false, true, true], success: 2, failure: 3, want: [false, false, false, true] },
    { name: 'failing needs failureThreshold in a row', initial: true, results: [false, false, true, false, false, false], success: 1, failure: 3, want: [true, true, true, true, true, false] },
    { name: 'liveness starts alive and dies after 3 failures', initial: true, results: [false, false, false], success: 1, failure: 3, want: [true, true, false] },
    { name: 'failureThreshold 1 fails at once', initial: true, results: [false], success: 1, failure: 1, want: [false] },
    { name: 'a failed probe passes again after successThreshold successes', initial: true, results: [false, true, true], success: 2, failure: 1, want: [false, false, true] },
  ];
  for (const c of cases) assert.deepEqual(verdicts(c.initial, c.results, c.success, c.failure), c.want, c.name);
});

test('counts reset on the opposite result', () => {
  const counts = { successThreshold: 1, failureThreshold: 3 };
  let s = initialProbeState(false);
  s = nextProbeState(s, false, counts);
  s = nextProbeState(s, false, counts);
  assert.equal(s.failures, 2);
  s = nextProbeState(s, true, counts);
  assert.deepEqual(s, { passing: true, successes: 1, failures: 0, checks: 3 });
});
