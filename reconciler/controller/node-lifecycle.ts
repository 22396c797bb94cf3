import { objectKey } from '../../state/keys.ts';
import type { Store } from '../../state/store.ts';
import type { NewEvent } from '../../state/events.ts';
import { isNodeReady, type NodeState } from '../../state/records/node.ts';

/**
 * Node lifecycle, as Kubernetes' node lifecycle controller does it: a node whose agent has not
 * heartbeated for `graceMs` is NotReady (the scheduler stops placing there); after `evictionMs`
 * more, its instances are evicted: their records are deleted (releasing the node's resources), so
 * the deployment controller recreates them (same ids, new uids) and the scheduler places them on
 * nodes that are ready. An agent that comes back finds its instances bound elsewhere, or gone, and
 * stops its stale copies.
 */

export interface LifecycleTimings {
  graceMs: number;
  evictionMs: number;
}

/** Pure: the state a node should be in, from its last heartbeat. */
export function nodeState(lastHeartbeat: number, now: number, t: LifecycleTimings): NodeState {
  if (isNodeReady(lastHeartbeat, now, t.graceMs)) return 'Ready';
  return isNodeReady(lastHeartbeat, now, t.graceMs + t.evictionMs) ? 'NotReady' : 'Evicted';
}

export interface NodeLifecycleDeps {
  store: Store;
  timings: LifecycleTimings;
  /** Enqueue a deployment's reconcile. */
  enqueue: (key: string) => void;
  log?: (line: string) => void;
}

/** One pass over all nodes; run it every second or so. Idempotent. */
export async function checkNodes(deps: NodeLifecycleDeps, at?: number): Promise<void> {
  const { store, timings } = deps;
  // Heartbeats are on Redis's clock; so is "now" (re-measured each pass).
  const now = at ?? (await store.clock.sync());
  const [nodes, stored] = await Promise.all([store.readNodes(), store.readNodeLifecycles()]);
  for (const n of nodes) {
    const name = n.record.name;
    const previous = stored[name];
    const state = nodeState(n.heartbeatAt, now, timings);
    if (state === 'Evicted') await evictInstances(deps, name, now - n.heartbeatAt);
    if (previous?.state === state) continue;
    await store.writeNodeLifecycle(name, { state, since: now, lastHeartbeat: n.heartbeatAt });
    const silentS = Math.round((now - n.heartbeatAt) / 1000);
    if (state === 'Ready') {
      if (previous) await store.events.record({ type: 'Normal', reason: 'NodeReady', object: `node/${name}`, message: `node ${name} is ready again` });
    } else if (state === 'NotReady') {
      await store.events.record({ type: 'Warning', reason: 'NodeNotReady', object: `node/${name}`, message: `no heartbeat from node ${name} for ${silentS}s: no new placements there` });
      deps.log?.(`node ${name} is NotReady (no heartbeat for ${silentS}s)`);
    } else {
      await store.events.record({ type: 'Warning', reason: 'NodeLost', object: `node/${name}`, message: `no heartbeat from node ${name} for ${silentS}s: its instances are rescheduled` });
      deps.log?.(`node ${name} is lost (no heartbeat for ${silentS}s): evicting its instances`);
    }
  }
}

async function evictInstances(deps: NodeLifecycleDeps, node: string, silentMs: number): Promise<void> {
  const { store } = deps;
  const ids = await store.nodeInstanceIds(node);
  const evicted: NewEvent[] = [];
  for (const inst of await store.readInstances(ids)) {
    if (inst.record.node !== node) continue;
    if (!(await store.deleteInstance(inst))) continue; // changed meanwhile: the next pass sees it
    const key = objectKey(inst.record.namespace, inst.record.deployment);
    evicted.push({
      type: 'Warning',
      reason: 'Evicted',
      object: `deployment/${key}`,
      message: `instance ${inst.record.id} evicted from node ${node} (no heartbeat for ${Math.round(silentMs / 1000)}s): rescheduling`,
    });
    deps.enqueue(key);
  }
  await store.events.recordAll(evicted);
}
