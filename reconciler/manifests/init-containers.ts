/**
 * spec.template.spec.initContainers: what is checked of every container (env, references,
 * resources, mounts, ports) is checked of them too, by walking `podContainers`; what is theirs
 * alone is here. An init container runs to completion before the containers start, so it is
 * never probed and has no hooks: Kubernetes rejects those fields on it (unless it is a sidecar,
 * `restartPolicy: Always`, which Gantry does not support), and so does Gantry. Pure.
 */
import type { ManifestIssue } from './manifest-issue.ts';
import { PROBE_KINDS } from './probes.ts';

export const CONTAINERS = '/spec/template/spec/containers';
export const INIT_CONTAINERS = '/spec/template/spec/initContainers';

export interface PodContainer<C> {
  container: C;
  /** Its JSON pointer: /spec/template/spec/containers/N or /spec/template/spec/initContainers/N. */
  pointer: string;
  init: boolean;
  /** Where it is in the pod spec: `pod[list][index]`. */
  list: 'containers' | 'initContainers';
  index: number;
}

/**
 * Every container of a pod with its pointer: the containers, then the init containers, the order
 * in which the API server checks names (so a clash is reported at the init container).
 */
export function podContainers<C>(pod: { containers: readonly C[]; initContainers?: readonly C[] }): PodContainer<C>[] {
  return [
    ...pod.containers.map((container, index) => ({ container, pointer: `${CONTAINERS}/${index}`, init: false, list: 'containers' as const, index })),
    ...(pod.initContainers ?? []).map((container, index) => ({ container, pointer: `${INIT_CONTAINERS}/${index}`, init: true, list: 'initContainers' as const, index })),
  ];
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Probes and hooks on an init container (`c` at `base`): each an error pointing at its key. */
export function checkInitContainer(c: { readinessProbe?: unknown; livenessProbe?: unknown; startupProbe?: unknown; lifecycle?: unknown }, base: string): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const forbid = (field: string, why: string) => {
    const pointer = `${base}/${field}`;
    issues.push({ code: 'INVALID_VALUE', pointer, message: `must not be set on an init container: ${why} (Kubernetes rejects it too)`, at: { pointer, key: true } });
  };
  for (const kind of PROBE_KINDS) if (c[kind] !== undefined) forbid(kind, 'it runs to completion before the containers start, so it is never probed');
  if (c.lifecycle !== undefined) forbid('lifecycle', 'it runs to completion before the containers start, so it has no hooks');
  return issues;
}

/** Where the field walker drops an init container's restartPolicy (Kubernetes defines it, Gantry's schema does not). */
export function isInitRestartPolicy(pointer: string): boolean {
  return new RegExp(`^${INIT_CONTAINERS}/\\d+/restartPolicy$`).test(pointer);
}

/**
 * An init container's `restartPolicy`, read from the raw document (the field walker drops it):
 * `Always` makes it a sidecar (Kubernetes 1.28), which runs beside the containers instead of
 * before them; Gantry does not support that, and running it as a plain init container would hang
 * the pod on a process that never exits. Any other value the API server rejects.
 */
export function sidecarIssues(raw: unknown): ManifestIssue[] {
  const spec = isRecord(raw) && isRecord(raw.spec) && isRecord(raw.spec.template) && isRecord(raw.spec.template.spec) ? raw.spec.template.spec : undefined;
  const init = Array.isArray(spec?.initContainers) ? spec.initContainers : [];
  const issues: ManifestIssue[] = [];
  init.forEach((c, i) => {
    if (!isRecord(c) || c.restartPolicy === undefined) return;
    const pointer = `${INIT_CONTAINERS}/${i}/restartPolicy`;
    const message =
      c.restartPolicy === 'Always'
        ? 'restartPolicy: Always (a sidecar container, Kubernetes 1.28) is not supported by Gantry: an init container must run to completion before the containers start; run the sidecar as one of containers instead'
        : `must not be set (Kubernetes allows only Always, a sidecar container, which Gantry does not support), not ${JSON.stringify(c.restartPolicy)}`;
    issues.push({ code: 'INVALID_VALUE', pointer, message, at: { pointer, key: true } });
  });
  return issues;
}
