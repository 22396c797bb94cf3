import { isReady, type ActualInstance } from '../../state/records/instance.ts';
import { resolveIntOrPercent } from '../plan/compute-plan.ts';
import type { Condition, DeploymentStatus, SourceStatus } from '../../state/records/status.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import type { RolloutDecision } from '../rollout/advance-rollout.ts';
import { revisionByNumber, type RolloutPin } from '../../state/records/rollout.ts';
import { MAIN_OWNER, ownerOf } from '../../state/records/deployment.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * Pure computation of a deployment's status from its desired record and its instances.
 *
 * Conditions follow Kubernetes' Deployment:
 * - Available: True when at least replicas - maxUnavailable instances are ready.
 * - Progressing: True while converging (ReplicaSetUpdating) or once done (NewReplicaSetAvailable);
 *   False with reason InstancesPending when replicas cannot be placed.
 * - SourceRejected (negative polarity, present only when True): the newest commit was rejected, so
 *   this deployment still runs what the last good commit said.
 * - Pinned (negative polarity, present only when True): a rollback, abort or undo holds a revision
 *   other than Git's; the message says which runs, and which revision and commit failed.
 *
 * Status describes what runs: the rollout's target revision (Git's, or the one a pin holds), not
 * necessarily the template Git asks for. `updated` counts the target's instances.
 */

export const CONDITION_AVAILABLE = 'Available';
export const CONDITION_PROGRESSING = 'Progressing';
export const CONDITION_SOURCE_REJECTED = 'SourceRejected';
/** Negative polarity: a rollback, abort or undo holds a revision other than Git's. */
export const CONDITION_PINNED = 'Pinned';

export function computeDeploymentStatus(
  desired: DeploymentRecord,
  instances: ActualInstance[],
  source: SourceStatus | undefined,
  previous: DeploymentStatus | undefined,
  now: number,
  rollout?: RolloutDecision,
): DeploymentStatus {
  const target = rollout?.target;
  const targetHash = target?.templateHash ?? desired.templateHash;
  // Git's revision reports Git's newest commit; a pinned one the commit it came from.
  const targetCommit = target && target.revision !== rollout.git.revision ? target.commit : desired.commit;
  const targetName = target ? `revision ${target.revision} (${targetHash})` : `revision ${targetHash}`;
  const updated = instances.filter((i) => i.record.templateHash === targetHash);
  const ready = instances.filter(isReady);
  const updatedReady = updated.filter(isReady);
  const pending = instances.filter((i) => !i.record.node);
  const maxUnavailable = resolveIntOrPercent(desired.strategy.maxUnavailable, desired.replicas, false);

  const conditions: Condition[] = [];
  const availableOk = ready.length >= desired.replicas - maxUnavailable;
  conditions.push({
    type: CONDITION_AVAILABLE,
    status: availableOk ? 'True' : 'False',
    reason: availableOk ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
    message: `${ready.length}/${desired.replicas} replicas ready (maxUnavailable ${maxUnavailable})`,
    lastTransitionTime: now,
  });

  const done = updatedReady.length === desired.replicas && instances.length === desired.replicas;
  const stuck = pending.find((i) => i.record.pendingReason);
  const r = rollout?.state;
  conditions.push(
    r?.phase === 'Failed'
      ? { type: CONDITION_PROGRESSING, status: 'False', reason: r.reason, message: r.message, lastTransitionTime: now }
      : r?.reason === 'RollingBack' || r?.reason === 'CanaryPaused'
        ? { type: CONDITION_PROGRESSING, status: 'True', reason: r.reason, message: r.message, lastTransitionTime: now }
        : done
      ? { type: CONDITION_PROGRESSING, status: 'True', reason: 'NewReplicaSetAvailable', message: `${targetName} of commit ${shortSha(targetCommit)} is available`, lastTransitionTime: now }
      : stuck
        ? { type: CONDITION_PROGRESSING, status: 'False', reason: 'InstancesPending', message: `${pending.length} instance(s) pending: ${stuck.record.pendingReason}`, lastTransitionTime: now }
        : { type: CONDITION_PROGRESSING, status: 'True', reason: 'ReplicaSetUpdating', message: `${updatedReady.length}/${desired.replicas} instances of ${targetName} ready, ${instances.length - updated.length} old instance(s) left`, lastTransitionTime: now },
  );

  if (r?.pin && rollout) {
    conditions.push({ type: CONDITION_PINNED, status: 'True', reason: PIN_REASONS[r.pin.reason], message: pinMessage(rollout, desired), lastTransitionTime: now });
  }

  // Only the tracked branch's records follow its commits; a preview's source is its pull request.
  if (source?.rejectedCommit && ownerOf(desired) === MAIN_OWNER) {
    conditions.push({
      type: CONDITION_SOURCE_REJECTED,
      status: 'True',
      reason: 'InvalidManifests',
      message: `commit ${shortSha(source.rejectedCommit)} rejected, still running ${shortSha(desired.commit)}: ${source.lastError ?? ''}`,
      lastTransitionTime: now,
    });
  }

  // Keep transition times stable while a condition's status does not change.
  for (const c of conditions) {
    const before = previous?.conditions.find((p) => p.type === c.type);
    if (before && before.status === c.status) c.lastTransitionTime = before.lastTransitionTime;
  }

  return {
    namespace: desired.namespace,
    name: desired.name,
    replicas: instances.length,
    desiredReplicas: desired.replicas,
    updatedReplicas: updated.length,
    readyReplicas: ready.length,
    availableReplicas: ready.length,
    pendingReplicas: pending.length,
    observedCommit: desired.commit,
    observedGeneration: desired.generation,
    templateHash: rollout?.target.templateHash ?? desired.templateHash,
    ...(r
      ? {
          rollout: {
            revision: r.target,
            stableRevision: r.stable ?? null,
            phase: r.phase,
            reason: r.reason,
            message: r.message,
            commit: targetCommit,
            paused: !!r.paused || !!desired.paused,
            pinned: r.pin ? { revision: r.pin.revision, reason: r.pin.reason, failedCommit: r.pin.failedCommit ?? null } : null,
            canaryStep: rollout?.canaryReplicas !== undefined ? (r.canaryStep ?? 0) : null,
            canaryReplicas: rollout?.canaryReplicas ?? null,
          },
        }
      : {}),
    conditions,
    updatedAt: now,
  };
}

const PIN_REASONS: Record<RolloutPin['reason'], string> = { rollback: 'RolledBack', abort: 'Aborted', undo: 'Undone' };

/** Why a pin holds: which revision runs, which one failed (or Git asks for), and until when. */
function pinMessage(rollout: RolloutDecision, desired: DeploymentRecord): string {
  const pin = rollout.state.pin!;
  const held = revisionByNumber(rollout.state, pin.revision);
  const running = `revision ${pin.revision}${held ? ` (commit ${shortSha(held.commit)})` : ''}`;
  const failed = pin.failedRevision !== undefined ? `revision ${pin.failedRevision}${pin.failedCommit ? ` (commit ${shortSha(pin.failedCommit)})` : ''}` : undefined;
  const why =
    pin.reason === 'rollback'
      ? `${failed ?? 'the new revision'} failed (ProgressDeadlineExceeded) and was rolled back`
      : pin.reason === 'abort'
        ? `the rollout of ${failed ?? 'the new revision'} was aborted`
        : `gantry rollout undo; Git asks for revision ${rollout.git.revision} (commit ${shortSha(desired.commit)})`;
  return `running ${running}: ${why}; out of sync with Git until the next commit that changes this deployment, or gantry rollout resume`;
}
