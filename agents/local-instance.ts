import { mkdirSync } from 'node:fs';
import type { ContainerSpec, ContainerStatus, InstancePhase, InstanceRecord, InstanceStatus, PortStatus } from '../reconciler/model.ts';
import { exitFilePath, writeInstanceState, type ContainerState, type InstanceState } from './instance-dir.ts';
import {
  adoptContainer,
  allocateHostPorts,
  readExitFile,
  spawnContainer,
  stopProcessGroup,
  type ContainerProcess,
  type ExitInfo,
} from './process-driver.ts';

/**
 * One instance as run on this node: its containers' processes, their restart policy and backoff,
 * and the InstanceStatus that follows from them. Not thread-safe on its own: the agent calls it
 * under the instance's mutex, except for process exits, which only record facts and then poke.
 */

export interface InstanceHost {
  node: string;
  address: string;
  /** Poll interval for processes adopted from a previous agent. */
  adoptPollMs: number;
  /** Something changed outside of a handler (a process ended, a backoff expired): look again. */
  poke(id: string): void;
}

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

/** Delay before restart number `restarts + 1`: 1 s, 2 s, 4 s ... up to 30 s. */
export function backoffMs(restarts: number): number {
  return Math.min(BACKOFF_START_MS * 2 ** restarts, BACKOFF_MAX_MS);
}

interface ContainerRun {
  spec: ContainerSpec;
  /** Host ports, allocated at the first start and kept across restarts so that addresses stay put. */
  ports: PortStatus[];
  restarts: number;
  /** The last process started, while it runs or after it ended (persisted for adoption). */
  last?: ContainerState;
  proc?: ContainerProcess;
  startedAt?: number;
  finishedAt?: number;
  exitCode?: number;
  startError?: string;
  /** When to (re)start it; undefined: leave it as it is (running, or finished for good). */
  nextStartAt?: number;
}

export type ReportStatus = (status: InstanceStatus) => Promise<void>;

export class LocalInstance {
  readonly id: string;
  readonly uid: string;
  private readonly containers: ContainerRun[];
  /** A reason the instance cannot run at all on this runtime (no retry helps). */
  private readonly problem?: { reason: string; message: string };
  /** Phase while a (re)start is in progress, before the processes exist. */
  private transient?: 'Pending' | 'Starting';
  private backoffTimer?: NodeJS.Timeout;

  private constructor(
    readonly record: InstanceRecord,
    readonly dir: string,
    private readonly host: InstanceHost,
  ) {
    this.id = record.id;
    this.uid = record.uid;
    this.containers = record.containers.map((spec) => ({ spec, ports: [], restarts: 0, nextStartAt: 0 }));
    this.problem = runtimeProblem(record);
  }

  /** An instance nothing runs for yet. */
  static create(record: InstanceRecord, dir: string, host: InstanceHost): LocalInstance {
    return new LocalInstance(record, dir, host);
  }

  /**
   * Takes over what a previous agent started for the same uid: live processes are watched as they
   * are (same pid, no restart); dead ones are reported with the code in their exit file, and the
   * restart policy then applies.
   */
  static adopt(record: InstanceRecord, dir: string, state: InstanceState, host: InstanceHost): LocalInstance {
    const inst = new LocalInstance(record, dir, host);
    for (const c of inst.containers) {
      const saved = state.containers.find((s) => s.name === c.spec.name);
      if (!saved) continue;
      Object.assign(c, { ports: saved.ports, restarts: saved.restarts, last: saved, startedAt: saved.startedAt });
      const proc = adoptContainer(dir, saved, host.adoptPollMs);
      if (proc) inst.watch(c, proc);
      else {
        const recorded = readExitFile(exitFilePath(dir, c.spec.name));
        inst.recordExit(c, { exitCode: recorded?.exitCode, finishedAt: recorded?.at ?? Date.now() });
      }
    }
    return inst;
  }

  /** Starts what should run now and arms the backoff timer for what should run later. */
  async converge(report: ReportStatus): Promise<void> {
    const now = Date.now();
    const due = this.problem ? [] : this.containers.filter((c) => c.nextStartAt !== undefined && c.nextStartAt <= now);
    if (due.length > 0) {
      try {
        if (this.containers.every((c) => c.last === undefined && c.startError === undefined)) {
          this.transient = 'Pending';
          await report(this.status());
        }
        this.transient = 'Starting';
        await report(this.status());
        for (const c of due) await this.start(c);
      } finally {
        // Even when a report fails (Redis away), the phase must follow the processes again.
        this.transient = undefined;
      }
      this.persist();
    }
    this.armBackoffTimer();
    await report(this.status());
  }

  private async start(c: ContainerRun): Promise<void> {
    const hasRunBefore = c.last !== undefined || c.startError !== undefined;
    Object.assign(c, { nextStartAt: undefined, exitCode: undefined, finishedAt: undefined, startError: undefined });
    if (hasRunBefore) c.restarts++;
    try {
      mkdirSync(this.dir, { recursive: true });
      if (c.ports.length === 0 && c.spec.ports.length > 0) {
        c.ports = await allocateHostPorts(this.host.address, c.spec.ports);
      }
      const proc = await spawnContainer({
        dir: this.dir,
        container: c.spec,
        ports: c.ports,
        identity: {
          GANTRY_INSTANCE_ID: this.id,
          GANTRY_NODE: this.host.node,
          GANTRY_NAMESPACE: this.record.namespace,
          GANTRY_DEPLOYMENT: this.record.deployment,
        },
      });
      c.startedAt = Date.now();
      c.last = { name: c.spec.name, pid: proc.pid, pgid: proc.pgid, startTime: proc.startTime, ports: c.ports, restarts: c.restarts, startedAt: c.startedAt };
      this.watch(c, proc);
    } catch (err) {
      c.startError = err instanceof Error ? err.message : String(err);
      this.recordExit(c, { finishedAt: Date.now() });
    }
  }

  private watch(c: ContainerRun, proc: ContainerProcess): void {
    c.proc = proc;
    c.nextStartAt = undefined;
    proc.onExit((exit) => {
      if (c.proc !== proc) return;
      c.proc = undefined;
      this.recordExit(c, exit);
      this.host.poke(this.id);
    });
  }

  private recordExit(c: ContainerRun, exit: ExitInfo): void {
    c.exitCode = exit.exitCode;
    c.finishedAt = exit.finishedAt;
    // From the exit, not from now: a container that died long before an agent restart goes again at once.
    c.nextStartAt = this.wantsRestart(exit.exitCode, c.startError) ? exit.finishedAt + backoffMs(c.restarts) : undefined;
  }

  private wantsRestart(exitCode: number | undefined, startError: string | undefined): boolean {
    switch (this.record.restartPolicy) {
      case 'Always':
        return true;
      case 'OnFailure':
        // Not knowing how it ended, or not starting at all, counts as a failure.
        return startError !== undefined || exitCode !== 0;
      case 'Never':
        return false;
    }
  }

  private armBackoffTimer(): void {
    clearTimeout(this.backoffTimer);
    const waits = this.containers.map((c) => c.nextStartAt).filter((t): t is number => t !== undefined);
    if (waits.length === 0 || this.problem) return;
    this.backoffTimer = setTimeout(() => this.host.poke(this.id), Math.max(0, Math.min(...waits) - Date.now()));
    this.backoffTimer.unref();
  }

  private persist(): void {
    writeInstanceState(this.dir, {
      uid: this.uid,
      namespace: this.record.namespace,
      deployment: this.record.deployment,
      terminationGracePeriodSeconds: this.record.terminationGracePeriodSeconds,
      containers: this.containers.flatMap((c) => (c.last ? [{ ...c.last, ports: c.ports, restarts: c.restarts }] : [])),
    });
  }

  /** Stops every process (SIGTERM, grace period, SIGKILL); the instance is done afterwards. */
  async stop(): Promise<void> {
    this.release();
    const graceMs = (this.record.terminationGracePeriodSeconds ?? 10) * 1000;
    await Promise.all(this.containers.map((c) => (c.last && c.proc ? stopProcessGroup(c.last, graceMs) : undefined)));
    for (const c of this.containers) c.proc = undefined;
  }

  /** Stops watching and timing, leaving processes running for the next agent to adopt. */
  release(): void {
    clearTimeout(this.backoffTimer);
    for (const c of this.containers) c.proc?.unwatch();
  }

  status(): InstanceStatus {
    const containers: ContainerStatus[] = this.containers.map((c) => ({
      name: c.spec.name,
      ...(c.proc ? { pid: c.proc.pid } : {}),
      running: c.proc !== undefined,
      ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}),
      restarts: c.restarts,
      ports: c.ports,
      ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}),
      ...(c.finishedAt !== undefined ? { finishedAt: c.finishedAt } : {}),
    }));
    const { phase, reason, message } = this.phase();
    const ended = this.containers.filter((c) => c.finishedAt !== undefined);
    const settled = phase === 'Exited' || phase === 'Failed';
    const exitCode = (ended.find((c) => c.exitCode !== 0) ?? ended[0])?.exitCode;
    const status: InstanceStatus = {
      id: this.id,
      uid: this.uid,
      node: this.host.node,
      phase,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
      hostIP: this.host.address,
      ...(containers[0]?.pid !== undefined ? { pid: containers[0].pid } : {}),
      ...(settled && exitCode !== undefined ? { exitCode } : {}),
      restarts: this.containers.reduce((n, c) => n + c.restarts, 0),
      ports: this.containers.flatMap((c) => c.ports),
      containers,
      ...(this.containers[0]?.startedAt !== undefined ? { startedAt: this.containers[0].startedAt } : {}),
      ...(settled && ended.length > 0 ? { finishedAt: Math.max(...ended.map((c) => c.finishedAt!)) } : {}),
      updatedAt: Date.now(),
    };
    return status;
  }

  private phase(): { phase: InstancePhase; reason?: string; message?: string } {
    if (this.problem) return { phase: 'Failed', ...this.problem };
    if (this.transient) return { phase: this.transient };
    const waiting = this.containers.find((c) => c.proc === undefined && c.nextStartAt !== undefined);
    if (waiting) {
      // The delay, not a countdown: the message must not change between two looks at the same state.
      const delay = backoffMs(waiting.restarts) / 1000;
      return { phase: 'Failed', reason: 'BackOff', message: `${describeEnd(waiting)}; back-off ${delay}s before restarting` };
    }
    if (this.containers.some((c) => c.proc)) return { phase: 'Running' };
    const failed = this.containers.find((c) => c.exitCode !== 0);
    if (!failed) return { phase: 'Exited' };
    return { phase: 'Failed', reason: failed.startError !== undefined ? 'StartFailed' : 'Error', message: describeEnd(failed) };
  }
}

function describeEnd(c: ContainerRun): string {
  if (c.startError !== undefined) return `container ${c.spec.name} failed to start: ${c.startError}`;
  if (c.exitCode === undefined) return `container ${c.spec.name} ended with an unknown exit code`;
  return `container ${c.spec.name} exited with code ${c.exitCode}`;
}

/** Why the process runtime cannot run this instance at all, if it cannot. */
function runtimeProblem(record: InstanceRecord): { reason: string; message: string } | undefined {
  const withImage = record.containers.find((c) => c.image);
  if (record.runtime !== 'process' || withImage) {
    const what = withImage ? `container ${withImage.name} has image ${withImage.image}` : `runtime ${record.runtime} requested`;
    return { reason: 'RuntimeUnavailable', message: `${what}: this node runs only image-less containers as processes` };
  }
  const noCommand = record.containers.find((c) => c.command.length === 0);
  if (noCommand) return { reason: 'NoCommand', message: `container ${noCommand.name} has no command` };
  if (record.containers.length === 0) return { reason: 'NoCommand', message: 'instance has no containers' };
  return undefined;
}
