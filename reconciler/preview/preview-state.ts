import type { ConfigVersionRecord } from '../../state/records/config.ts';
import { specHash, type DesiredState } from '../desired/desired-state.ts';
import type { DeploymentRecord, NamespaceRecord } from '../../state/records/deployment.ts';

/**
 * The desired state of a pull request's preview, pure: what the pull request's head would deploy,
 * moved into namespaces of its own (`pr-<N>-<namespace>`, so instance ids, keys and status never
 * collide with what runs from the tracked branch), with replicas capped, and owned by `pr-<N>` so
 * that neither the tracked branch's syncs nor other previews replace or prune it.
 */

export const PREVIEW_OF_ANNOTATION = 'gantry.dev/preview-of';
export const PULL_REQUEST_ANNOTATION = 'gantry.dev/pull-request';

export function previewOwner(pr: number): string {
  return `pr-${pr}`;
}

export function previewNamespace(pr: number, namespace: string): string {
  return `pr-${pr}-${namespace}`;
}

export interface PreviewState {
  namespaces: NamespaceRecord[];
  deployments: DeploymentRecord[];
  /** The ConfigMap and Secret versions of the pull request, in its preview namespaces. */
  configs: ConfigVersionRecord[];
}

/**
 * `previous`: the preview's records stored now, so a deployment's generation moves only when its
 * (capped) spec does.
 */
export function buildPreviewState(desired: DesiredState, pr: number, opts: { maxReplicas: number }, previous: DeploymentRecord[]): PreviewState {
  const owner = previewOwner(pr);
  const before = new Map(previous.map((d) => [`${d.namespace}/${d.name}`, d]));
  const namespaces = new Map<string, NamespaceRecord>();
  for (const ns of desired.namespaces) {
    const name = previewNamespace(pr, ns.name);
    namespaces.set(name, { ...ns, name, owner, annotations: { ...ns.annotations, [PREVIEW_OF_ANNOTATION]: ns.name, [PULL_REQUEST_ANNOTATION]: String(pr) } });
  }
  const deployments = desired.deployments.map((d): DeploymentRecord => {
    const namespace = previewNamespace(pr, d.namespace);
    // "default" needs no Namespace manifest on the branch; its preview copy is declared here.
    if (!namespaces.has(namespace)) {
      namespaces.set(namespace, { name: namespace, commit: d.commit, labels: {}, annotations: { [PREVIEW_OF_ANNOTATION]: d.namespace, [PULL_REQUEST_ANNOTATION]: String(pr) }, owner });
    }
    const replicas = Math.min(d.replicas, opts.maxReplicas);
    const hash = specHash({ spec: d.specHash, replicas });
    const prev = before.get(`${namespace}/${d.name}`);
    const generation = !prev ? 1 : prev.specHash === hash ? prev.generation : prev.generation + 1;
    return {
      ...d,
      namespace,
      ...(d.configRefs ? { configRefs: d.configRefs.map((r) => `${previewNamespace(pr, r.slice(0, r.indexOf('/')))}${r.slice(r.indexOf('/'))}`) } : {}),
      replicas,
      specHash: hash,
      generation,
      owner,
      annotations: { ...d.annotations, [PREVIEW_OF_ANNOTATION]: `${d.namespace}/${d.name}`, [PULL_REQUEST_ANNOTATION]: String(pr) },
    };
  });
  // Agents read a version under the instance's namespace: the preview's copies live there.
  const configs = (desired.configs ?? []).map((c) => ({ ...c, namespace: previewNamespace(pr, c.namespace) }));
  return { namespaces: [...namespaces.values()].sort((a, b) => (a.name < b.name ? -1 : 1)), deployments, configs };
}
