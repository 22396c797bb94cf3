import { mkdirSync } from 'node:fs';
import type { ConfigKind, ConfigVersionRecord } from '../state/records/config.ts';
import type { ContainerSpec, InstanceRecord, InstanceStatus } from '../state/records/instance.ts';
import { resolveForStart } from './container-env.ts';
import { StartError, type ExitInfo, type RunningContainer } from './container-runtime.ts';
import type { DockerDriver, FoundContainer } from './docker-driver.ts';
import { exitFilePath, writeInstanceState, type ContainerState, type DockerContainerState, type InstanceState } from './instance-dir.ts';
import { backoffMs, instanceStatus, type ContainerRun } from './instance-status.ts';
import { ContainerProbes, execCheck, type ProbeTarget, type Unhealthy } from './probe-runner.ts';
import { adoptContainer, allocateHostPorts, containerEnv, readExitFile, spawnContainer } from './process-driver.ts';
import { nextBackoffStep, restartDelayMs, type BackoffConfig } from './restart-backoff.ts';

/**
 * One instance as run on this node: its containers (processes for image-less ones, Docker
 * containers for those with an image), their restart policy and backoff, and the InstanceStatus
 * that follows from them. Not thread-safe on its own: the agent calls it under the instance's
 * mutex, except for container exits, which only record facts and then poke.
 */

export interface InstanceHost {
  node: string;
  address: string;
  /** Poll interval for processes adopted from a previous agent. */
  adoptPollMs: number;
  /** Something changed outside of a handler (a container ended, a backoff expired): look again. */
  poke(id: string): void;
  /** The Docker driver while the engine answers (and Docker is enabled); else why not. */
  docker(): DockerDriver | string;
  /** Records an event about an object (image pulls, restarts, probe failures). */
  event(ev: { type: 'Normal' | 'Warning'; reason: string; object: string; message: string }): void;
  /** Restart backoff of crashed containers. */
  backoff: BackoffConfig;
  /** <NAME>_SERVICE_HOST/_PORT of a namespace's services, minus the names the container sets; the host is where a container of `runtime` reaches the proxy (service-env.ts). */
  serviceEnv?(namespace: string, ownNames: string[], runtime: 'process' | 'docker'): Record<string, string>;
  /** One ConfigMap or Secret version an env refers to (AgentStore.configs); undefined when not stored. */
  readConfig(namespace: string, kind: ConfigKind, name: string, version: string): Promise<ConfigVersionRecord | undefined>;
}

export type ReportStatus = (status: InstanceStatus) => Promise<void>;

export class LocalInstance {
  readonly id: string;
  readonly uid: string;
  private readonly containers: ContainerRun[];
  /** A reason the instance cannot run at all (no retry helps). */
  private readonly problem?: { reason: string; message: string };
  /** Phase while a (re)start is in progress, before the containers exist. */
  private transient?: 'Pending' | 'Starting';
  private backoffTimer?: NodeJS.Timeout;
  private released = false;
  private persisted?: string;
  /** The spec each container last started with, env resolved (container-env.ts): for exec probes of processes. */
  private readonly resolved = new Map<string, ContainerSpec>();

  private constructor(
    readonly record: InstanceRecord,
    readonly dir: string,
    private readonly host: InstanceHost,
  ) {
    this.id = record.id;
    this.uid = record.uid;
    this.containers = record.containers.map((spec) => ({ spec, ports: [], restarts: 0, ran: false, nextStartAt: 0, backoffStep: 0 }));
    this.problem = runtimeProblem(record);
  }

  /** An instance nothing runs for yet. */
  static create(record: InstanceRecord, dir: string, host: InstanceHost): LocalInstance {
    return new LocalInstance(record, dir, host);
  }

  /**
   * Takes over what a previous agent started for the same uid: live processes and containers are
   * watched as they are (same pid or container id, no restart); ended ones are reported with the
   * code recorded for them, and the restart policy then applies.
   */
  static async adopt(record: InstanceRecord, dir: string, state: InstanceState | undefined, found: FoundContainer[], host: InstanceHost): Promise<LocalInstance> {
    const inst = new LocalInstance(record, dir, host);
    for (const c of inst.containers) {
      if (c.spec.image) await inst.adoptDocker(c, found.find((f) => f.container === c.spec.name), state?.docker?.find((s) => s.name === c.spec.name));
      else inst.adoptProcess(c, state?.containers.find((s) => s.name === c.spec.name));
    }
    return inst;
  }

  private adoptProcess(c: ContainerRun, saved: ContainerState | undefined): void {
    if (!saved) return;
    Object.assign(c, { ports: saved.ports, restarts: saved.restarts, last: saved, startedAt: saved.startedAt, ran: true });
    const proc = adoptContainer(this.dir, saved, this.host.adoptPollMs);
    if (proc) this.watch(c, proc);
    else {
      const recorded = readExitFile(exitFilePath(this.dir, c.spec.name));
      this.recordExit(c, { exitCode: recorded?.exitCode, finishedAt: recorded?.at ?? Date.now() });
    }
  }

  private async adoptDocker(c: ContainerRun, found: FoundContainer | undefined, saved: DockerContainerState | undefined): Promise<void> {
    const docker = this.host.docker();
    if (found && typeof docker !== 'string') {
      Object.assign(c, { ports: found.ports, restarts: found.restarts, startedAt: found.startedAt, ran: true });
      const adopted = await docker.adopt(found, this.dir);
      if ('running' in adopted) this.watch(c, adopted.running);
      else this.recordExit(c, adopted.exit);
    } else if (saved) {
      Object.assign(c, { ports: saved.ports, restarts: saved.restarts, startedAt: saved.startedAt, ran: true });
      // Ended and removed before; or removed while no agent was watching, code unknown.
      this.recordExit(c, saved.exit ?? { finishedAt: Date.now() });
    }
  }

  /**
   * Starts what should run now and arms the backoff timer for what should run later. With
   * `recheck`, first looks at containers whose exits may have gone unannounced.
   */
  async converge(report: ReportStatus, opts: { recheck?: boolean } = {}): Promise<void> {
    if (opts.recheck) await Promise.all(this.containers.map((c) => c.proc?.recheck?.()));
    const now = Date.now();
    const due = this.problem ? [] : this.containers.filter((c) => !c.stopping && c.nextStartAt !== undefined && c.nextStartAt <= now);
    if (due.length > 0) {
      try {
        if (this.containers.every((c) => !c.ran)) {
          this.transient = 'Pending';
          await report(this.status());
        }
        this.transient = 'Starting';
        await report(this.status());
        for (const c of due) await this.start(c);
      } finally {
        // Even when a report fails (Redis away), the phase must follow the containers again.
        this.transient = undefined;
      }
    }
    this.persist();
    this.armBackoffTimer();
    await report(this.status());
  }

  private async start(c: ContainerRun): Promise<void> {
    const countsAsRestart = c.ran;
    Object.assign(c, { nextStartAt: undefined, exitCode: undefined, exitReason: undefined, finishedAt: undefined, startError: undefined });
    try {
      mkdirSync(this.dir, { recursive: true });
      // Resolved at every start, as the kubelet does: the service variables may have changed.
      const spec = await this.resolveSpec(c);
      // Allocated host ports are kept across restarts; fixed hostPorts are checked at every start.
      if (c.spec.ports.length > 0 && (c.ports.length === 0 || c.spec.ports.some((p) => p.hostPort))) {
        c.ports = await allocateHostPorts(this.host.address, c.spec.ports, c.ports);
      }
      // Services of the namespace as they are now (Kubernetes' docker-links style variables).
      const identity = { ...this.host.serviceEnv?.(this.record.namespace, spec.env.map((e) => e.name), c.spec.image ? 'docker' : 'process'), ...this.identity() };
      const restarts = countsAsRestart ? c.restarts + 1 : c.restarts;
      let proc: RunningContainer;
      if (c.spec.image) {
        const docker = this.host.docker();
        if (typeof docker === 'string') throw new StartError('RuntimeUnavailable', `container ${c.spec.name} has image ${c.spec.image}: ${docker}`);
        proc = await docker.start({
          record: this.record,
          dir: this.dir,
          container: spec,
          ports: c.ports,
          identity,
          restarts,
          report: (ev) => this.host.event({ ...ev, object: `instance/${this.id}` }),
          ...(this.record.imagePullSecrets?.length
            ? { pullSecrets: { namespace: this.record.namespace, refs: this.record.imagePullSecrets, read: (name: string, version: string) => this.host.readConfig(this.record.namespace, 'Secret', name, version) } }
            : {}),
        });
        c.last = undefined;
      } else {
        const spawned = await spawnContainer({ dir: this.dir, container: spec, ports: c.ports, identity });
        proc = spawned;
        c.last = { name: c.spec.name, pid: spawned.pid, pgid: spawned.pgid, startTime: spawned.startTime, ports: c.ports, restarts, startedAt: Date.now() };
      }
      Object.assign(c, { restarts, ran: true, waiting: undefined, startedAt: c.last?.startedAt ?? Date.now() });
      if (countsAsRestart) this.event('Normal', 'Restarted', `container ${c.spec.name} restarted (restart ${restarts})`);
      this.watch(c, proc);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof StartError && err.waiting) {
        // Never ran (no image yet, no engine, env config not there): retry with backoff, without counting a restart.
        const attempts = (c.waiting?.attempts ?? 0) + 1;
        // Once per cause, not per retry: the status carries it meanwhile.
        if (err.reason === 'CreateContainerConfigError' && c.waiting?.message !== message) this.event('Warning', err.reason, `container ${c.spec.name}: ${message}`);
        c.waiting = { reason: err.reason, message, attempts };
        c.nextStartAt = Date.now() + backoffMs(attempts - 1);
        return;
      }
      Object.assign(c, { restarts: countsAsRestart ? c.restarts + 1 : c.restarts, ran: true, waiting: undefined, startError: message });
      this.recordExit(c, { finishedAt: Date.now() });
    }
  }

  private watch(c: ContainerRun, proc: RunningContainer): void {
    c.proc = proc;
    c.nextStartAt = undefined;
    c.probes?.stop();
    c.probes = undefined;
    if (ContainerProbes.wanted(c.spec)) {
      const probes = new ContainerProbes(c.spec, this.probeTarget(c), () => this.host.poke(this.id), (why) => this.unhealthy(c, proc, why));
      c.probes = probes;
      probes.start(c.startedAt ?? Date.now());
    }
    proc.onExit((exit) => {
      if (c.proc !== proc) return;
      c.proc = undefined;
      c.probes?.stop();
      this.recordExit(c, exit);
      this.host.poke(this.id);
    });
  }

  private probeTarget(c: ContainerRun): ProbeTarget {
    return {
      address: this.host.address,
      // A port the container does not declare is probed as is (a process listens where it likes).
      // Probes speak TCP: a UDP port of the same number is not theirs.
      hostPort: (containerPort) => c.ports.find((p) => p.containerPort === containerPort && p.protocol !== 'UDP')?.hostPort ?? containerPort,
      exec: async (command, timeoutMs) => {
        if (c.spec.image) {
          // Inside the container, as Kubernetes runs exec probes.
          const docker = this.host.docker();
          const containerId = c.proc?.containerId;
          if (typeof docker === 'string') return { ok: false, detail: `exec probe: ${docker}` };
          if (!containerId) return { ok: false, detail: 'exec probe: the container is not running' };
          return docker.exec(containerId, command, timeoutMs);
        }
        // An adopted process was resolved by the agent before: resolve again; Redis away must not fail the probe.
        const spec = this.resolved.get(c.spec.name) ?? (await this.resolveSpec(c, { quiet: true }).catch(() => c.spec));
        const env = containerEnv(spec, c.ports, this.identity());
        return execCheck(command, { cwd: this.dir, env, timeoutMs });
      },
    };
  }

  /**
   * The container's spec with its env resolved (container-env.ts) for the runtimes, which only see
   * literals. What cannot be resolved (a version or key not there, Redis away) is a waiting
   * CreateContainerConfigError, retried with backoff: a later write of the version lets it start.
   */
  private async resolveSpec(c: ContainerRun, opts: { quiet?: boolean } = {}): Promise<ContainerSpec> {
    const { node, address } = this.host;
    const services = this.host.serviceEnv?.(this.record.namespace, [], c.spec.image ? 'docker' : 'process');
    const r = await resolveForStart(this.record, c.spec, { node, address, services, read: (...ref) => this.host.readConfig(...ref) });
    if (!opts.quiet) for (const w of r.warnings) this.event('Warning', w.reason, `container ${c.spec.name}: ${w.message}`);
    if ('error' in r) throw new StartError('CreateContainerConfigError', r.error);
    this.resolved.set(c.spec.name, r.spec);
    return r.spec;
  }

  private identity(): Record<string, string> {
    return { GANTRY_INSTANCE_ID: this.id, GANTRY_NODE: this.host.node, GANTRY_NAMESPACE: this.record.namespace, GANTRY_DEPLOYMENT: this.record.deployment };
  }

  /**
   * A failed liveness or startup probe: the container is stopped (grace period, then SIGKILL) and
   * ends as a failure, so that the restart policy and the backoff apply as to a crash.
   */
  private unhealthy(c: ContainerRun, proc: RunningContainer, why: Unhealthy): void {
    if (c.proc !== proc || this.released) return;
    this.event('Warning', why.reason, `${why.message}; restarting it`);
    c.proc = undefined;
    c.stopping = true;
    // A probe's own terminationGracePeriodSeconds (Kubernetes 1.25+) wins over the instance's.
    const graceMs = (why.terminationGracePeriodSeconds ?? this.record.terminationGracePeriodSeconds ?? 10) * 1000;
    void proc
      .stop(graceMs)
      .catch(() => {})
      .finally(() => {
        c.stopping = false;
        this.recordExit(c, { finishedAt: Date.now(), reason: why.reason });
        this.host.poke(this.id);
      });
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.host.event({ type, reason, object: `instance/${this.id}`, message });
  }

  private recordExit(c: ContainerRun, exit: ExitInfo): void {
    c.exitCode = exit.exitCode;
    c.exitReason = exit.reason;
    c.finishedAt = exit.finishedAt;
    if (!this.wantsRestart(exit.exitCode, c.startError)) {
      c.nextStartAt = undefined;
      return;
    }
    c.backoffStep = nextBackoffStep(c.backoffStep, c.startedAt, exit.finishedAt, this.host.backoff);
    c.restartDelayMs = restartDelayMs(c.backoffStep - 1, this.host.backoff);
    // From the exit, not from now: a container that died long before an agent restart goes again at once.
    c.nextStartAt = exit.finishedAt + c.restartDelayMs;
    if (c.restartDelayMs > 0) {
      const code = exit.exitCode === undefined ? 'unknown' : String(exit.exitCode);
      this.event('Warning', 'BackOff', `back-off ${c.restartDelayMs / 1000}s restarting failed container ${c.spec.name} (exit code ${code}${exit.reason ? `, ${exit.reason}` : ''}, ${c.restarts} restarts)`);
    }
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
    if (waits.length === 0 || this.problem || this.released) return;
    this.backoffTimer = setTimeout(() => this.host.poke(this.id), Math.max(0, Math.min(...waits) - Date.now()));
    this.backoffTimer.unref();
  }

  /** state.json, rewritten only when it changes (converge runs on every resync). */
  private persist(): void {
    const state: InstanceState = {
      uid: this.uid,
      namespace: this.record.namespace,
      deployment: this.record.deployment,
      terminationGracePeriodSeconds: this.record.terminationGracePeriodSeconds,
      containers: this.containers.flatMap((c) => (c.last ? [{ ...c.last, ports: c.ports, restarts: c.restarts }] : [])),
      docker: this.containers.flatMap((c) =>
        c.spec.image && c.ran
          ? [{
              name: c.spec.name,
              ...(c.proc?.containerId ? { containerId: c.proc.containerId } : {}),
              ports: c.ports,
              restarts: c.restarts,
              ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}),
              ...(!c.proc && c.finishedAt !== undefined ? { exit: { exitCode: c.exitCode, finishedAt: c.finishedAt, ...(c.exitReason ? { reason: c.exitReason } : {}) } } : {}),
            }]
          : [],
      ),
    };
    const text = JSON.stringify(state);
    if (text === this.persisted || !this.containers.some((c) => c.ran)) return;
    writeInstanceState(this.dir, state);
    this.persisted = text;
  }

  /** Stops every container (SIGTERM, grace period, SIGKILL); the instance is done afterwards. */
  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    const running = this.containers.flatMap((c) => (c.proc ? [c.proc] : []));
    this.release();
    const graceMs = opts.graceMs ?? (this.record.terminationGracePeriodSeconds ?? 10) * 1000;
    await Promise.all(running.map((p) => p.stop(graceMs)));
    for (const c of this.containers) c.proc = undefined;
  }

  /** Stops watching and timing, leaving containers running for the next agent to adopt. */
  release(): void {
    this.released = true;
    clearTimeout(this.backoffTimer);
    for (const c of this.containers) {
      c.probes?.stop();
      c.proc?.unwatch();
    }
  }

  /** Engine ids of the Docker containers this instance runs (anything else labelled for it is a stray). */
  containerIds(): Set<string> {
    return new Set(this.containers.flatMap((c) => (c.proc?.containerId ? [c.proc.containerId] : [])));
  }

  /** For the log endpoint: which container, and where its output is now. */
  logTarget(name?: string): { name: string; docker: boolean; containerId?: string } | undefined {
    const c = name === undefined ? this.containers[0] : this.containers.find((x) => x.spec.name === name);
    if (!c) return undefined;
    return { name: c.spec.name, docker: !!c.spec.image, ...(c.proc?.containerId ? { containerId: c.proc.containerId } : {}) };
  }

  /** Process groups of the processes it runs now (a process's pid leads its group). */
  processGroups(): Set<number> {
    return new Set(this.containers.flatMap((c) => (c.proc?.pid !== undefined && !c.spec.image ? [c.proc.pid] : [])));
  }

  containerNames(): string[] {
    return this.containers.map((c) => c.spec.name);
  }

  /** Still running something, or about to: a follower of its logs keeps waiting for output. */
  isActive(): boolean {
    return !this.released && (this.transient !== undefined || this.containers.some((c) => c.proc || c.nextStartAt !== undefined));
  }

  status(): InstanceStatus {
    return instanceStatus({ id: this.id, uid: this.uid, node: this.host.node, hostIP: this.host.address, problem: this.problem, transient: this.transient, containers: this.containers });
  }
}

/** Why this instance cannot run at all, if it cannot (a missing image or engine is retried instead). */
function runtimeProblem(record: InstanceRecord): { reason: string; message: string } | undefined {
  if (record.containers.length === 0) return { reason: 'NoCommand', message: 'instance has no containers' };
  // An image brings its own entrypoint; a process needs a command.
  const noCommand = record.containers.find((c) => !c.image && c.command.length === 0);
  if (noCommand) return { reason: 'NoCommand', message: `container ${noCommand.name} has no command` };
  return undefined;
}
