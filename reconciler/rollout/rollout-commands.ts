import { randomBytes } from 'node:crypto';
import type { Store } from '../../state/store.ts';
import { revisionByNumber, type RolloutState } from '../../state/records/rollout.ts';

/**
 * What `gantry rollout pause|resume|promote|abort|restart|undo` do to a deployment's rollout
 * state. Each is a compare-and-set on the state the reconcile loop also writes, so neither loses
 * the other's change; the caller then enqueues the deployment, whose reconcile acts on it.
 */

export type RolloutAction = 'pause' | 'resume' | 'promote' | 'abort' | 'restart' | 'undo';
export const ROLLOUT_ACTIONS: RolloutAction[] = ['pause', 'resume', 'promote', 'abort', 'restart', 'undo'];

export class RolloutCommandError extends Error {
  constructor(readonly statusCode: number, message: string, readonly code: string) {
    super(message);
  }
}

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
      if (next.phase !== 'Progressing') throw new RolloutCommandError(409, `nothing to promote: the rollout is ${next.phase}`, 'NOT_PROGRESSING');
      next.promote = true;
      return next;
    case 'abort': {
      if (next.phase !== 'Progressing') throw new RolloutCommandError(409, `nothing to abort: the rollout is ${next.phase}`, 'NOT_PROGRESSING');
      if (next.stable === undefined || next.stable === next.target) throw new RolloutCommandError(409, 'no stable revision to return to', 'NO_STABLE_REVISION');
      const failed = revisionByNumber(next, next.target);
      next.pin = { revision: next.stable, generation, reason: 'abort', failedRevision: next.target, ...(failed ? { failedCommit: failed.commit } : {}) };
      return next;
    }
    case 'restart':
      next.restartNonce = opts.nonce ?? randomBytes(4).toString('hex');
      next.restartGeneration = generation;
      return next;
    case 'undo': {
      const to = opts.toRevision ?? previousRevision(next);
      if (to === undefined || !revisionByNumber(next, to)) {
        throw new RolloutCommandError(opts.toRevision === undefined ? 409 : 404, opts.toRevision === undefined ? 'no earlier revision to return to' : `revision ${opts.toRevision} is not in the history`, 'NO_SUCH_REVISION');
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
  const key = store.keys.rollout(ns, name);
  for (let attempt = 0; attempt < 10; attempt++) {
    const [raw, desired] = await Promise.all([store.redis.get(key), store.readDeployment(ns, name)]);
    if (!desired) throw new RolloutCommandError(404, `deployment ${ns}/${name} not found`, 'NOT_FOUND');
    if (!raw) throw new RolloutCommandError(409, `deployment ${ns}/${name} has no rollout yet`, 'NO_ROLLOUT');
    const next = applyRolloutAction(JSON.parse(raw) as RolloutState, action, desired.generation, opts);
    if ((await store.scripts.compareAndSet(key, raw, JSON.stringify(next))) === 1) return next;
  }
  throw new RolloutCommandError(409, 'the rollout kept changing; try again', 'CONFLICT');
}
