/**
 * An operator's delete of one instance (`gantry delete instance ID`, DELETE /api/v1/instances/:id),
 * as `kubectl delete pod` does it: the record goes now (its node's room with it), its agent is told
 * to stop it, with the grace period asked for when one was (kept in Redis for the agent: a job only
 * says "look at this instance"), and the deployment is reconciled, which creates its replacement
 * as the deployment says.
 */
import type { Store } from '../../state/store.ts';
import { objectKey } from '../../state/keys.ts';
import type { Queues } from '../queue/queues.ts';

export interface InstanceDeleteDeps {
  store: Store;
  queues: Queues;
  enqueue: (key: string) => void;
  onCapacityFreed?: () => void;
}

export type DeleteOutcome = { deleted: true; id: string; node?: string; graceSeconds?: number } | { deleted: false };

export async function deleteInstanceOnRequest(deps: InstanceDeleteDeps, id: string, graceSeconds?: number): Promise<DeleteOutcome> {
  const { store, queues } = deps;
  // Compare-and-delete: a record that changed since it was read (bound, updated) is read again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const [inst] = await store.readInstances([id]);
    if (!inst) return { deleted: false };
    const r = inst.record;
    if (graceSeconds !== undefined && r.node) await store.setStopGrace(id, graceSeconds);
    if (!(await store.deleteInstance(inst))) continue;
    if (r.node) {
      await queues.enqueueNode(r.node, 'stop', r.id, r.uid);
      deps.onCapacityFreed?.();
    }
    const grace = graceSeconds !== undefined ? `, grace period ${graceSeconds} s` : '';
    await store.events.record({ type: 'Normal', reason: 'Deleted', object: `deployment/${r.namespace}/${r.deployment}`, message: `instance ${id} deleted on request${grace}` });
    deps.enqueue(objectKey(r.namespace, r.deployment));
    return { deleted: true, id, ...(r.node ? { node: r.node } : {}), ...(graceSeconds !== undefined ? { graceSeconds } : {}) };
  }
  throw new Error(`instance ${id} kept changing while it was being deleted; try again`);
}
