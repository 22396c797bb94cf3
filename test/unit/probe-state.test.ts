import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialProbeState, nextProbeState, type ProbeState } from '../../agents/probe-state.ts';

const run = (start: ProbeState, results: boolean[], successThreshold: number, failureThreshold: number) =>
  results.reduce<boolean[]>((verdicts, ok) => {
    const prev = verdicts.length === 0 ? start : state;
    state = nextProbeState(prev, ok, { successThreshold, failureThreshold });
    return [...verdicts, state.passing];
  }, []);
let state = initialProbeState(false);

test('probe verdicts follow Kubernetes thresholds', () => {
  const cases: { name: string; initial: boolean; results: boolean[]; success: number; failure: number; want: boolean[] }[] = [
    { name: 'readiness passes on the first success (threshold 1)', initial: false, results: [false, true], success: 1, failure: 3, want: [false, true] },
    { name: 'readiness needs successThreshold in a row', initial: false, results: [true, false, true, true], success: 2, failure: 3, want: [false, false, false, true] },
    { name: 'failing needs failureThreshold in a row', initial: true, results: [false, false, true, false, false, false], success: 1, failure: 3, want: [true, true, true, true, true, false] },
    { name: 'liveness starts alive and dies after 3 failures', initial: true, results: [false, false, false], success: 1, failure: 3, want: [true, true, false] },
    { name: 'failureThreshold 1 fails at once', initial: true, results: [false], success: 1, failure: 1, want: [false] },
  ];
  for (const c of cases) {
    state = initialProbeState(c.initial);
    assert.deepEqual(run(initialProbeState(c.initial), c.results, c.success, c.failure), c.want, c.name);
  }
});

test('counts reset on the opposite result', () => {
  let s = initialProbeState(false);
  s = nextProbeState(s, false, { successThreshold: 1, failureThreshold: 3 });
  s = nextProbeState(s, false, { successThreshold: 1, failureThreshold: 3 });
  assert.equal(s.failures, 2);
  s = nextProbeState(s, true, { successThreshold: 1, failureThreshold: 3 });
  assert.deepEqual(s, { passing: true, successes: 1, failures: 0, checks: 3 });
});
