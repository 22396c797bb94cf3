import type { ContainerSpec, ContainerStatus, InstancePhase, InstanceStatus, PortStatus } from '../state/records/instance.ts';
import type { RunningContainer, StartFailure } from './container-runtime.ts';
import type { SavedRun } from './runtime.ts';

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
  /** What state.json keeps of the last run, while it runs or after it ended (its runtime's saved()). */
  saved?: SavedRun;
  /** How the run before this one ended (Kubernetes' lastState.terminated). */
  lastTermination?: ContainerStatus['lastTermination'];
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
  /** The sandbox's IP, when the pod has one. */
  podIP?: string;
  problem?: { reason: string; message: string };
  transient?: 'Pending' | 'Starting';
  containers: ContainerRun[];
  /** Running, but not as the manifest asks (an emptyDir over its sizeLimit). */
  notice?: { reason: string; message: string };
  /** Init containers, and how many of them completed. */
  inits?: ContainerRun[];
  initsDone?: number;
}

/** One container as kubectl describes it: state, reason, readiness, last termination. */
function containerStatus(c: ContainerRun, initializing: boolean): ContainerStatus {
  const state = c.proc ? 'Running' : c.finishedAt !== undefined && c.nextStartAt === undefined ? 'Terminated' : 'Waiting';
  const ended = c.exitReason ?? (c.startError !== undefined ? 'StartError' : c.exitCode === 0 ? 'Completed' : 'Error');
  let reason: string | undefined;
  if (state === 'Waiting') reason = c.waiting?.reason ?? (initializing ? 'PodInitializing' : c.finishedAt === undefined ? 'ContainerCreating' : (c.restartDelayMs ?? 0) > 0 ? 'CrashLoopBackOff' : ended);
  if (state === 'Terminated') reason = ended;
  return {
    name: c.spec.name,
    ...(c.proc?.pid !== undefined ? { pid: c.proc.pid } : {}),
    running: c.proc !== undefined,
    ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
    restarts: c.restarts,
    ports: c.ports,
    ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}),
    ...(c.finishedAt !== undefined ? { finishedAt: c.finishedAt } : {}),
    ready: c.proc !== undefined && c.probes?.ready !== false,
    state,
    ...(reason ? { reason } : {}),
    ...(state === 'Waiting' && c.waiting ? { message: c.waiting.message } : {}),
    ...(c.lastTermination ? { lastTermination: c.lastTermination } : {}),
  };
}

export function instanceStatus(i: StatusInput): InstanceStatus {
  const inits = i.inits ?? [];
  const initializing = (i.initsDone ?? 0) < inits.length;
  const containers = i.containers.map((c) => containerStatus(c, initializing));
  const { phase, reason, message } = initializing && !i.problem ? initPhase(i, inits) : phaseOf(i);
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
    ...(inits.length > 0 ? { initContainers: inits.map((c) => containerStatus(c, false)) } : {}),
    ...(i.podIP ? { podIP: i.podIP } : {}),
    ...(i.containers[0]?.startedAt !== undefined ? { startedAt: i.containers[0].startedAt } : {}),
    ...(settled && ended.length > 0 ? { finishedAt: Math.max(...ended.map((c) => c.finishedAt!)) } : {}),
    updatedAt: Date.now(),
  };
}

/**
 * While init containers run the pod is Pending, with kubectl's words as the reason: Init:1/2
 * (one of two done), Init:CrashLoopBackOff, Init:Error (failed for good: restartPolicy Never),
 * Init:<why it cannot start> (Init:ImagePullFailed, Init:CreateContainerConfigError).
 */
function initPhase(i: StatusInput, inits: ContainerRun[]): { phase: InstancePhase; reason?: string; message?: string } {
  const done = i.initsDone ?? 0;
  const current = inits[done]!;
  const progress = `Init:${done}/${inits.length}`;
  if (current.waiting && !current.proc) return { phase: 'Pending', reason: `Init:${current.waiting.reason}`, message: `init container ${current.spec.name}: ${current.waiting.message}` };
  if (!current.proc && current.finishedAt !== undefined) {
    if (current.nextStartAt === undefined) return { phase: 'Failed', reason: 'Init:Error', message: `init ${describeEnd(current)}` };
    if ((current.restartDelayMs ?? 0) > 0) return { phase: 'Pending', reason: 'Init:CrashLoopBackOff', message: `back-off ${formatDelay(current.restartDelayMs!)} restarting failed init container ${current.spec.name} (${describeEnd(current)})` };
  }
  return { phase: i.transient ?? 'Pending', reason: progress };
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
    if (i.notice) return { phase: 'Running', ...i.notice };
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
