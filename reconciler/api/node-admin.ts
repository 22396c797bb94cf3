import type { NodeRecord } from '../../state/records/node.ts';
import { recordEvent } from '../../state/events.ts';
import type { Store } from '../../state/store.ts';

/**
 * Cordon and uncordon: a cordoned node takes no new placements (the bind script refuses it too);
 * what runs there keeps running. The flag lives in the node's record, which its agent writes on
 * registration while keeping the flag, so the update is a compare-and-set against the agent.
 */
export async function setCordoned(store: Store, name: string, cordoned: boolean): Promise<NodeRecord | undefined> {
  const key = store.keys.node(name);
  for (let attempt = 0; attempt < 10; attempt++) {
    const raw = await store.redis.get(key);
    if (!raw) return undefined;
    const record = JSON.parse(raw) as NodeRecord;
    if (!!record.cordoned === cordoned) return record;
    const next: NodeRecord = { ...record };
    if (cordoned) next.cordoned = true;
    else delete next.cordoned;
    if ((await store.scripts.compareAndSet(key, raw, JSON.stringify(next))) === 1) {
      await recordEvent(store.redis, store.keys, {
        type: 'Normal',
        reason: cordoned ? 'NodeCordoned' : 'NodeUncordoned',
        object: `node/${name}`,
        message: cordoned ? `node ${name} cordoned: no new placements` : `node ${name} uncordoned`,
      });
      // Pending instances may fit there now.
      if (!cordoned) await store.redis.publish(store.keys.changesChannel, `node/${name}`);
      return next;
    }
  }
  throw new Error(`node ${name} kept changing; try again`);
}
