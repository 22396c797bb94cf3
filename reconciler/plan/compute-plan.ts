import { instanceId, isAvailable, isReady, type ActualInstance } from '../../state/records/instance.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';

/**
 * The pure planner: (desired deployment, actual instances) -> actions.
 *
 * Instances of a deployment are identified by `<ns>.<name>-<templateHash>-<ordinal>`, so the plan
 * is deterministic: planning twice against the same state gives the same ids, and planning against
 * the state a plan produced gives no actions at all (which is what makes the reconcile idempotent).
 *
 * Replacement after a template change follows the strategy. RollingUpdate is paced by readiness
 * within maxSurge/maxUnavailable, as Kubernetes does. Recreate deletes all old instances first and
 * creates new ones once none is left.
 */

export type PlanAction =
  | { type: 'create'; id: string; ordinal: number; templateHash: string }
  | { type: 'delete'; id: string; reason: DeleteReason };

export type DeleteReason = 'pruned' | 'scaled-down' | 'replaced' | 'superseded';

/**
 * A canary split: `canaryReplicas` instances of the target revision and the rest of the stable
 * one; anything else goes. Stable instances beyond their share go only once enough canary
 * instances are ready, so the split never costs availability.
 */
export function computeSplitPlan(desired: DeploymentRecord, targetHash: string, stableHash: string, canaryReplicas: number, actual: ActualInstance[]): PlanAction[] {
  const actions: PlanAction[] = [];
  const byOrdinal = (a: ActualInstance, b: ActualInstance) => a.record.ordinal - b.record.ordinal || cmp(a.record.id, b.record.id);
  const stableWant = desired.replicas - canaryReplicas;
  const canary = actual.filter((i) => i.record.templateHash === targetHash).sort(byOrdinal);
  const stable = actual.filter((i) => i.record.templateHash === stableHash).sort(byOrdinal);
  for (const i of actual) if (i.record.templateHash !== targetHash && i.record.templateHash !== stableHash) actions.push({ type: 'delete', id: i.record.id, reason: 'superseded' });
  const ensure = (hash: string, have: ActualInstance[], want: number) => {
    const ords = new Set(have.map((i) => i.record.ordinal));
    for (let o = 0; o < want; o++) if (!ords.has(o)) actions.push({ type: 'create', id: instanceId(desired.namespace, desired.name, hash, o), ordinal: o, templateHash: hash });
  };
  ensure(targetHash, canary, canaryReplicas);
  ensure(stableHash, stable, stableWant);
  for (const i of canary) if (i.record.ordinal >= canaryReplicas) actions.push({ type: 'delete', id: i.record.id, reason: 'scaled-down' });
  const canaryReady = canary.filter((i) => i.record.ordinal < canaryReplicas && isReady(i)).length;
  let removable = Math.max(0, stable.length - Math.max(stableWant, desired.replicas - canaryReady));
  for (const i of [...stable].reverse()) {
    if (i.record.ordinal < stableWant) continue;
    if (!isReady(i)) actions.push({ type: 'delete', id: i.record.id, reason: 'superseded' });
    else if (removable > 0) {
      removable--;
      actions.push({ type: 'delete', id: i.record.id, reason: 'replaced' });
    }
  }
  return actions;
}

export function computePlan(desired: DeploymentRecord | undefined, actual: ActualInstance[], opts: { now?: number; minReadyMs?: number } = {}): PlanAction[] {
  const actions: PlanAction[] = [];
  const byId = (a: ActualInstance, b: ActualInstance) => a.record.ordinal - b.record.ordinal || cmp(a.record.id, b.record.id);

  if (!desired) {
    for (const inst of [...actual].sort(byId)) actions.push({ type: 'delete', id: inst.record.id, reason: 'pruned' });
    return actions;
  }

  const hash = desired.templateHash;
  const current = actual.filter((i) => i.record.templateHash === hash);
  const old = actual.filter((i) => i.record.templateHash !== hash).sort(byId);
  const have = new Map(current.map((i) => [i.record.ordinal, i]));

  // Instances of the current template beyond the replica count go first.
  for (const inst of [...current].sort(byId)) {
    if (inst.record.ordinal >= desired.replicas) actions.push({ type: 'delete', id: inst.record.id, reason: 'scaled-down' });
  }

  if (desired.strategy.type === 'Recreate' && old.length > 0) {
    for (const inst of old) actions.push({ type: 'delete', id: inst.record.id, reason: 'replaced' });
    return actions;
  }

  const missing: number[] = [];
  for (let ordinal = 0; ordinal < desired.replicas; ordinal++) if (!have.has(ordinal)) missing.push(ordinal);
  const create = (ordinal: number) => actions.push({ type: 'create', id: instanceId(desired.namespace, desired.name, hash, ordinal), ordinal, templateHash: hash });

  if (desired.strategy.type === 'Recreate' || old.length === 0) {
    // Nothing to replace (first rollout, scaling, or Recreate once the old ones are gone).
    missing.forEach(create);
    return actions;
  }

  // RollingUpdate, paced as Kubernetes does: never more than replicas + maxSurge instances, never
  // fewer than replicas - maxUnavailable available ones (ready for minReadySeconds).
  const now = opts.now ?? 0;
  const minReadyMs = opts.minReadyMs ?? 0;
  const available = (i: ActualInstance) => isAvailable(i, now, minReadyMs);
  const { maxSurge, maxUnavailable } = rollingBounds(desired);
  const kept = current.filter((i) => i.record.ordinal < desired.replicas);
  const total = kept.length + old.length;
  const room = Math.max(0, desired.replicas + maxSurge - total);
  missing.slice(0, room).forEach(create);

  // Old instances that are not ready serve nothing: they go at once. Ready ones go while enough
  // ready instances remain.
  let readyTotal = kept.filter(available).length + old.filter(available).length;
  const minReady = desired.replicas - maxUnavailable;
  for (const inst of [...old].sort((a, b) => Number(available(a)) - Number(available(b)) || byId(a, b))) {
    if (!available(inst)) {
      actions.push({ type: 'delete', id: inst.record.id, reason: 'superseded' });
    } else if (readyTotal - 1 >= minReady) {
      readyTotal--;
      actions.push({ type: 'delete', id: inst.record.id, reason: 'replaced' });
    }
  }
  return actions;
}

/** An int-or-percent of `total`; Kubernetes rounds surge up and unavailable down. */
export function resolveIntOrPercent(value: number | string, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const exact = (Number.parseInt(value, 10) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** maxSurge and maxUnavailable as counts; both 0 would never progress, so surge becomes 1. */
export function rollingBounds(desired: DeploymentRecord): { maxSurge: number; maxUnavailable: number } {
  const maxSurge = resolveIntOrPercent(desired.strategy.maxSurge, desired.replicas, true);
  const maxUnavailable = resolveIntOrPercent(desired.strategy.maxUnavailable, desired.replicas, false);
  return maxSurge === 0 && maxUnavailable === 0 ? { maxSurge: 1, maxUnavailable: 0 } : { maxSurge, maxUnavailable };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
