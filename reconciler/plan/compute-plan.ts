import type { InstanceRecord, InstanceStatus } from '../model.ts';
import type { DeploymentRecord } from '../state/records.ts';

/**
 * The pure planner: (desired deployment, actual instances) -> actions.
 *
 * Instances of a deployment are identified by `<ns>.<name>-<templateHash>-<ordinal>`, so the plan
 * is deterministic: planning twice against the same state gives the same ids, and planning against
 * the state a plan produced gives no actions at all (which is what makes the reconcile idempotent).
 *
 * Replacement after a template change: new instances are created for every ordinal, and old ones
 * are stopped as new ones become ready, never leaving fewer ready old+new than the old ones gave.
 * (The rollout issue replaces this with maxSurge/maxUnavailable pacing.) Recreate stops all old
 * instances first and only then creates new ones.
 */

export interface ActualInstance {
  record: InstanceRecord;
  status?: InstanceStatus;
}

export type PlanAction =
  | { type: 'create'; id: string; ordinal: number; templateHash: string }
  | { type: 'delete'; id: string; reason: DeleteReason };

export type DeleteReason = 'pruned' | 'scaled-down' | 'replaced' | 'superseded';

export function instanceId(namespace: string, name: string, templateHash: string, ordinal: number): string {
  return `${namespace}.${name}-${templateHash}-${ordinal}`;
}

/** `<ns>.<name>` of an instance id: the part shared by all revisions of one deployment. */
export function instanceGroup(id: string): string {
  const last = id.lastIndexOf('-');
  const cut = last > 0 ? id.lastIndexOf('-', last - 1) : -1;
  return cut > 0 ? id.slice(0, cut) : id;
}

/** Ready = running on its node as the record asks (same uid), as reported by that node's agent. */
export function isReady(inst: ActualInstance): boolean {
  const s = inst.status;
  return !!s && s.phase === 'Running' && s.uid === inst.record.uid && s.node === inst.record.node;
}

export function computePlan(desired: DeploymentRecord | undefined, actual: ActualInstance[]): PlanAction[] {
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

  for (let ordinal = 0; ordinal < desired.replicas; ordinal++) {
    if (!have.has(ordinal)) actions.push({ type: 'create', id: instanceId(desired.namespace, desired.name, hash, ordinal), ordinal, templateHash: hash });
  }

  // Old instances: keep as many ready ones as are still needed to make up the replica count with
  // the ready new ones; ones that are not ready serve nothing and go at once.
  const readyNew = current.filter((i) => i.record.ordinal < desired.replicas && isReady(i)).length;
  let keep = Math.max(0, desired.replicas - readyNew);
  for (const inst of old) {
    if (keep > 0 && isReady(inst)) {
      keep--;
      continue;
    }
    actions.push({ type: 'delete', id: inst.record.id, reason: isReady(inst) ? 'replaced' : 'superseded' });
  }
  return actions;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
