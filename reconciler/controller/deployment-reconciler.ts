import { randomBytes } from 'node:crypto';
import type { InstanceRecord } from '../../state/records/instance.ts';
import { computePlan, computeSplitPlan, type PlanAction } from '../plan/compute-plan.ts';
import { advanceRollout, type RolloutDecision } from '../rollout/advance-rollout.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { Queues } from '../queue/queues.ts';
import { parseObjectKey } from '../../state/keys.ts';
import { recordEvent } from '../../state/events.ts';
import type { DeploymentRecord, InstanceTemplate } from '../../state/records/deployment.ts';
import type { Store, StoredInstance } from '../../state/store.ts';
import { computeDeploymentStatus } from '../status/deployment-status.ts';
import type { ReconcileOutcome } from './reconcile-queue.ts';

/**
 * Reconciles one deployment key (`<ns>/<name>`): reads what Git wants and what runs, plans, applies
 * the plan, and writes status. It never looks at what triggered it, so it can run any number of
 * times; a second run right after the first finds nothing to do.
 */

export interface DeploymentReconcilerDeps {
  store: Store;
  queues: Queues;
  /** Called when a bound instance was deleted: its node has room again for pending ones. */
  onCapacityFreed?: () => void;
  log?: (line: string) => void;
}

export function newInstanceRecord(d: DeploymentRecord, action: Extract<PlanAction, { type: 'create' }>, now: number, template: InstanceTemplate = d.template): InstanceRecord {
  const t = template;
  return {
    id: action.id,
    uid: randomBytes(6).toString('hex'),
    namespace: d.namespace,
    deployment: d.name,
    templateHash: action.templateHash,
    ordinal: action.ordinal,
    commit: d.commit,
    labels: t.labels,
    containers: t.containers,
    cpuMilli: t.cpuMilli,
    memoryBytes: t.memoryBytes,
    nodeSelector: t.nodeSelector,
    restartPolicy: t.restartPolicy,
    runtime: t.runtime,
    terminationGracePeriodSeconds: t.terminationGracePeriodSeconds,
    createdAt: now,
  };
}

export async function reconcileDeployment(deps: DeploymentReconcilerDeps, key: string): Promise<ReconcileOutcome> {
  const { store, queues } = deps;
  const { namespace, name } = parseObjectKey(key);
  const rolloutKey = store.keys.rollout(namespace, name);
  const [desired, instances, rolloutRaw] = await Promise.all([store.readDeployment(namespace, name), store.readDeploymentInstances(namespace, name), store.redis.get(rolloutKey)]);
  const now = Date.now();

  // What to converge to: Git's revision, or the one a rollout pin or canary step holds.
  let actions: PlanAction[];
  let decision: RolloutDecision | undefined;
  let deferUntil: number | undefined;
  const templates = new Map<string, InstanceTemplate>();
  if (!desired) {
    actions = computePlan(undefined, instances);
  } else {
    decision = advanceRollout(desired, rolloutRaw ? (JSON.parse(rolloutRaw) as RolloutState) : undefined, instances, now);
    for (const r of decision.state.revisions) templates.set(r.templateHash, r.template);
    const effective: DeploymentRecord = { ...desired, templateHash: decision.target.templateHash, template: decision.target.template };
    if (decision.hold) actions = [];
    else if (decision.stable && decision.canaryReplicas !== undefined) actions = computeSplitPlan(effective, decision.target.templateHash, decision.stable.templateHash, decision.canaryReplicas, instances);
    else actions = computePlan(effective, instances, { now, minReadyMs: desired.minReadySeconds * 1000 });
    // Saved before acting, and only if nobody (a rollout command) changed it since we read it.
    const next = JSON.stringify(decision.state);
    if (next !== rolloutRaw && (await store.scripts.compareAndSet(rolloutKey, rolloutRaw ?? '', next)) !== 1) {
      throw new Error(`rollout state of ${key} changed while reconciling; retrying`);
    }
    for (const e of decision.events) await recordEvent(store.redis, store.keys, { ...e, object: `deployment/${key}` });
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
  let changed = false;
  for (const action of actions) {
    if (action.type === 'create') {
      const record = newInstanceRecord(desired!, action, now, templates.get(action.templateHash));
      if (await store.createInstance(record)) {
        changed = true;
        await queues.enqueueSchedule(record.id, record.uid);
      }
    } else {
      const inst = byId.get(action.id)!;
      if (!(await store.deleteInstance(inst))) throw new Error(`instance ${action.id} changed while deleting it; retrying`);
      if (desired?.strategy.type === 'Recreate' && inst.record.node) {
        await store.redis.hset(store.keys.terminating(namespace, name), inst.record.id, `${inst.record.uid} ${now} ${inst.record.terminationGracePeriodSeconds}`);
      }
      changed = true;
      if (inst.record.node) {
        await queues.enqueueNode(inst.record.node, 'stop', inst.record.id, inst.record.uid);
        deps.onCapacityFreed?.();
      }
      await recordEvent(store.redis, store.keys, { type: 'Normal', reason: 'Deleted', object: `deployment/${key}`, message: `instance ${action.id} deleted (${action.reason})` });
    }
  }
  const created = actions.filter((a) => a.type === 'create');
  if (created.length > 0) {
    await recordEvent(store.redis, store.keys, { type: 'Normal', reason: 'Created', object: `deployment/${key}`, message: `${created.length} instance(s) of revision ${created[0]!.templateHash} created` });
  }

  const current: StoredInstance[] = changed ? await store.readDeploymentInstances(namespace, name) : instances;
  if (!desired) {
    if (current.length === 0) {
      await store.redis.del(store.keys.deploymentStatus(namespace, name), rolloutKey, store.keys.terminating(namespace, name));
      return;
    }
    // Pruned but instances remain (a delete raced): look again shortly.
    return { requeueAfterMs: 1000 };
  }
  const [source, previous] = await Promise.all([store.readSourceStatus(), store.readDeploymentStatus(namespace, name)]);
  const status = computeDeploymentStatus(desired, current, source, previous, now, decision);
  if (!previous || statusChanged(previous, status)) await store.writeDeploymentStatus(status);
  const requeue = Math.min(decision?.requeueAfterMs ?? Infinity, deferUntil ?? Infinity);
  return Number.isFinite(requeue) ? { requeueAfterMs: requeue } : undefined;
}

/**
 * Instances a Recreate deleted whose agent has not reported them stopped yet (their status is
 * still there, with the same uid). Gives up on one after its grace period plus 30 s: a node that
 * died never reports, and its instances are gone with it. Returns how long to wait, or 0.
 */
async function stillTerminating(store: Store, ns: string, name: string, now: number): Promise<number> {
  const key = store.keys.terminating(ns, name);
  const entries = Object.entries(await store.redis.hgetall(key));
  if (entries.length === 0) return 0;
  const statuses = await Promise.all(entries.map(([id]) => store.readInstanceStatus(id)));
  let waiting = 0;
  for (const [i, [id, value]] of entries.entries()) {
    const [uid, deletedAt, grace] = value.split(' ');
    const s = statuses[i];
    const running = !!s && s.uid === uid && s.phase !== 'Exited' && s.phase !== 'Failed';
    if (running && now - Number(deletedAt) < (Number(grace) + 30) * 1000) waiting++;
    else await store.redis.hdel(key, id);
  }
  return waiting > 0 ? 250 : 0;
}

function statusChanged(a: object, b: object): boolean {
  const strip = (s: object) => JSON.stringify({ ...s, updatedAt: 0 });
  return strip(a) !== strip(b);
}
