/**
 * Applies the schemas' defaults to valid documents, giving the manifest objects the rest of Gantry
 * uses. The values here mirror the `default` keywords in schemas/*.schema.json; a unit test walks
 * the schemas to keep the two in agreement.
 *
 * Adding a default to the pod template changes the template hash of every deployment (and so rolls
 * them all), because hashes are taken over the normalized template.
 */
import type { ConfigMap, Container, Deployment, DeploymentStrategy, Namespace, Secret, Service } from '../../schemas/generated/index.ts';
import { DEFAULT_NAMESPACE } from './types.ts';
import type { ConfigMapObject, ContainerObject, DeploymentObject, NamespaceObject, SecretObject, ServiceObject, StrategyObject } from './types.ts';

export const DEFAULT_MAX_SURGE = '25%';
export const DEFAULT_MAX_UNAVAILABLE = '25%';
export const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 10;

/**
 * A deep copy of validated document data: YAML aliases make several places share one object, and
 * callers may mutate. The data is what toJS gives (plain objects and arrays, strings, numbers,
 * booleans, null), so a plain walk does it, several times faster than structuredClone; a shared
 * object becomes one copy per place, which is what a caller that mutates wants anyway.
 */
function copyOf<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyOf) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = copyOf((value as Record<string, unknown>)[key]);
    // A key named __proto__ is data, not the prototype (as JSON.parse and structuredClone keep it).
    if (key === '__proto__') Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
    else out[key] = v;
  }
  return out as T;
}

function metadataOf<M extends { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }>(m: M) {
  return { ...m, namespace: m.namespace ?? DEFAULT_NAMESPACE, labels: m.labels ?? {}, annotations: m.annotations ?? {} };
}

export function normalizeConfigMap(input: ConfigMap): ConfigMapObject {
  const cm = copyOf(input);
  return { ...cm, metadata: metadataOf(cm.metadata), data: cm.data ?? {}, binaryData: cm.binaryData ?? {} };
}

/** stringData is merged over data, base64-encoded, as the Kubernetes API server stores a Secret. */
export function normalizeSecret(input: Secret): SecretObject {
  const { stringData, ...secret } = copyOf(input);
  const data = { ...secret.data };
  for (const [k, v] of Object.entries(stringData ?? {})) data[k] = Buffer.from(v, 'utf8').toString('base64');
  return { ...secret, metadata: metadataOf(secret.metadata), type: secret.type ?? 'Opaque', data };
}

export function normalizeNamespace(input: Namespace): NamespaceObject {
  // A copy: YAML aliases make several places share one object, and callers may mutate.
  const ns = copyOf(input);
  return {
    ...ns,
    metadata: { ...ns.metadata, labels: ns.metadata.labels ?? {}, annotations: ns.metadata.annotations ?? {} },
    spec: ns.spec ?? {},
  };
}

function normalizeStrategy(strategy: DeploymentStrategy | undefined): StrategyObject {
  if (strategy?.type === 'Recreate') return { ...strategy, type: 'Recreate' };
  // Canary without steps is rejected by checks.ts; a single full step keeps the type total here.
  if (strategy?.type === 'Canary') return { ...strategy, type: 'Canary', steps: strategy.steps ?? [{ setWeight: 100 }] };
  return {
    ...strategy,
    type: 'RollingUpdate',
    rollingUpdate: {
      ...strategy?.rollingUpdate,
      maxSurge: strategy?.rollingUpdate?.maxSurge ?? DEFAULT_MAX_SURGE,
      maxUnavailable: strategy?.rollingUpdate?.maxUnavailable ?? DEFAULT_MAX_UNAVAILABLE,
    },
  };
}

function normalizeContainer(c: Container): ContainerObject {
  return { ...c, args: c.args ?? [], env: c.env ?? [], ports: c.ports ?? [] };
}

export function normalizeDeployment(input: Deployment): DeploymentObject {
  const d = copyOf(input);
  const { template } = d.spec;
  const [first, ...rest] = template.spec.containers;
  // `initContainers: []` means none, as in Kubernetes: dropped, so it hashes as a template without them.
  const { initContainers, ...podSpec } = template.spec;
  return {
    ...d,
    metadata: {
      ...d.metadata,
      namespace: d.metadata.namespace ?? DEFAULT_NAMESPACE,
      labels: d.metadata.labels ?? {},
      annotations: d.metadata.annotations ?? {},
    },
    spec: {
      ...d.spec,
      replicas: d.spec.replicas ?? 1,
      // Without a selector, a deployment owns the instances that carry all of its template's labels.
      selector: d.spec.selector ?? { matchLabels: { ...template.metadata.labels } },
      strategy: normalizeStrategy(d.spec.strategy),
      minReadySeconds: d.spec.minReadySeconds ?? 0,
      revisionHistoryLimit: d.spec.revisionHistoryLimit ?? 10,
      progressDeadlineSeconds: d.spec.progressDeadlineSeconds ?? 600,
      rollback: d.spec.rollback ?? 'auto',
      template: {
        ...template,
        metadata: { ...template.metadata, annotations: template.metadata.annotations ?? {} },
        spec: {
          ...podSpec,
          ...(initContainers?.length ? { initContainers: initContainers.map(normalizeContainer) } : {}),
          containers: [normalizeContainer(first), ...rest.map(normalizeContainer)],
          nodeSelector: template.spec.nodeSelector ?? {},
          restartPolicy: template.spec.restartPolicy ?? 'Always',
          terminationGracePeriodSeconds: template.spec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS,
        },
      },
    },
  };
}

export function normalizeService(input: Service): ServiceObject {
  const s = copyOf(input);
  return {
    ...s,
    metadata: { ...s.metadata, namespace: s.metadata.namespace ?? DEFAULT_NAMESPACE, labels: s.metadata.labels ?? {}, annotations: s.metadata.annotations ?? {} },
    spec: { ...s.spec, ports: s.spec.ports.map((p) => ({ ...p, targetPort: p.targetPort ?? p.port, protocol: p.protocol ?? 'TCP' })) as ServiceObject['spec']['ports'] },
  };
}
