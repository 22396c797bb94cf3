import { randomBytes } from 'node:crypto';
import { GantryError, registerErrorClass } from '../../lib/errors/index.ts';
import type { Store } from '../../state/store.ts';
import { revisionByNumber, type RolloutState } from '../../state/records/rollout.ts';

/**
 * What `gantry rollout pause|resume|promote|abort|restart|undo` do to a deployment's rollout
 * state. Each is a compare-and-set on the state the reconcile loop also writes, so neither loses
 * the other's change; the caller then enqueues the deployment, whose reconcile acts on it.
 */

export type RolloutAction = 'pause' | 'resume' | 'promote' | 'abort' | 'restart' | 'undo';
export const ROLLOUT_ACTIONS: RolloutAction[] = ['pause', 'resume', 'promote', 'abort', 'restart', 'undo'];

export type RolloutCommandErrorCode = 'NOT_FOUND' | 'NO_ROLLOUT' | 'NOT_PROGRESSING' | 'NO_STABLE_REVISION' | 'NO_EARLIER_REVISION' | 'NO_SUCH_REVISION' | 'CONFLICT';

/** Why a rollout command does not apply; its HTTP status is its code's (lib/errors/codes.ts). */
export class RolloutCommandError extends GantryError {
  declare readonly code: RolloutCommandErrorCode;

  constructor(code: RolloutCommandErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
  }
}
registerErrorClass(RolloutCommandError, 'RolloutCommandError');

/** Pure: the state after an action, or an error saying why it does not apply. */
export function applyRolloutAction(s: RolloutState, action: RolloutAction, generation: number, opts: { toRevision?: number; nonce?: string } = {}): RolloutState {
  const next = structuredClone(s);
  switch (action) {
    case 'pause':
      next.paused = true;
      return next;
    case 'resume':
      // Resume also ends an undo or abort pin: Git's revision is the target again.
      next.paused = false;
      delete next.pin;
      return next;
    case 'promote':
      if (next.phase !== 'Progressing') throw new RolloutCommandError('NOT_PROGRESSING', `nothing to promote: the rollout is ${next.phase}`);
      next.promote = true;
      return next;
    case 'abort': {
      if (next.phase !== 'Progressing') throw new RolloutCommandError('NOT_PROGRESSING', `nothing to abort: the rollout is ${next.phase}`);
      if (next.stable === undefined || next.stable === next.target) throw new RolloutCommandError('NO_STABLE_REVISION', 'no stable revision to return to');
      const failed = revisionByNumber(next, next.target);
      next.pin = { revision: next.stable, generation, reason: 'abort', failedRevision: next.target, ...(failed ? { failedCommit: failed.commit } : {}) };
      return next;
    }
    case 'restart': {
      const nonce = opts.nonce ?? randomBytes(4).toString('hex');
      // A restart rolls what runs: while pinned, that is the pinned revision, which Git's nonce
      // would never reach (the pin, not Git's revision, is the target).
      if (next.pin && next.pin.generation === generation) next.pin.restartNonce = nonce;
      else {
        next.restartNonce = nonce;
        next.restartGeneration = generation;
      }
      return next;
    }
    case 'undo': {
      const to = opts.toRevision ?? previousRevision(next);
      if (to === undefined || !revisionByNumber(next, to)) {
        throw opts.toRevision === undefined
          ? new RolloutCommandError('NO_EARLIER_REVISION', 'no earlier revision to return to')
          : new RolloutCommandError('NO_SUCH_REVISION', `revision ${opts.toRevision} is not in the history`, { revision: opts.toRevision });
      }
      next.pin = { revision: to, generation, reason: 'undo' };
      return next;
    }
  }
}

function previousRevision(s: RolloutState): number | undefined {
  const older = s.revisions.filter((r) => r.revision < s.target).map((r) => r.revision);
  return older.length > 0 ? Math.max(...older) : undefined;
}

export async function runRolloutAction(store: Store, ns: string, name: string, action: RolloutAction, opts: { toRevision?: number } = {}): Promise<RolloutState> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const [read, desired] = await Promise.all([store.readRollout(ns, name), store.readDeployment(ns, name)]);
    if (!desired) throw new RolloutCommandError('NOT_FOUND', `deployment ${ns}/${name} not found`);
    if (!read.state) throw new RolloutCommandError('NO_ROLLOUT', `deployment ${ns}/${name} has no rollout yet`);
    const next = applyRolloutAction(read.state, action, desired.generation, opts);
    if (await store.replaceRollout(ns, name, read, next)) return next;
  }
  throw new RolloutCommandError('CONFLICT', 'the rollout kept changing; try again');
}
