import { createHash } from 'node:crypto';
import { isAvailable, type ActualInstance } from '../../state/records/instance.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import { revisionByNumber, type Revision, type RolloutState } from '../../state/records/rollout.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * The pure rollout state machine: (desired, remembered rollout, instances, now) -> the revision(s)
 * the planner should converge to, the new rollout state, and events.
 *
 * - Every distinct template (plus restart nonce) Git asks for becomes a numbered revision.
 * - The target is Git's revision, unless a pin (undo, abort, automatic rollback) holds another one;
 *   a pin holds until Git changes the deployment (its generation moves).
 * - A restart rolls what runs: Git's template plus a nonce, or while pinned a new revision of the
 *   pinned template, which the pin moves to (so the failed commit is still not retried).
 * - A rollout completes when every replica runs the target and is available; the target becomes
 *   the stable revision. One that does not move for progressDeadlineSeconds fails; with
 *   `rollback: auto` it returns to the stable revision and pins it, so continuous sync does not
 *   retry the failed commit until a newer one changes the deployment.
 * - Canary: steps move a share of the replicas (setWeight) to the target, and pause for a
 *   duration or until promoted.
 */

export interface RolloutEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface RolloutDecision {
  state: RolloutState;
  target: Revision;
  /** The revision Git asks for, the target or not (a pin can hold another). */
  git: Revision;
  /** Set while a canary splits replicas: the rest run this revision. */
  stable?: Revision;
  /** Replicas on the target while a canary splits them. */
  canaryReplicas?: number;
  /** Paused: leave instances as they are. */
  hold: boolean;
  events: RolloutEvent[];
  requeueAfterMs?: number;
}


export function effectiveTemplateHash(templateHash: string, restartNonce: string | undefined): string {
  if (!restartNonce) return templateHash;
  return createHash('sha256').update(`${templateHash}/${restartNonce}`).digest('hex').slice(0, 10);
}

function describe(r: Revision): string {
  return `revision ${r.revision} (commit ${shortSha(r.commit)})`;
}

function startRollout(s: RolloutState, target: Revision, now: number, events: RolloutEvent[]): void {
  s.target = target.revision;
  s.phase = 'Progressing';
  s.reason = 'NewRevisionRollingOut';
  s.message = `rolling out ${describe(target)}`;
  s.startedAt = now;
  s.lastProgressAt = now;
  s.progressKey = '';
  s.canaryStep = 0;
  s.canaryStepStartedAt = now;
  s.promote = false;
  events.push({ type: 'Normal', reason: 'RolloutStarted', message: s.message });
}

export function advanceRollout(desired: DeploymentRecord, previous: RolloutState | undefined, instances: ActualInstance[], now: number): RolloutDecision {
  const events: RolloutEvent[] = [];
  const s: RolloutState = previous
    ? structuredClone(previous)
    : { revisions: [], target: 0, phase: 'Progressing', reason: '', message: '', startedAt: now, lastProgressAt: now, progressKey: '' };
  const gen = desired.generation;

  // A pin holds until Git changes the deployment; a restart applies to the generation it was made for.
  if (s.pin && s.pin.generation !== gen) {
    events.push({ type: 'Normal', reason: 'PinReleased', message: `Git changed the deployment: following Git again (was pinned to revision ${s.pin.revision} by ${s.pin.reason})` });
    delete s.pin;
  }
  const nonce = s.restartGeneration === gen ? s.restartNonce : undefined;
  const gitRev = revisionOf(s, effectiveTemplateHash(desired.templateHash, nonce), { template: desired.template, commit: desired.commit, message: desired.commitMessage ?? '' }, now);
  // A restart while pinned rolls the pinned revision: a new revision of its template, pinned in its place.
  const pinned = revisionByNumber(s, s.pin?.revision);
  if (s.pin?.restartNonce) {
    if (pinned) s.pin.revision = revisionOf(s, effectiveTemplateHash(pinned.templateHash, s.pin.restartNonce), pinned, now).revision;
    delete s.pin.restartNonce;
  }
  // spec.paused (Kubernetes): a new template from Git waits; replicas still follow (scaling is not a rollout).
  const current = revisionByNumber(s, s.target);
  const pausedByGit = !!desired.paused && current !== undefined && !s.pin;
  const target = revisionByNumber(s, s.pin?.revision) ?? (pausedByGit ? current : gitRev);
  if (s.target !== target.revision) startRollout(s, target, now, events);

  // Progress: any movement in the counts of updated, available and old instances.
  const minReadyMs = desired.minReadySeconds * 1000;
  const updated = instances.filter((i) => i.record.templateHash === target.templateHash);
  const updatedAvailable = updated.filter((i) => isAvailable(i, now, minReadyMs)).length;
  const others = instances.length - updated.length;
  const key = `${updated.length}/${updatedAvailable}/${others}`;
  if (key !== s.progressKey) {
    s.progressKey = key;
    s.lastProgressAt = now;
  }
  const complete = updated.length === desired.replicas && updatedAvailable === desired.replicas && others === 0;
  if (complete && s.phase === 'Progressing') {
    s.phase = 'Complete';
    s.stable = target.revision;
    s.reason = s.pin?.reason === 'rollback' ? 'RolledBack' : 'NewRevisionAvailable';
    s.message = s.pin ? `${describe(target)} is available (pinned by ${s.pin.reason})` : `${describe(target)} is available`;
    events.push({ type: 'Normal', reason: 'RolloutComplete', message: s.message });
  }

  let requeueAfterMs: number | undefined;
  let stable: Revision | undefined;
  let canaryReplicas: number | undefined;
  const stableRev = revisionByNumber(s, s.stable);
  if (s.phase === 'Progressing' && desired.strategy.type === 'Canary' && stableRev && stableRev.revision !== target.revision && !s.pin) {
    const steps = desired.strategy.steps ?? [];
    let i = s.canaryStep ?? 0;
    let weight = 0;
    for (let j = 0; j < Math.min(i, steps.length); j++) {
      const st = steps[j]!;
      if ('setWeight' in st) weight = st.setWeight;
    }
    while (i < steps.length) {
      const step = steps[i]!;
      if ('setWeight' in step) {
        weight = step.setWeight;
        const want = Math.ceil((desired.replicas * weight) / 100);
        const ready = updated.filter((u) => isAvailable(u, now, minReadyMs)).length;
        if (ready < want) break;
      } else {
        const since = s.canaryStepStartedAt ?? now;
        const duration = step.pause.durationMs;
        // Waiting at a pause is not a lack of progress.
        s.lastProgressAt = now;
        if (s.promote) {
          s.promote = false;
        } else if (duration === undefined) {
          s.reason = 'CanaryPaused';
          s.message = `canary paused at step ${i + 1}/${steps.length} (weight ${weight}%): gantry rollout promote to go on`;
          break;
        } else if (now - since < duration) {
          s.reason = 'CanaryPaused';
          s.message = `canary paused at step ${i + 1}/${steps.length} (weight ${weight}%) for ${Math.ceil((duration - (now - since)) / 1000)}s more`;
          requeueAfterMs = duration - (now - since);
          break;
        }
      }
      i++;
      s.canaryStepStartedAt = now;
      events.push({ type: 'Normal', reason: 'CanaryStep', message: `canary step ${i}/${steps.length} done (weight ${weight}%)` });
    }
    s.canaryStep = i;
    if (i < steps.length) {
      stable = stableRev;
      canaryReplicas = Math.ceil((desired.replicas * weight) / 100);
    }
  }

  if (pausedByGit && gitRev.revision !== target.revision) {
    s.reason = 'DeploymentPaused';
    s.message = `paused (spec.paused): ${describe(gitRev)} from Git waits until spec.paused is false`;
  }
  // A paused rollout makes no progress by design: no deadline (as Kubernetes).
  if (s.phase === 'Progressing' && !s.paused && !desired.paused && now - s.lastProgressAt > desired.progressDeadlineSeconds * 1000) {
    s.phase = 'Failed';
    s.reason = 'ProgressDeadlineExceeded';
    s.message = `${describe(target)} made no progress for ${desired.progressDeadlineSeconds}s`;
    events.push({ type: 'Warning', reason: 'ProgressDeadlineExceeded', message: s.message });
    if (desired.rollback === 'auto' && stableRev && stableRev.revision !== target.revision) {
      s.pin = { revision: stableRev.revision, generation: gen, reason: 'rollback', failedRevision: target.revision, failedCommit: target.commit };
      events.push({ type: 'Warning', reason: 'RolledBack', message: `commit ${shortSha(target.commit)} (revision ${target.revision}) failed: ProgressDeadlineExceeded; returning to ${describe(stableRev)}` });
      startRollout(s, stableRev, now, events);
      s.reason = 'RollingBack';
      s.message = `commit ${shortSha(target.commit)} failed (ProgressDeadlineExceeded): returning to ${describe(stableRev)}`;
      return { state: trim(s, desired.revisionHistoryLimit), target: stableRev, git: gitRev, hold: false, events, requeueAfterMs: 1000 };
    }
  }
  if (s.phase === 'Progressing') {
    const left = desired.progressDeadlineSeconds * 1000 - (now - s.lastProgressAt);
    requeueAfterMs = Math.max(50, Math.min(requeueAfterMs ?? Infinity, left + 10));
  }
  return { state: trim(s, desired.revisionHistoryLimit), target: revisionByNumber(s, s.target)!, git: gitRev, stable, canaryReplicas, hold: !!s.paused, events, requeueAfterMs };
}

/** The revision with this (effective) template hash, added as the next number if it is new. */
function revisionOf(s: RolloutState, templateHash: string, from: Pick<Revision, 'template' | 'commit' | 'message'>, now: number): Revision {
  const known = s.revisions.find((r) => r.templateHash === templateHash);
  if (known) return known;
  const rev: Revision = {
    revision: Math.max(0, ...s.revisions.map((r) => r.revision)) + 1,
    templateHash,
    template: from.template,
    commit: from.commit,
    message: from.message,
    createdAt: now,
  };
  s.revisions.push(rev);
  return rev;
}

/** Keeps the target, the stable and the pinned revisions, plus the newest `limit` others. */
function trim(s: RolloutState, limit: number): RolloutState {
  const keep = new Set([s.target, s.stable, s.pin?.revision, s.pin?.failedRevision].filter((n): n is number => n !== undefined));
  const others = s.revisions.filter((r) => !keep.has(r.revision)).sort((a, b) => b.revision - a.revision).slice(0, limit);
  const kept = new Set([...keep, ...others.map((r) => r.revision)]);
  s.revisions = s.revisions.filter((r) => kept.has(r.revision)).sort((a, b) => a.revision - b.revision);
  return s;
}
