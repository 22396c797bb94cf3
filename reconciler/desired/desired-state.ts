import { createHash } from 'node:crypto';
import type { CanaryStep as ManifestCanaryStep } from '../../schemas/generated/index.ts';
import { DEFAULT_MAX_SURGE, DEFAULT_MAX_UNAVAILABLE } from '../manifests/normalize.ts';
import { podRequests, resolveResources } from '../manifests/resources.ts';
import { resolveProbes } from '../manifests/probes.ts';
import { resolveLifecycle } from '../manifests/lifecycle.ts';
import { canonicalJson, templateHash } from '../manifests/template-hash.ts';
import type { ContainerObject, DeploymentObject, LoadedManifest, ServiceObject, ServicePortObject, StrategyObject } from '../manifests/types.ts';
import type { ContainerSpec } from '../../state/records/instance.ts';
import { referencedVersions, type ConfigVersionRecord } from '../../state/records/config.ts';
import { configVersionsOf, toEnvSpecs, toMountSpecs, toPullSecrets, toVolumeSpecs, type ConfigVersions } from './config-refs.ts';
import type { CanaryStep, DeploymentRecord, NamespaceRecord } from '../../state/records/deployment.ts';
import { type ServiceRecord } from '../../state/records/service.ts';

/**
 * Desired state: what one commit's validated manifests mean, as records ready for Redis.
 * Pure: no I/O. Generations carry over from the records currently stored, bumped only when a
 * deployment's spec changed, so status can say whether it has caught up (observedGeneration).
 * Input is the normalized manifests of reconciler/manifests/ (every schema default applied there),
 * so no default is repeated here.
 */

export interface DesiredState {
  commit: string;
  namespaces: NamespaceRecord[];
  deployments: DeploymentRecord[];
  /** Absent: services are left as they are (preview environments do not get services). */
  services?: ServiceRecord[];
  /** The commit's ConfigMap and Secret contents, as versions to store (state/records/config.ts). */
  configs?: ConfigVersionRecord[];
}

/** A normalized manifest and where it was written (loadManifests' objects; the column is not needed). */
export type LoadedObject = Pick<LoadedManifest, 'manifest' | 'file' | 'line'>;

export function specHash(spec: unknown): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

export function toDeploymentRecord(d: DeploymentObject, commit: string, file: string, line: number, previous?: DeploymentRecord, configs: ConfigVersions = new Map()): DeploymentRecord {
  const spec = d.spec;
  const t = spec.template;
  // resourceFieldRef may name any container of the pod, init containers included.
  const everyContainer = [...t.spec.containers, ...(t.spec.initContainers ?? [])];
  const resourcesOf = (name: string) => resolveResources(everyContainer.find((c) => c.name === name)?.resources);
  const toSpec = (c: ContainerObject): ContainerSpec => ({
    name: c.name,
    // Not schema defaults (they would change every template hash): what a record means by "unset".
    ...(c.image !== undefined ? { image: c.image, imagePullPolicy: c.imagePullPolicy ?? 'IfNotPresent' } : {}),
    command: c.command ?? [],
    args: c.args,
    ...toEnvSpecs(c, d.metadata.namespace, configs, resourcesOf),
    // Only what differs from before protocols and hostPorts existed (UDP, a hostPort, a hostIP) is written, so TCP ports' records stay byte for byte.
    ports: c.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, ...(p.protocol === 'UDP' ? { protocol: 'UDP' as const } : {}), ...(p.hostPort ? { hostPort: p.hostPort } : {}), ...(p.hostIP !== undefined ? { hostIP: p.hostIP } : {}) })),
    ...(c.workingDir !== undefined ? { workingDir: c.workingDir } : {}),
    // Requests (what the scheduler reserves) and, unless written in the flat form, the limits.
    ...resolveResources(c.resources),
    ...resolveProbes(c),
    // Only when written, as `volumes`: records and hashes of containers without mounts stay as they were.
    ...(c.volumeMounts?.length ? { volumeMounts: toMountSpecs(c.volumeMounts) } : {}),
    // Only when written too (the loader rejects hooks on init containers).
    ...resolveLifecycle(c),
  });
  const containers = t.spec.containers.map(toSpec);
  // Absent when none, so records and hashes of templates without them stay as they were.
  const initContainers = (t.spec.initContainers ?? []).map(toSpec);
  // The ConfigMap and Secret versions the containers use, and the pull secrets' (see
  // referencedVersions for why), are part of the template: a change of content rolls the deployment
  // (and a rollback returns to the content its revision had). Without any, the hashes are what they
  // were before ConfigMaps existed, so upgrading rolls nothing.
  const imagePullSecrets = toPullSecrets(t.spec.imagePullSecrets, d.metadata.namespace, configs);
  // Mounted ConfigMaps and Secrets count as env's do: their content change rolls the pod.
  const volumes = toVolumeSpecs(t.spec.volumes, d.metadata.namespace, configs, resourcesOf);
  const configRefs = referencedVersions(d.metadata.namespace, [...containers, ...initContainers], imagePullSecrets, volumes);
  const hashOfSpec = configRefs.length > 0 ? specHash({ spec, configs: configRefs }) : specHash(spec);
  const hashOfTemplate = configRefs.length > 0 ? specHash({ template: templateHash(d), configs: configRefs }).slice(0, 10) : templateHash(d);
  const generation = !previous ? 1 : previous.specHash === hashOfSpec ? previous.generation : previous.generation + 1;
  return {
    namespace: d.metadata.namespace,
    name: d.metadata.name,
    commit,
    file,
    line,
    generation,
    specHash: hashOfSpec,
    replicas: spec.replicas,
    selector: spec.selector.matchLabels ?? {},
    ...(spec.selector.matchExpressions ? { selectorExpressions: spec.selector.matchExpressions } : {}),
    strategy: toStrategy(spec.strategy),
    minReadySeconds: spec.minReadySeconds,
    revisionHistoryLimit: spec.revisionHistoryLimit,
    progressDeadlineSeconds: spec.progressDeadlineSeconds,
    rollback: spec.rollback,
    ...(spec.paused ? { paused: true } : {}),
    templateHash: hashOfTemplate,
    ...(configRefs.length > 0 ? { configRefs } : {}),
    template: {
      labels: t.metadata.labels,
      // Only when written: records of templates without annotations stay as they were.
      ...(Object.keys(t.metadata.annotations).length > 0 ? { annotations: t.metadata.annotations } : {}),
      containers,
      // Kubernetes' effective request: the containers' sum, or the largest init container's if more.
      ...podRequests(containers, initContainers),
      nodeSelector: t.spec.nodeSelector,
      restartPolicy: t.spec.restartPolicy,
      // One runtime per pod: an image anywhere (an init container's too) makes it Docker.
      runtime: [...containers, ...initContainers].some((c) => c.image) ? 'docker' : 'process',
      terminationGracePeriodSeconds: t.spec.terminationGracePeriodSeconds,
      ...(imagePullSecrets.length > 0 ? { imagePullSecrets } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
      ...(initContainers.length > 0 ? { initContainers } : {}),
    },
    labels: d.metadata.labels,
    annotations: d.metadata.annotations,
  };
}

/** The record keeps surge bounds for every type (checks.ts rejects rollingUpdate outside RollingUpdate). */
function toStrategy(s: StrategyObject): DeploymentRecord['strategy'] {
  if (s.type === 'RollingUpdate') return { type: s.type, maxSurge: s.rollingUpdate.maxSurge, maxUnavailable: s.rollingUpdate.maxUnavailable };
  const bounds = { maxSurge: DEFAULT_MAX_SURGE, maxUnavailable: DEFAULT_MAX_UNAVAILABLE };
  return s.type === 'Canary' ? { type: s.type, ...bounds, steps: s.steps.map(toCanaryStep) } : { type: s.type, ...bounds };
}

function toCanaryStep(step: ManifestCanaryStep): CanaryStep {
  if (step.setWeight !== undefined) return { setWeight: step.setWeight };
  const d = step.pause?.duration;
  if (!d) return { pause: {} };
  const n = Number.parseInt(d, 10);
  return { pause: { durationMs: n * (d.endsWith('h') ? 3_600_000 : d.endsWith('m') ? 60_000 : 1000) } };
}

export function buildDesiredState(objects: LoadedObject[], commit: string, current: DeploymentRecord[]): DesiredState {
  const prev = new Map(current.map((d) => [`${d.namespace}/${d.name}`, d]));
  const namespaces: NamespaceRecord[] = [];
  const deployments: DeploymentRecord[] = [];
  const services: ServiceRecord[] = [];
  const configs = configVersionsOf(objects, commit);
  for (const o of objects) {
    const m = o.manifest;
    if (m.kind === 'Namespace') {
      namespaces.push({ name: m.metadata.name, commit, labels: m.metadata.labels, annotations: m.metadata.annotations });
    } else if (m.kind === 'Deployment') {
      const key = `${m.metadata.namespace}/${m.metadata.name}`;
      deployments.push(toDeploymentRecord(m, commit, o.file, o.line, prev.get(key), configs));
    } else if (m.kind === 'Service') {
      services.push(toServiceRecord(m, commit, o.file, o.line));
    }
  }
  return { commit, namespaces, deployments, services, configs: [...configs.values()] };
}

export interface DesiredDiff {
  added: DeploymentRecord[];
  changed: { before: DeploymentRecord; after: DeploymentRecord; changes: string[] }[];
  removed: DeploymentRecord[];
  unchanged: number;
  summary: string;
}

/** What applying `next` would change in the deployments, readable (used by sync and `gantry diff`). */
export function diffDesired(current: DeploymentRecord[], next: DesiredState): DesiredDiff {
  const key = (d: DeploymentRecord) => `${d.namespace}/${d.name}`;
  const before = new Map(current.map((d) => [key(d), d]));
  const after = new Map(next.deployments.map((d) => [key(d), d]));
  const added: DeploymentRecord[] = [];
  const changed: DesiredDiff['changed'] = [];
  const removed: DeploymentRecord[] = [];
  let unchanged = 0;
  for (const [k, d] of after) {
    const b = before.get(k);
    if (!b) added.push(d);
    else if (b.specHash !== d.specHash) {
      const changes: string[] = [];
      if (b.replicas !== d.replicas) changes.push(`replicas ${b.replicas} -> ${d.replicas}`);
      if (b.templateHash !== d.templateHash) changes.push(`template ${b.templateHash} -> ${d.templateHash} (instances replaced)`);
      // Which ConfigMap or Secret content changes roll it (versions are content hashes: no values).
      for (const c of configChanges(b.configRefs, d.configRefs)) changes.push(c);
      if (changes.length === 0) changes.push('spec changed');
      changed.push({ before: b, after: d, changes });
    } else unchanged++;
  }
  for (const [k, b] of before) if (!after.has(k)) removed.push(b);
  const summary = `+${added.length} ~${changed.length} -${removed.length}`;
  return { added, changed, removed, unchanged, summary };
}

/** "Secret db a1b2c3d4 -> e5f6a7b8" for every referenced object whose version differs. */
export function configChanges(before: readonly string[] = [], after: readonly string[] = []): string[] {
  const split = (refs: readonly string[]) => new Map(refs.map((r) => [r.slice(r.indexOf('/') + 1, r.lastIndexOf('@')), r.slice(r.lastIndexOf('@') + 1)]));
  const [b, a] = [split(before), split(after)];
  const out: string[] = [];
  for (const name of [...new Set([...b.keys(), ...a.keys()])].sort()) {
    const [from, to] = [b.get(name), a.get(name)];
    if (from === to) continue;
    const label = name.replace('/', ' ');
    out.push(from && to ? `${label} ${from.slice(0, 8)} -> ${to.slice(0, 8)}` : to ? `${label} used` : `${label} no longer used`);
  }
  return out;
}

export function toServiceRecord(s: ServiceObject, commit: string, file: string, line: number): ServiceRecord {
  // The normalized tuple type (the intersection with ServiceSpec would map over schema ports).
  const ports: ServicePortObject[] = s.spec.ports;
  // Defaults (ClusterIP, TCP) are left out, so the record of a service written before types and
  // protocols existed is unchanged: no diff, no rewrite on upgrade. nodePort only as Git has it
  // (allocations live in endpoints records, where they stay stable across commits).
  const type = s.spec.type ?? 'ClusterIP';
  const headless = s.spec.clusterIP === 'None' || s.spec.clusterIPs?.[0] === 'None';
  return {
    namespace: s.metadata.namespace,
    name: s.metadata.name,
    commit,
    file,
    line,
    ...(type !== 'ClusterIP' ? { type } : {}),
    ...(headless ? { headless: true as const } : {}),
    selector: s.spec.selector,
    ports: ports.map((p) => {
      const protocol = p.protocol;
      return {
        ...(p.name ? { name: p.name } : {}),
        port: p.port,
        targetPort: p.targetPort,
        ...(protocol === 'UDP' ? { protocol } : {}),
        ...(p.nodePort !== undefined && type !== 'ClusterIP' ? { nodePort: p.nodePort } : {}),
      };
    }),
  };
}
