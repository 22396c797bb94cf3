/**
 * How an instance reads to a person, in kubectl's words: the STATUS word of `kubectl get pods`
 * (Init:1/2, Init:CrashLoopBackOff, CrashLoopBackOff, Completed...) and READY as ready/total
 * containers. Shared by the CLI and the API (either may compute it from what an agent reported).
 * Pure.
 *
 * Statuses of agents older than per-container states (no `state`, no `initContainers`) read as
 * they always did: the word is the instance's phase, and READY is unknown.
 */
import type { ContainerStateName, ContainerStatus, InstancePhase } from './instance.ts';

/** What the word needs of an InstanceStatus (an API view carries the same fields). */
export interface DisplayStatus {
  phase: InstancePhase | string;
  /** The instance's readiness (InstanceStatus.ready); absent: ready once running. */
  ready?: boolean | null;
  containers?: readonly ContainerStatus[];
  initContainers?: readonly ContainerStatus[];
}

/** How many containers the pod has, from its record; absent: as many as the status lists. */
export interface DisplayRecord {
  containers: readonly unknown[];
  initContainers?: readonly unknown[];
}

/** A container's state, derived from `running` and `exitCode` when an older agent did not say. */
export function containerState(c: ContainerStatus): ContainerStateName {
  if (c.state) return c.state;
  if (c.running) return 'Running';
  return c.exitCode !== undefined || c.finishedAt !== undefined ? 'Terminated' : 'Waiting';
}

/** An init container that exited 0 is done; any other state holds the containers back. */
function initDone(c: ContainerStatus): boolean {
  return containerState(c) === 'Terminated' && c.exitCode === 0;
}

/** kubectl's word while init containers hold the pod back, or undefined once they are all done. */
function initWord(inits: readonly ContainerStatus[], total: number): string | undefined {
  for (const [i, c] of inits.entries()) {
    if (initDone(c)) continue;
    const state = containerState(c);
    if (state === 'Terminated') return `Init:${c.reason || `ExitCode:${c.exitCode ?? 'unknown'}`}`;
    // PodInitializing is the kubelet's "not started yet": the count says more.
    if (state === 'Waiting' && c.reason && c.reason !== 'PodInitializing') return `Init:${c.reason}`;
    return `Init:${i}/${total}`;
  }
  // The agent has not listed every init container yet: the next one is still to run.
  return inits.length < total ? `Init:${inits.length}/${total}` : undefined;
}

/**
 * kubectl's STATUS word. Init containers first: the first one not done gives `Init:<done>/<total>`,
 * `Init:<reason>` (CrashLoopBackOff, Error, OOMKilled...) or `Init:ExitCode:<n>`. Then the
 * containers, last to first as kubectl reads them: a waiting or terminated one's reason (a
 * terminated one without a reason, `ExitCode:<n>`), and `Completed` beside a running container is
 * `Running` (or `NotReady`). Without per-container states, the phase. Without a status, Pending.
 */
export function instanceStatusWord(status: DisplayStatus | undefined, record?: DisplayRecord): string {
  if (!status) return 'Pending';
  const inits = status.initContainers ?? [];
  const totalInit = record?.initContainers?.length ?? inits.length;
  // An agent that reports no init containers for a template with some predates them: its phase says it all.
  if (status.initContainers) {
    const init = initWord(inits, totalInit);
    if (init) return init;
  }
  let word = String(status.phase);
  let running = false;
  const containers = status.containers ?? [];
  for (let i = containers.length - 1; i >= 0; i--) {
    const c = containers[i]!;
    // Only what an agent stated: an older one's `running: false` says nothing of why.
    if (!c.state) continue;
    if ((c.state === 'Waiting' || c.state === 'Terminated') && c.reason) word = c.reason;
    else if (c.state === 'Terminated') word = `ExitCode:${c.exitCode ?? 'unknown'}`;
    else if (c.state === 'Running' && c.ready !== false) running = true;
  }
  if (word === 'Completed' && running) word = (status.ready ?? true) ? 'Running' : 'NotReady';
  return word;
}

/**
 * READY as `<ready>/<total>` of the app containers (init containers never count), when the agent
 * reports per-container readiness; undefined when it does not (older agents).
 */
export function readyContainers(status: DisplayStatus | undefined, record?: DisplayRecord): string | undefined {
  const containers = status?.containers ?? [];
  if (!containers.some((c) => c.ready !== undefined)) return undefined;
  const ready = containers.filter((c) => c.ready === true && containerState(c) === 'Running').length;
  return `${ready}/${record?.containers.length ?? containers.length}`;
}

/** Whether a status carries what the word and READY are made of (so a display can show them). */
export function hasContainerStates(status: DisplayStatus | undefined): boolean {
  return !!status && (status.initContainers !== undefined || (status.containers ?? []).some((c) => c.state !== undefined || c.ready !== undefined));
}
