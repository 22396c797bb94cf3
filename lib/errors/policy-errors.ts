import type { CodeWithPolicy } from './codes.ts';
import { GantryError, registerErrorClass } from './gantry-error.ts';

/**
 * Errors named for what should happen next, like Flux's Stalling/Waiting/Generic errors. Each
 * takes only codes whose catalog policy is its own, so the code's docs and the class never
 * disagree. The reconcile loop (reconciler/controller/reconcile-outcome.ts) switches on them.
 */

/** Needs a user fix (a new commit, a setting): retrying cannot help, so nothing retries it. */
export class StalledError extends GantryError {
  declare readonly code: CodeWithPolicy<'stalled'>;

  constructor(code: CodeWithPolicy<'stalled'>, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
  }

  override get policy(): 'stalled' {
    return 'stalled';
  }
}
registerErrorClass(StalledError, 'StalledError');

/** Not a failure: something is not ready yet; look again after `requeueAfterMs`. */
export class WaitingError extends GantryError {
  declare readonly code: CodeWithPolicy<'waiting'>;

  constructor(code: CodeWithPolicy<'waiting'>, message: string, requeueAfterMs: number, data: Record<string, unknown> = {}) {
    // In data, so the delay survives toJSON/fromJSON.
    super(code, message, { ...data, requeueAfterMs });
  }

  override get policy(): 'waiting' {
    return 'waiting';
  }

  get requeueAfterMs(): number {
    const ms = this.data.requeueAfterMs;
    return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0 ? ms : 0;
  }
}
registerErrorClass(WaitingError, 'WaitingError');

/** Might work next time (a lost race, a network error): retried with jittered exponential backoff. */
export class TransientError extends GantryError {
  declare readonly code: CodeWithPolicy<'transient'>;

  constructor(code: CodeWithPolicy<'transient'>, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
  }

  override get policy(): 'transient' {
    return 'transient';
  }
}
registerErrorClass(TransientError, 'TransientError');
