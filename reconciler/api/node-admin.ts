import type { NodeRecord } from '../../state/records/node.ts';
import type { Store } from '../../state/store.ts';

/**
 * Cordon and uncordon: a cordoned node takes no new placements (the bind script refuses it too);
 * what runs there keeps running. The flag lives in the node's record, which its agent writes on
 * registration while keeping the flag, so the update is a compare-and-set against the agent.
 */
export async function setCordoned(store: Store, name: string, cordoned: boolean): Promise<NodeRecord | undefined> {
  const updated = await store.updateNodeRecord(name, (record) => {
    const next: NodeRecord = { ...record };
    if (cordoned) next.cordoned = true;
    else delete next.cordoned;
    return next;
  });
  if (!updated) return undefined;
  if (updated.changed) {
    await store.events.record({
      type: 'Normal',
      reason: cordoned ? 'NodeCordoned' : 'NodeUncordoned',
      object: `node/${name}`,
      message: cordoned ? `node ${name} cordoned: no new placements` : `node ${name} uncordoned`,
    });
    // Pending instances may fit there now.
    if (!cordoned) await store.announceNodeChange(name);
  }
  return updated.record;
}
