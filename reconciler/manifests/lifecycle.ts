/**
 * A container's lifecycle hooks (postStart, preStop) as written and as the agent runs them
 * (LifecycleSpec in state/records/instance.ts). Pure.
 *
 * Kubernetes' LifecycleHandler has four actions; the kubelet runs exec, httpGet and sleep, and
 * never runs tcpSocket (deprecated, kept only so old manifests still apply). Gantry does the same:
 * a tcpSocket is accepted with a warning and not recorded, so a handler holding only that is no hook.
 */
import type { Container, LifecycleHandler as ManifestHandler } from '../../schemas/generated/index.ts';
import type { LifecycleHandler, LifecycleSpec } from '../../state/records/instance.ts';
import type { ManifestIssue } from './manifest-issue.ts';
import { resolveHttpGet } from './probes.ts';

export const HOOKS = ['postStart', 'preStop'] as const;
/** What the agent can run; tcpSocket is counted for "exactly one" (Kubernetes rejects two actions) but never run. */
const ACTIONS = ['exec', 'httpGet', 'sleep', 'tcpSocket'] as const;

/** A warning as the validator returns it (ValidationWarning), pointing at the key. */
export interface LifecycleWarning {
  code: 'IGNORED_FIELD';
  pointer: string;
  message: string;
  at: { pointer: string; key: boolean };
}

/**
 * What the schema cannot say about the hooks of container `c` at `base` (…/containers/N):
 * exactly one action, a named httpGet port among the container's ports (as for probes), and a
 * sleep no longer than the pod's grace period (the API server's rule: a preStop sleep counts
 * against it, and a longer one would be cut short by SIGKILL).
 */
export function checkLifecycle(c: Container, base: string, gracePeriodSeconds: number): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  for (const hook of HOOKS) {
    const h = c.lifecycle?.[hook];
    if (!h) continue;
    const at = `${base}/lifecycle/${hook}`;
    const actions = ACTIONS.filter((a) => h[a] !== undefined);
    if (actions.length !== 1) issues.push({ code: 'INVALID_VALUE', pointer: at, message: `must have exactly one of exec, httpGet or sleep (has ${actions.length === 0 ? 'none' : actions.join(', ')})` });
    const port = h.httpGet?.port;
    if (typeof port === 'string' && !(c.ports ?? []).some((p) => p.name === port)) {
      issues.push({ code: 'INVALID_VALUE', pointer: `${at}/httpGet/port`, message: `port "${port}" is not the name of a port of container "${c.name}"` });
    }
    if (h.sleep && h.sleep.seconds > gracePeriodSeconds) {
      issues.push({ code: 'INVALID_VALUE', pointer: `${at}/sleep/seconds`, message: `must be at most terminationGracePeriodSeconds (${gracePeriodSeconds}): the container is killed when the grace period ends` });
    }
  }
  return issues;
}

/** The tcpSocket handlers of `c`: accepted, as Kubernetes accepts them, and never run. */
export function lifecycleWarnings(c: Container, base: string): LifecycleWarning[] {
  return HOOKS.filter((hook) => c.lifecycle?.[hook]?.tcpSocket !== undefined).map((hook) => {
    const pointer = `${base}/lifecycle/${hook}/tcpSocket`;
    return { code: 'IGNORED_FIELD', pointer, message: `ignored: a tcpSocket ${hook} hook is deprecated and never run by the kubelet; Gantry does not run it either (use exec, httpGet or sleep)`, at: { pointer, key: true } };
  });
}

function resolveHandler(c: Container, h: ManifestHandler): LifecycleHandler | undefined {
  if (h.exec) return { exec: { command: h.exec.command } };
  if (h.httpGet) return { httpGet: resolveHttpGet(c, h.httpGet) };
  if (h.sleep) return { sleep: { seconds: h.sleep.seconds } };
  return undefined;
}

/** The checked container's hooks as an optional ContainerSpec field: absent without any, so records of containers without hooks stay as they were. */
export function resolveLifecycle(c: Container): { lifecycle?: LifecycleSpec } {
  const out: LifecycleSpec = {};
  for (const hook of HOOKS) {
    const h = c.lifecycle?.[hook];
    const resolved = h ? resolveHandler(c, h) : undefined;
    if (resolved) out[hook] = resolved;
  }
  return Object.keys(out).length > 0 ? { lifecycle: out } : {};
}
