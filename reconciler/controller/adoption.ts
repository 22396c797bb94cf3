import type { InstanceRecord } from '../../state/records/instance.ts';
import type { InstanceClaim } from '../../state/recovery-store.ts';

/**
 * Adoption after Redis lost its data (pure). Agents keep running what they ran and claim it
 * (`node-claims:<node>`); an instance the deployment controller is about to create whose id a node
 * claims with the same revision is created already bound to that node, with the uid the agent
 * runs, instead of pending: the agent's checks (record.node is this node, record.uid its uid) then
 * hold, so nothing is restarted. A claim of another revision, or of nothing we want, is ignored.
 */
export function matchClaims(records: InstanceRecord[], claims: ReadonlyMap<string, InstanceClaim>, now: number): { adopt: InstanceRecord[]; create: InstanceRecord[] } {
  const adopt: InstanceRecord[] = [];
  const create: InstanceRecord[] = [];
  for (const r of records) {
    const c = claims.get(r.id);
    const same = !!c && c.record.templateHash === r.templateHash && c.record.namespace === r.namespace && c.record.deployment === r.deployment;
    if (!c || !same) {
      create.push(r);
      continue;
    }
    const createdAt = typeof c.record.createdAt === 'number' ? c.record.createdAt : r.createdAt;
    adopt.push({ ...r, uid: c.record.uid, node: c.node, boundAt: now, createdAt });
  }
  return { adopt, create };
}

/** "a on n1, b on n2, ... and 3 more": the adopted instances, for an event. */
export function describeAdopted(records: InstanceRecord[], max = 10): string {
  const shown = records.slice(0, max).map((r) => `${r.id} on ${r.node}`).join(', ');
  return records.length > max ? `${shown} and ${records.length - max} more` : shown;
}
