import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import type { InstanceRecord } from '../state/records/instance.ts';

/**
 * How Gantry names and labels the Docker containers it runs. Labels are the agent's memory on the
 * engine: a restarted agent finds its containers by them (node + instance + uid), so adoption
 * does not depend on anything on disk, and anything labelled for this node that no instance
 * claims is a stray to remove.
 */

export const LABEL_PREFIX = 'dev.gantry.';

export const LABELS = {
  managed: 'dev.gantry.managed',
  node: 'dev.gantry.node',
  namespace: 'dev.gantry.namespace',
  deployment: 'dev.gantry.deployment',
  instance: 'dev.gantry.instance',
  uid: 'dev.gantry.uid',
  /** The instance's templateHash. */
  revision: 'dev.gantry.revision',
  container: 'dev.gantry.container',
  /** Restart count of the instance's container at creation: a restarted agent keeps counting. */
  restarts: 'dev.gantry.restarts',
  /** terminationGracePeriodSeconds, so that a stray is stopped as gently as its instance was meant to be. */
  grace: 'dev.gantry.grace-seconds',
  /** Which Gantry installation: see agentScope. */
  scope: 'dev.gantry.scope',
  /** On an instance's sandbox (its pause container, docker-sandbox.ts): `true`. */
  sandbox: 'dev.gantry.sandbox',
  /** On the pause image the agent makes (pause-image.ts): its reference, `<repository>:<content hash>`. */
  pauseImage: 'dev.gantry.pause-image',
} as const;

/**
 * A short hash of the agent's data dir and Redis key prefix. Node names are unique within one
 * cluster only: two installations sharing an engine (the test suite next to a `gantry up`, both
 * with a node-1) must not adopt or remove each other's containers. A container without this label
 * (made by hand, or by an older agent) counts as this node's.
 */
export function agentScope(dataDir: string, prefix: string): string {
  return createHash('sha256').update(`${resolve(dataDir)}\0${prefix}`).digest('hex').slice(0, 12);
}

/** Whether a container labelled for this node belongs to this installation. */
export function inScope(labels: Record<string, string>, scope: string): boolean {
  const theirs = labels[LABELS.scope];
  return theirs === undefined || theirs === scope;
}

/**
 * `gantry-<node>-<instanceId>-<container>`. Deterministic, so that a crash between create and
 * bookkeeping cannot leave a twin; the node is part of it because several agents may share one
 * engine (`gantry up` runs two), and a recreated instance bound to another node must not collide
 * with the copy its previous node is still stopping.
 */
export function containerName(node: string, instanceId: string, container: string): string {
  return `gantry-${node}-${instanceId}-${container}`;
}

export function containerLabels(node: string, scope: string, record: InstanceRecord, container: string, restarts: number): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.node]: node,
    [LABELS.scope]: scope,
    [LABELS.namespace]: record.namespace,
    [LABELS.deployment]: record.deployment,
    [LABELS.instance]: record.id,
    [LABELS.uid]: record.uid,
    [LABELS.revision]: record.templateHash,
    [LABELS.container]: container,
    [LABELS.restarts]: String(restarts),
    [LABELS.grace]: String(record.terminationGracePeriodSeconds),
  };
}

/** Engine-side filter for "every container this node's agent manages". */
export function nodeFilter(node: string, instanceId?: string): string[] {
  const filter = [`${LABELS.managed}=true`, `${LABELS.node}=${node}`];
  if (instanceId !== undefined) filter.push(`${LABELS.instance}=${instanceId}`);
  return filter;
}
