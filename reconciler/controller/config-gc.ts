/**
 * Pruning of ConfigMap and Secret versions (state/records/config.ts). A version stays while any
 * revision that can still run or be rolled back to refers to it: a deployment's current template
 * (previews' included), every revision its rollout state keeps (revisionHistoryLimit), and what
 * the branch's applied commit holds. Nothing else: a Secret removed from Git, or an old content no
 * revision uses, leaves Redis at the next full resync (reconciler.ts).
 */
import { referencedVersions } from '../../state/records/config.ts';
import type { Store } from '../../state/store.ts';

export async function pruneConfigVersions(store: Store): Promise<number> {
  const stored = await store.configs.listVersions();
  if (stored.size === 0) return 0;
  const deployments = await store.readDeployments();
  const rollouts = await store.readRollouts(deployments);
  // What the branch applied stays too: a deployment that starts using it finds it, and diffs compare against it.
  const keep = new Set<string>((await store.configs.readApplied()).map((c) => `${c.namespace}/${c.kind}/${c.name}@${c.version}`));
  deployments.forEach((d, i) => {
    // Pull secrets are referenced versions too (configRefs holds them): a revision's instances pull with them.
    const refs = (t: typeof d.template) => referencedVersions(d.namespace, [...t.containers, ...(t.initContainers ?? [])], t.imagePullSecrets, t.volumes);
    for (const r of d.configRefs ?? refs(d.template)) keep.add(r);
    for (const rev of rollouts[i]?.revisions ?? []) for (const r of refs(rev.template)) keep.add(r);
  });
  return store.configs.prune(keep, stored);
}
