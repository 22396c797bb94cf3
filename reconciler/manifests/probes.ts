import type { Container, HTTPGetAction, Probe } from '../../schemas/generated/index.ts';
import type { HttpGetProbe, ProbeSpec } from '../../state/records/instance.ts';
import type { ManifestIssue } from './manifest-issue.ts';

/**
 * Probes as written (port by name or number, fields optional) and as the agent runs them
 * (Kubernetes' defaults applied, port resolved to a containerPort). Pure.
 */

export const PROBE_KINDS = ['readinessProbe', 'livenessProbe', 'startupProbe'] as const;
export type ProbeKind = (typeof PROBE_KINDS)[number];

export const PROBE_DEFAULTS = { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 } as const;

function resolvePort(c: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  // Validation made sure the name exists; a stale record falls back to an impossible port, which fails the probe.
  return (c.ports ?? []).find((p) => p.name === port)?.containerPort ?? 0;
}

export function resolveProbe(c: Container, p: Probe): ProbeSpec {
  const tcp = p.tcpSocket;
  return {
    ...(p.httpGet ? { httpGet: resolveHttpGet(c, p.httpGet) } : {}),
    ...(tcp ? { tcpSocket: { port: resolvePort(c, tcp.port), ...(tcp.host !== undefined ? { host: tcp.host } : {}) } } : {}),
    ...(p.grpc ? { grpc: { port: p.grpc.port, ...(p.grpc.service ? { service: p.grpc.service } : {}) } } : {}),
    ...(p.exec ? { exec: { command: p.exec.command } } : {}),
    initialDelaySeconds: p.initialDelaySeconds ?? PROBE_DEFAULTS.initialDelaySeconds,
    periodSeconds: p.periodSeconds ?? PROBE_DEFAULTS.periodSeconds,
    timeoutSeconds: p.timeoutSeconds ?? PROBE_DEFAULTS.timeoutSeconds,
    successThreshold: p.successThreshold ?? PROBE_DEFAULTS.successThreshold,
    failureThreshold: p.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
    ...(p.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: p.terminationGracePeriodSeconds } : {}),
  };
}

/** Defaults (HTTP, the node's address, no headers) are left out of the record: see ProbeSpec. Lifecycle hooks' httpGet is the same action. */
export function resolveHttpGet(c: Container, h: HTTPGetAction): HttpGetProbe {
  return {
    path: withSlash(h.path ?? '/'),
    port: resolvePort(c, h.port),
    ...(h.scheme === 'HTTPS' ? { scheme: 'HTTPS' as const } : {}),
    ...(h.host !== undefined ? { host: h.host } : {}),
    ...(h.httpHeaders?.length ? { httpHeaders: h.httpHeaders.map(({ name, value }) => ({ name, value })) } : {}),
  };
}

/** The container's probes, resolved, as optional ContainerSpec fields. */
export function resolveProbes(c: Container): Partial<Record<ProbeKind, ProbeSpec>> {
  const out: Partial<Record<ProbeKind, ProbeSpec>> = {};
  for (const kind of PROBE_KINDS) {
    const p = c[kind];
    if (p) out[kind] = resolveProbe(c, p);
  }
  return out;
}

/**
 * What the schema cannot say: exactly one action, named ports that exist, thresholds of 1 where
 * Kubernetes requires them, and no terminationGracePeriodSeconds on a readiness probe (it never
 * stops the container; Kubernetes rejects it there too).
 */
export function checkProbes(c: Container, base: string): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const invalid = (pointer: string, message: string): void => void issues.push({ code: 'INVALID_VALUE', pointer, message });
  for (const kind of PROBE_KINDS) {
    const p = c[kind];
    if (!p) continue;
    const at = `${base}/${kind}`;
    const actions = (['httpGet', 'tcpSocket', 'grpc', 'exec'] as const).filter((a) => p[a] !== undefined);
    if (actions.length !== 1) invalid(at, `must have exactly one of httpGet, tcpSocket, grpc or exec (has ${actions.length === 0 ? 'none' : actions.join(', ')})`);
    for (const action of ['httpGet', 'tcpSocket'] as const) {
      const port = p[action]?.port;
      if (typeof port === 'string' && !(c.ports ?? []).some((x) => x.name === port)) {
        invalid(`${at}/${action}/port`, `port "${port}" is not the name of a port of container "${c.name}"`);
      }
    }
    if (kind !== 'readinessProbe' && p.successThreshold !== undefined && p.successThreshold !== 1) {
      invalid(`${at}/successThreshold`, `must be 1 for a ${kind}`);
    }
    if (kind === 'readinessProbe' && p.terminationGracePeriodSeconds !== undefined) {
      invalid(`${at}/terminationGracePeriodSeconds`, 'must not be set for a readinessProbe: only liveness and startup probes stop the container');
    }
  }
  return issues;
}

function withSlash(path: string): string {
  return path.startsWith('/') ? path : `/${path}`;
}
