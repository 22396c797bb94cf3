/**
 * The verdict of one probe from its results, as Kubernetes counts them (pure): a probe passes after
 * successThreshold successes in a row and fails after failureThreshold failures in a row; in
 * between it keeps its last verdict, so one flaky check neither makes nor breaks it.
 */

/** One check's outcome; here so that the checks (http-probe.ts, grpc-health.ts) and the runner share it without an import cycle. */
export interface CheckResult {
  ok: boolean;
  /** Why it failed (for events and logs). */
  detail?: string;
}

export interface ProbeCounts {
  successThreshold: number;
  failureThreshold: number;
}

export interface ProbeState {
  /** The current verdict; `initial` until the thresholds say otherwise. */
  passing: boolean;
  successes: number;
  failures: number;
  /** Checks run so far (for messages). */
  checks: number;
}

/**
 * Readiness starts failing (not ready until proven); liveness starts passing (alive until proven
 * dead); a startup probe starts failing and, once passed, is never run again.
 */
export function initialProbeState(passing: boolean): ProbeState {
  return { passing, successes: 0, failures: 0, checks: 0 };
}

export function nextProbeState(state: ProbeState, ok: boolean, counts: ProbeCounts): ProbeState {
  const successes = ok ? state.successes + 1 : 0;
  const failures = ok ? 0 : state.failures + 1;
  let passing = state.passing;
  if (ok && successes >= counts.successThreshold) passing = true;
  if (!ok && failures >= counts.failureThreshold) passing = false;
  return { passing, successes, failures, checks: state.checks + 1 };
}
