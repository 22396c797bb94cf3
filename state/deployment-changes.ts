import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/**
 * "The actual state of these deployments moved" (`<ns>/<name>` keys): published on
 * channel:changes, which the reconciler reacts to at once, and added to changed-deployments, which
 * its resync reads, so that a message lost while its subscriber reconnected is still acted on
 * within one resync, without the resync looking at every deployment. A reconcile that begins takes
 * its key out of the set (Store.clearReconcileDirty): what is announced after that stays for the next one.
 */
export async function announceChanges(redis: Redis, keys: Keys, deploymentKeys: readonly string[]): Promise<void> {
  if (deploymentKeys.length === 0) return;
  const pipe = redis.pipeline();
  pipe.sadd(keys.changedDeployments, ...deploymentKeys);
  for (const key of deploymentKeys) pipe.publish(keys.changesChannel, key);
  const failed = ((await pipe.exec()) ?? []).find(([err]) => err);
  if (failed) throw failed[0];
}

/** The deployments announced and not reconciled since (at most `limit`: the rest at the next look). */
export async function changedDeployments(redis: Redis, keys: Keys, limit = 10_000): Promise<string[]> {
  return redis.srandmember(keys.changedDeployments, limit);
}
