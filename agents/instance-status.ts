import type { ContainerSpec, ContainerStatus, InstancePhase, InstanceStatus, PortStatus } from '../state/records/instance.ts';
import type { RunningContainer, StartFailure } from './container-runtime.ts';
import type { ContainerState } from './instance-dir.ts';

/**
 * The InstanceStatus that follows from the containers of a LocalInstance (pure: no I/O). The
 * phase is the most urgent thing to know: a start in progress, a container that cannot start yet
 * (image pull), a backoff before a restart, running, or how it ended.
 */

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/** Delay before start attempt `attempts + 1` of a container that never ran (image pulls, no engine): 1 s, 2 s ... 30 s. */
export function backoffMs(restarts: number): number {
  return Math.min(BACKOFF_START_MS * 2 ** restarts, BACKOFF_MAX_MS);
}

export interface ContainerRun {
  spec: ContainerSpec;
  /** Host ports, allocated at the first start and kept across restarts so that addresses stay put. */
  ports: PortStatus[];
  restarts: number;
  /** It ran (or failed to start) before: the next start counts as a restart. */
  ran: boolean;
  /** The last process started, while it runs or after it ended (persisted for adoption). */
  last?: ContainerState;
  proc?: RunningContainer;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  /** `OOMKilled` when the runtime says so. */
  exitReason?: string;
  startError?: string;
  /** It could not start yet (image pull, engine away) and will be retried; `attempts` drives the backoff. */
  waiting?: { reason: StartFailure; message: string; attempts: number };
  /** When to (re)start it; undefined: leave it as it is (running, or finished for good). */
  nextStartAt?: number;
  /** Crashes in a row (restart-backoff.ts), and the delay chosen after the last one. */
  backoffStep: number;
  restartDelayMs?: number;
  /** Probes of the current run; their readiness verdict goes into the status. */
  probes?: { readonly ready: boolean | undefined; stop(): void };
  /** Being stopped by the agent (liveness): not to be started again until that is done. */
  stopping?: boolean;
}

export interface StatusInput {
  id: string;
  uid: string;
  node: string;
  hostIP: string;
  problem?: { reason: string; message: string };
  transient?: 'Pending' | 'Starting';
  containers: ContainerRun[];
}

export function instanceStatus(i: StatusInput): InstanceStatus {
  const containers: ContainerStatus[] = i.containers.map((c) => ({
    name: c.spec.name,
    ...(c.proc?.pid !== undefined ? { pid: c.proc.pid } : {}),
    running: c.proc !== undefined,
    ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    restarts: c.restarts,
    ports: c.ports,
    ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}),
    ...(c.finishedAt !== undefined ? { finishedAt: c.finishedAt } : {}),
  }));
  const { phase, reason, message } = phaseOf(i);
  // Readiness only where a container has a say (a readiness or startup probe); absent means "ready once Running".
  const verdicts = i.containers.map((c) => (c.proc ? c.probes?.ready : false));
  const probed = i.containers.some((c) => c.spec.readinessProbe || c.spec.startupProbe);
  const ended = i.containers.filter((c) => c.finishedAt !== undefined);
  const settled = phase === 'Exited' || phase === 'Failed';
  const exitCode = (ended.find((c) => c.exitCode !== 0) ?? ended[0])?.exitCode;
  return {
    id: i.id,
    uid: i.uid,
    node: i.node,
    phase,
    ...(probed ? { ready: phase === 'Running' && verdicts.every((v) => v !== false) } : {}),
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
    hostIP: i.hostIP,
    ...(containers[0]?.pid !== undefined ? { pid: containers[0].pid } : {}),
    ...(settled && exitCode !== undefined ? { exitCode } : {}),
    restarts: i.containers.reduce((n, c) => n + c.restarts, 0),
    ports: i.containers.flatMap((c) => c.ports),
    containers,
    ...(i.containers[0]?.startedAt !== undefined ? { startedAt: i.containers[0].startedAt } : {}),
    ...(settled && ended.length > 0 ? { finishedAt: Math.max(...ended.map((c) => c.finishedAt!)) } : {}),
    updatedAt: Date.now(),
  };
}

function phaseOf(i: StatusInput): { phase: InstancePhase; reason?: string; message?: string } {
  if (i.problem) return { phase: 'Failed', ...i.problem };
  if (i.transient) return { phase: i.transient };
  const cannotStart = i.containers.find((c) => c.proc === undefined && c.waiting && c.nextStartAt !== undefined);
  if (cannotStart?.waiting) {
    // Never ran: Pending while an image is missing; Failed when the node cannot run it at all now.
    const { reason, message } = cannotStart.waiting;
    return { phase: reason === 'RuntimeUnavailable' ? 'Failed' : 'Pending', reason, message };
  }
  const waiting = i.containers.find((c) => c.proc === undefined && c.nextStartAt !== undefined);
  if (waiting && (waiting.restartDelayMs ?? 0) > 0) {
    // The delay, not a countdown: the message must not change between two looks at the same state.
    const delay = formatDelay(waiting.restartDelayMs!);
    const code = waiting.exitCode === undefined ? 'unknown' : String(waiting.exitCode);
    const cause = waiting.exitReason ? `, ${waiting.exitReason}` : '';
    const restarts = `${waiting.restarts} restart${waiting.restarts === 1 ? '' : 's'}`;
    return { phase: 'Failed', reason: 'CrashLoopBackOff', message: `back-off ${delay} restarting failed container ${waiting.spec.name} (exit code ${code}${cause}, ${restarts})` };
  }
  if (waiting) {
    // Restarted at once (the first crash of a sequence): say how it ended meanwhile.
    return { phase: 'Failed', reason: waiting.exitReason ?? (waiting.startError !== undefined ? 'StartFailed' : 'Error'), message: `${describeEnd(waiting)}; restarting` };
  }
  if (i.containers.some((c) => c.proc)) {
    // Running all the same, but not as the manifest asks: the status must say so, or nobody would know.
    const unlimited = i.containers.find((c) => c.proc?.limitsNotEnforced);
    if (unlimited) return { phase: 'Running', reason: 'LimitsNotEnforced', message: `LimitsNotEnforced: container ${unlimited.spec.name}: ${unlimited.proc!.limitsNotEnforced}` };
    return { phase: 'Running' };
  }
  const failed = i.containers.find((c) => c.exitCode !== 0 || c.exitReason);
  if (!failed) return { phase: 'Exited' };
  const reason = failed.startError !== undefined ? 'StartFailed' : (failed.exitReason ?? 'Error');
  return { phase: 'Failed', reason, message: describeEnd(failed) };
}

function describeEnd(c: ContainerRun): string {
  if (c.startError !== undefined) return `container ${c.spec.name} failed to start: ${c.startError}`;
  const how = c.exitReason ? ` (${c.exitReason})` : '';
  if (c.exitCode === undefined) return `container ${c.spec.name} ended with an unknown exit code${how}`;
  return `container ${c.spec.name} exited with code ${c.exitCode}${how}`;
}

function formatDelay(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms / 1000}s`;
}
