import type { RestartPolicy } from '../state/records/instance.ts';
import { nextBackoffStep, restartDelayMs, type BackoffConfig } from './restart-backoff.ts';

/**
 * What follows a container's end, as the kubelet decides it (pure): an init container that exited 0
 * completed; otherwise the pod's restartPolicy says whether it runs again, and the crash backoff
 * when. Init containers are retried on failure unless the policy is Never (Always acts as OnFailure
 * for them, as in Kubernetes).
 */

export interface EndedRun {
  init: boolean;
  exitCode?: number;
  /** Why it ended, when more than the code says (OOMKilled, a failed probe or hook). */
  reason?: string;
  /** It did not start at all. */
  startError?: string;
  startedAt?: number;
  finishedAt: number;
  backoffStep: number;
}

export type AfterExit =
  | { kind: 'completed' }
  | { kind: 'done' }
  | { kind: 'restart'; backoffStep: number; delayMs: number; at: number };

export function wantsRestart(policy: RestartPolicy, run: Pick<EndedRun, 'init' | 'exitCode' | 'startError'>): boolean {
  switch (run.init && policy === 'Always' ? 'OnFailure' : policy) {
    case 'Always':
      return true;
    case 'OnFailure':
      // Not knowing how it ended, or not starting at all, counts as a failure.
      return run.startError !== undefined || run.exitCode !== 0;
    case 'Never':
      return false;
  }
}

export function afterExit(policy: RestartPolicy, run: EndedRun, backoff: BackoffConfig): AfterExit {
  if (run.init && run.exitCode === 0 && run.startError === undefined && !run.reason) return { kind: 'completed' };
  if (!wantsRestart(policy, run)) return { kind: 'done' };
  const backoffStep = nextBackoffStep(run.backoffStep, run.startedAt, run.finishedAt, backoff);
  const delayMs = restartDelayMs(backoffStep - 1, backoff);
  // From the exit, not from now: a container that died long before an agent restart goes again at once.
  return { kind: 'restart', backoffStep, delayMs, at: run.finishedAt + delayMs };
}
