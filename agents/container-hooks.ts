import type { LifecycleHandler } from '../state/records/instance.ts';
import { httpGetCheck } from './http-probe.ts';
import type { CheckResult } from './probe-runner.ts';

/**
 * Lifecycle hooks as the kubelet runs them: postStart right after the container started (until it
 * returns the container does not count as running; a failure kills it), preStop before SIGTERM,
 * within terminationGracePeriodSeconds. One action each: exec (inside the container, exit 0
 * passes), httpGet (any 2xx/3xx, as for probes) or sleep.
 */

export interface HookTarget {
  /** Where httpGet connects when the handler names no host: the pod's address as the node reaches it. */
  address: string;
  /** The host port serving a containerPort (as for probes). */
  hostPort(containerPort: number): number;
  exec(command: string[], timeoutMs: number): Promise<CheckResult>;
}

export type HookName = 'postStart' | 'preStop';

/** Runs one handler, giving up at `timeoutMs` (a hook that hangs must not hold the pod forever). */
export async function runHook(handler: LifecycleHandler, target: HookTarget, timeoutMs: number, signal?: AbortSignal): Promise<CheckResult> {
  if ('exec' in handler) return target.exec(handler.exec.command, timeoutMs);
  if ('httpGet' in handler) {
    const h = handler.httpGet;
    return httpGetCheck(h, h.host ?? target.address, target.hostPort(h.port), timeoutMs);
  }
  const ms = Math.min(handler.sleep.seconds * 1000, timeoutMs);
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });
  return { ok: true };
}

/** What an event says about a hook, without its output. */
export function describeHook(handler: LifecycleHandler): string {
  if ('exec' in handler) return `exec ${handler.exec.command.join(' ')}`;
  if ('httpGet' in handler) return `httpGet ${handler.httpGet.path} on port ${handler.httpGet.port}`;
  return `sleep ${handler.sleep.seconds}s`;
}
