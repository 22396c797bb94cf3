import { randomBytes } from 'node:crypto';
import { TransientError } from '../../lib/errors/index.ts';
import type { InstanceRecord } from '../../state/records/instance.ts';
import { computePlan, computeSplitPlan, type PlanAction } from '../plan/compute-plan.ts';
import { advanceRollout, type RolloutDecision } from '../rollout/advance-rollout.ts';
import type { Queues } from '../queue/queues.ts';
import { parseObjectKey } from '../../state/keys.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import type { InstanceTemplate } from '../../state/records/instance.ts';
import type { Store, StoredInstance } from '../../state/store.ts';
import type { NewEvent } from '../../state/events.ts';
import { computeDeploymentStatus } from '../status/deployment-status.ts';
import { describeAdopted, matchClaims } from './adoption.ts';
import type { ReconcileOutcome } from './reconcile-queue.ts';

/**
 * Reconciles one deployment key (`<ns>/<name>`): reads what Git wants and what runs, plans, applies
 * the plan, and writes status. It never looks at what triggered it, so it can run any number of
 * times; a second run right after the first finds nothing to do.
 */

/**
 * Most instances one pass creates, and most it deletes. A scale-up to 10,000 replicas goes in
 * batches, each pass asking for the next one shortly after (NEXT_BATCH_MS), so no single pass
 * holds the reconciler, a Redis pipeline or the memory for all of them at once.
 */
export const MAX_CHANGES_PER_PASS = 500;
export const NEXT_BATCH_MS = 50;

export interface DeploymentReconcilerDeps {
  store: Store;
  queues: Queues;
  /** Default MAX_CHANGES_PER_PASS. */
  maxChangesPerPass?: number;
  /** Called when a bound instance was deleted: its node has room again for pending ones. */
  onCapacityFreed?: () => void;
  /**
   * How much longer instances no node claims wait before they are created (ms, 0: not at all):
   * right after Redis lost its data, while agents may still claim what they run (reconciler.ts).
   */
  adoptionHoldMs?: () => number;
  log?: (line: string) => void;
}

export function newInstanceRecord(d: DeploymentRecord, action: Extract<PlanAction, { type: 'create' }>, now: number, template: InstanceTemplate = d.template, commit: string = d.commit): InstanceRecord {
  const t = template;
  return {
    id: action.id,
    uid: randomBytes(6).toString('hex'),
    namespace: d.namespace,
    deployment: d.name,
    templateHash: action.templateHash,
    ordinal: action.ordinal,
    commit,
    labels: t.labels,
    ...(t.annotations ? { annotations: t.annotations } : {}),
    containers: t.containers,
    cpuMilli: t.cpuMilli,
    memoryBytes: t.memoryBytes,
    nodeSelector: t.nodeSelector,
    restartPolicy: t.restartPolicy,
    runtime: t.runtime,
    terminationGracePeriodSeconds: t.terminationGracePeriodSeconds,
    // Only when set: records of templates without pull secrets stay as they were.
    ...(t.imagePullSecrets ? { imagePullSecrets: t.imagePullSecrets } : {}),
    ...(t.volumes ? { volumes: t.volumes } : {}),
    ...(t.initContainers ? { initContainers: t.initContainers } : {}),
    createdAt: now,
  };
}

export async function reconcileDeployment(deps: DeploymentReconcilerDeps, key: string): Promise<ReconcileOutcome> {
  const { store, queues } = deps;
  const { namespace, name } = parseObjectKey(key);
  const [desired, instances, rollout] = await Promise.all([store.readDeployment(namespace, name), store.readDeploymentInstances(namespace, name), store.readRollout(namespace, name)]);
  // Redis's clock: agents stamp statuses on it, so minReadySeconds and deadlines hold across machines.
  const now = store.clock.now();

  // What to converge to: Git's revision, or the one a rollout pin or canary step holds.
  let actions: PlanAction[];
  let decision: RolloutDecision | undefined;
  let deferUntil: number | undefined;
  // Per revision (template hash): its template and commit. Git's revision reports Git's commit; a
  // pinned or stable one the commit it came from, not the newer commit that failed.
  const templates = new Map<string, { template: InstanceTemplate; commit: string }>();
  if (!desired) {
    actions = computePlan(undefined, instances);
  } else {
    decision = advanceRollout(desired, rollout.state, instances, now);
    for (const r of decision.state.revisions) templates.set(r.templateHash, { template: r.template, commit: r.revision === decision.git.revision ? desired.commit : r.commit });
    const effective: DeploymentRecord = { ...desired, templateHash: decision.target.templateHash, template: decision.target.template };
    if (decision.hold) actions = [];
    else if (decision.stable && decision.canaryReplicas !== undefined) actions = computeSplitPlan(effective, decision.target.templateHash, decision.stable.templateHash, decision.canaryReplicas, instances);
    else actions = computePlan(effective, instances, { now, minReadyMs: desired.minReadySeconds * 1000 });
    // Saved before acting, and only if nobody (a rollout command) changed it since we read it.
    if (JSON.stringify(decision.state) !== rollout.raw && !(await store.replaceRollout(namespace, name, rollout, decision.state))) {
      throw new TransientError('CONFLICT', `rollout state of ${key} changed while reconciling; retrying`, { object: `deployment/${key}` });
    }
    await store.events.recordAll(decision.events.map((e) => ({ ...e, object: `deployment/${key}` })));
  }

  const byId = new Map(instances.map((i) => [i.record.id, i]));
  // Recreate: new instances start only once the replaced ones have really stopped.
  if (desired?.strategy.type === 'Recreate' && actions.some((a) => a.type === 'create')) {
    const waitMs = await stillTerminating(store, namespace, name, now);
    if (waitMs > 0) {
      actions = actions.filter((a) => a.type !== 'create');
      deferUntil = waitMs;
    }
  }
  // A bounded batch of the plan; the rest follows in the next pass, planned afresh.
  const limit = deps.maxChangesPerPass ?? MAX_CHANGES_PER_PASS;
  const planned = { deletes: actions.filter((a) => a.type === 'delete'), creates: actions.filter((a) => a.type === 'create') };
  const moreToDo = planned.deletes.length > limit || planned.creates.length > limit;
  if (moreToDo) actions = [...planned.deletes.slice(0, limit), ...planned.creates.slice(0, limit)];
  let changed = false;
  // Deletes first, one by one (each must still match what was read); then every create of the
  // batch in one pipeline and their schedule jobs in one bulk add.
  const deleted: NewEvent[] = [];
  try {
    for (const action of actions) {
      if (action.type !== 'delete') continue;
      const inst = byId.get(action.id)!;
      if (!(await store.deleteInstance(inst))) throw new TransientError('CONFLICT', `instance ${action.id} changed while deleting it; retrying`, { instance: action.id });
      if (desired?.strategy.type === 'Recreate' && inst.record.node) {
        await store.markTerminating(namespace, name, [{ id: inst.record.id, uid: inst.record.uid, deletedAt: now, graceSeconds: inst.record.terminationGracePeriodSeconds }]);
      }
      changed = true;
      if (inst.record.node) {
        await queues.enqueueNode(inst.record.node, 'stop', inst.record.id, inst.record.uid);
        deps.onCapacityFreed?.();
      }
      deleted.push({ type: 'Normal', reason: 'Deleted', object: `deployment/${key}`, message: `instance ${action.id} deleted (${action.reason})` });
    }
  } finally {
    // Whatever was deleted before a race cut the loop short is still told.
    await store.events.recordAll(deleted);
  }
  const created = actions.filter((a) => a.type === 'create');
  const wanted = created.map((a) => newInstanceRecord(desired!, a, now, templates.get(a.templateHash)?.template, templates.get(a.templateHash)?.commit));
  // After Redis lost its data, what agents still run is adopted, not started again (adoption.ts);
  // the rest waits while agents may still claim theirs (adoptionHoldMs).
  const { adopt, create } = matchClaims(wanted, await store.recovery.readClaims(wanted.map((r) => r.id)), now);
  const holdMs = create.length > 0 ? (deps.adoptionHoldMs?.() ?? 0) : 0;
  const records = holdMs > 0 ? [] : create;
  if (holdMs > 0) deferUntil = Math.min(deferUntil ?? Infinity, holdMs, 1000);
  const took = await store.recovery.adoptInstances(adopt);
  const adopted = adopt.filter((_, i) => took[i]);
  if (adopted.length > 0) {
    changed = true;
    // Not needed (the agent runs it already), but its status is written at once, not at its next resync.
    for (const r of adopted) await queues.enqueueNode(r.node!, 'start', r.id, r.uid);
    await store.events.record({ type: 'Normal', reason: 'Adopted', object: `deployment/${key}`, message: `${adopted.length} instance(s) still running after Redis lost its data adopted: ${describeAdopted(adopted)}` });
  }
  const made = await store.createInstances(records);
  const fresh = records.filter((_, i) => made[i]);
  if (fresh.length > 0) {
    changed = true;
    await queues.enqueueSchedules(fresh);
  }
  if (records.length > 0) {
    await store.events.record({ type: 'Normal', reason: 'Created', object: `deployment/${key}`, message: `${records.length} instance(s) of revision ${records[0]!.templateHash} created` });
  }

  const current: StoredInstance[] = changed ? await store.readDeploymentInstances(namespace, name) : instances;
  if (!desired) {
    if (current.length === 0) {
      await store.deleteDeploymentState(namespace, name);
      return;
    }
    // Pruned but instances remain (the next batch, or a delete raced): look again shortly.
    return { requeueAfterMs: moreToDo ? NEXT_BATCH_MS : 1000 };
  }
  const [source, previous] = await Promise.all([store.readSourceStatus(), store.readDeploymentStatus(namespace, name)]);
  const status = computeDeploymentStatus(desired, current, source, previous, now, decision);
  if (!previous || statusChanged(previous, status)) await store.writeDeploymentStatus(status);
  const requeue = Math.min(decision?.requeueAfterMs ?? Infinity, deferUntil ?? Infinity, moreToDo ? NEXT_BATCH_MS : Infinity);
  return Number.isFinite(requeue) ? { requeueAfterMs: requeue } : undefined;
}

/**
 * Instances a Recreate deleted whose agent has not reported them stopped yet (their status is
 * still there, with the same uid). Gives up on one after its grace period plus 30 s: a node that
 * died never reports, and its instances are gone with it. Returns how long to wait, or 0.
 */
async function stillTerminating(store: Store, ns: string, name: string, now: number): Promise<number> {
  const entries = await store.readTerminating(ns, name);
  if (entries.length === 0) return 0;
  const statuses = await store.readInstanceStatuses(entries.map((t) => t.id));
  const done: string[] = [];
  entries.forEach((t, i) => {
    const s = statuses[i];
    const running = !!s && s.uid === t.uid && s.phase !== 'Exited' && s.phase !== 'Failed';
    if (!running || now - t.deletedAt >= (t.graceSeconds + 30) * 1000) done.push(t.id);
  });
  await store.forgetTerminating(ns, name, done);
  return done.length < entries.length ? 250 : 0;
}

function statusChanged(a: object, b: object): boolean {
  const strip = (s: object) => JSON.stringify({ ...s, updatedAt: 0 });
  return strip(a) !== strip(b);
}
