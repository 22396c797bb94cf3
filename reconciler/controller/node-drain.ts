import { isReady } from '../../state/records/instance.ts';
import { resolveIntOrPercent } from '../plan/compute-plan.ts';
import { objectKey } from '../../state/keys.ts';
import type { Store, StoredInstance } from '../../state/store.ts';
import { setCordoned } from '../api/node-admin.ts';

/**
 * Drain: move every instance off a node without taking any deployment below
 * replicas - maxUnavailable ready instances (what a PodDisruptionBudget guards in Kubernetes).
 * Each pass evicts what the budget allows now; evicted instances are recreated on other nodes by
 * the deployment controller (the node is cordoned), and once they are ready the next pass evicts
 * more. A deployment whose maxUnavailable is 0 blocks the drain, with a reason, as Kubernetes does.
 */

export async function startDrain(store: Store, node: string): Promise<boolean> {
  if (!(await setCordoned(store, node, true))) return false;
  if (await store.startDraining(node)) {
    await store.events.record({ type: 'Normal', reason: 'NodeDraining', object: `node/${node}`, message: `draining node ${node}` });
  }
  return true;
}

/** Pure: how many more instances of a deployment may become unavailable now. */
export function disruptionsAllowed(replicas: number, maxUnavailable: number | string, readyNow: number): number {
  return readyNow - (replicas - resolveIntOrPercent(maxUnavailable, replicas, false));
}

export interface DrainProgress {
  node: string;
  remaining: number;
  evicted: number;
  blocked: string[];
}

/** One drain pass over every draining node; run it every second or so. Idempotent. */
export async function drainNodes(store: Store, enqueue: (key: string) => void): Promise<DrainProgress[]> {
  const progress: DrainProgress[] = [];
  for (const node of await store.drainingNodes()) {
    const onNode = (await store.readInstances(await store.nodeInstanceIds(node))).filter((i) => i.record.node === node);
    if (onNode.length === 0) {
      await store.stopDraining(node);
      await store.events.record({ type: 'Normal', reason: 'NodeDrained', object: `node/${node}`, message: `node ${node} drained: no instances left` });
      progress.push({ node, remaining: 0, evicted: 0, blocked: [] });
      continue;
    }
    const byDeployment = new Map<string, StoredInstance[]>();
    for (const i of onNode) {
      const key = objectKey(i.record.namespace, i.record.deployment);
      byDeployment.set(key, [...(byDeployment.get(key) ?? []), i]);
    }
    let evicted = 0;
    const blocked: string[] = [];
    for (const [key, insts] of byDeployment) {
      const [ns, name] = [insts[0]!.record.namespace, insts[0]!.record.deployment];
      const [desired, all] = await Promise.all([store.readDeployment(ns, name), store.readDeploymentInstances(ns, name)]);
      // Instances that serve nothing can go at once; ready ones only within the budget.
      let budget = desired ? disruptionsAllowed(desired.replicas, desired.strategy.maxUnavailable, all.filter(isReady).length) : Infinity;
      for (const inst of [...insts].sort((a, b) => Number(isReady(a)) - Number(isReady(b)))) {
        if (isReady(inst)) {
          if (budget <= 0) {
            blocked.push(`${key}: ${desired && resolveIntOrPercent(desired.strategy.maxUnavailable, desired.replicas, false) === 0 ? 'maxUnavailable is 0' : 'waiting for replacements to be ready'}`);
            break;
          }
          budget--;
        }
        if (!(await store.deleteInstance(inst))) continue;
        evicted++;
        await store.events.record({ type: 'Normal', reason: 'Evicted', object: `deployment/${key}`, message: `instance ${inst.record.id} evicted from node ${node} (drain): rescheduling` });
        enqueue(key);
      }
    }
    progress.push({ node, remaining: onNode.length - evicted, evicted, blocked });
  }
  return progress;
}
