import { GantryError, WaitingError } from '../../lib/errors/index.ts';
import { clampDelay } from '../../lib/timer.ts';
import { RECONCILE_BACKOFF, type BackoffPolicy } from '../../state/queues.ts';

/**
 * The one switch from a reconcile's outcome to what the queue does next, as controller-runtime's
 * reconcileHandler. Pure: the queue (reconcile-queue.ts) only carries the decision out.
 *
 *   returned, no requeueAfterMs            -> done
 *   returned { requeueAfterMs }            -> requeue after it (a rollout deadline, a canary pause)
 *   threw a WaitingError                   -> requeue after its requeueAfterMs: not a failure
 *   threw a stalled one (StalledError)     -> terminal: logged, not retried; the next trigger
 *                                             (a commit, a resync) runs it again
 *   threw anything else (TransientError,   -> backoff: jittered exponential on the failures in a
 *   an unknown error)                         row (RECONCILE_BACKOFF in state/queues.ts)
 */

/** What a reconcile asks of the queue: nothing, or to look again after a while. */
export type ReconcileOutcome = { requeueAfterMs?: number } | void;

export type ReconcileDecision =
  | { action: 'done' }
  | { action: 'requeue'; afterMs: number; reason: 'requested' | 'waiting' }
  | { action: 'backoff'; afterMs: number; failures: number }
  | { action: 'terminal' };

/** How a reconcile ended: what it returned, or what it threw. */
export type ReconcileResult = { ok: true; outcome: ReconcileOutcome } | { ok: false; error: unknown };

/**
 * @param failures reconciles of this key that failed in a row before this one
 * @param random   uniform in [0, 1), for the jitter (Math.random; fixed in tests)
 */
export function decideNext(result: ReconcileResult, failures: number, random: () => number = Math.random, backoff: BackoffPolicy = RECONCILE_BACKOFF): ReconcileDecision {
  if (result.ok) {
    const after = result.outcome?.requeueAfterMs;
    // Delays come from manifests (a rollout deadline, a canary pause): never beyond what a timer holds.
    return after === undefined ? { action: 'done' } : { action: 'requeue', afterMs: clampDelay(after), reason: 'requested' };
  }
  const err = result.error;
  if (err instanceof WaitingError) return { action: 'requeue', afterMs: clampDelay(err.requeueAfterMs), reason: 'waiting' };
  if (err instanceof GantryError && err.policy === 'stalled') return { action: 'terminal' };
  const n = failures + 1;
  return { action: 'backoff', afterMs: backoffDelay(n, random, backoff), failures: n };
}

/** The delay after the n-th failure in a row (n >= 1): base * 2^(n-1), capped, spread by +-jitter. */
export function backoffDelay(n: number, random: () => number = Math.random, backoff: BackoffPolicy = RECONCILE_BACKOFF): number {
  // Capped before the power can overflow to Infinity.
  const exp = Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(Math.max(0, n - 1), 52));
  const spread = 1 + backoff.jitter * (2 * random() - 1);
  return Math.round(Math.min(backoff.capMs, exp * spread));
}

/** For the log line after a failed reconcile: "retry in 400 ms", "stalled, not retried". */
export function describeDecision(d: ReconcileDecision): string {
  switch (d.action) {
    case 'done':
      return 'done';
    case 'requeue':
      return d.reason === 'waiting' ? `waiting, looked at again in ${d.afterMs} ms` : `requeued in ${d.afterMs} ms`;
    case 'backoff':
      return `retry in ${d.afterMs} ms`;
    case 'terminal':
      return 'stalled, not retried';
  }
}
