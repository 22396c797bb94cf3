import { mkdirSync } from 'node:fs';
import type { ConfigKind, ConfigVersionRecord } from '../state/records/config.ts';
import type { ContainerSpec, InstanceRecord, InstanceStatus } from '../state/records/instance.ts';
import { resolveForStart } from './container-env.ts';
import { describeHook, runHook, type HookTarget } from './container-hooks.ts';
import { StartError, type ExitInfo, type RunningContainer } from './container-runtime.ts';
import type { ContainerRuntime, PodRef, PodSandbox } from './runtime.ts';
import type { FoundContainer } from './docker-driver.ts';
import { writeInstanceState, type InstanceState } from './instance-dir.ts';
import { backoffMs, instanceStatus, type ContainerRun } from './instance-status.ts';
import { PodSetup } from './pod-setup.ts';
import { ContainerProbes, type ProbeTarget, type Unhealthy } from './probe-runner.ts';
import { containerEnv } from './process-driver.ts';
import type { BackoffConfig } from './restart-backoff.ts';
import { afterExit } from './restart-policy.ts';
import { StartInterrupted, type StartSlots } from './start-slots.ts';

/**
 * One instance (a pod) as run on this node: its init containers, run one after another to
 * completion, then its containers, each by its runtime (runtimeFor: the seam, container-runtime.ts),
 * in the pod's sandbox and with its volumes (pod-setup.ts); restart policy and backoff, probes,
 * lifecycle hooks, and the InstanceStatus that follows. Not thread-safe on its own: the agent calls
 * it under the instance's mutex, except for container exits, which only record facts and then poke.
 */

export interface InstanceHost {
  node: string;
  address: string;
  /** Something changed outside of a handler (a container ended, a backoff expired): look again. */
  poke(id: string): void;
  /** The runtime that runs a container: the one place that tells them apart. */
  runtimeFor(spec: ContainerSpec): ContainerRuntime;
  /** Records an event about an object (image pulls, restarts, probe failures). */
  event(ev: { type: 'Normal' | 'Warning'; reason: string; object: string; message: string }): void;
  /** Restart backoff of crashed containers. */
  backoff: BackoffConfig;
  /** <NAME>_SERVICE_HOST/_PORT of a namespace's services, minus the names the container sets; the host is where a container of `runtime` reaches the proxy (service-env.ts). */
  serviceEnv?(namespace: string, ownNames: string[], runtime: 'process' | 'docker'): Record<string, string>;
  /** One ConfigMap or Secret version an env or volume refers to (AgentStore.configs); undefined when not stored. */
  readConfig(namespace: string, kind: ConfigKind, name: string, version: string): Promise<ConfigVersionRecord | undefined>;
  /** Where memory-backed volumes (secrets, emptyDir medium Memory) go, and the installation scope that isolates them. */
  volumes: { memoryRoot?: string; scope: string };
  /** The node's start slots (`--concurrency`); absent: no limit. */
  startSlots?: StartSlots;
  /** After each container start: its runtime, whether it started, and how long it took (metrics). */
  started?(runtime: 'process' | 'docker', ok: boolean, seconds: number): void;
}

export type ReportStatus = (status: InstanceStatus) => Promise<void>;

/**
 * A start over within this long is reported once, when it is over. Each status write makes the
 * reconciler look at the deployment again, and the Pending and Starting of a start that takes
 * 20 ms (a process) would be two such looks competing with the start for the CPU, the second
 * delaying its reaction to the Running that follows. A start that takes longer (a pull, a wait for
 * a start slot, a busy engine) says Starting meanwhile; until then the API shows the instance as
 * assigned to its node (ContainerCreating), as before any status.
 */
const PROGRESS_REPORT_AFTER_MS = 100;

/** A run of the pod: app container or init container. */
type Run = ContainerRun & { runtime: ContainerRuntime };

export class LocalInstance {
  readonly id: string;
  readonly uid: string;
  private readonly containers: Run[];
  private readonly inits: Run[];
  /** Init containers that ran to completion, in order (the next one is inits[initsDone]). */
  private initsDone = 0;
  /** A reason the instance cannot run at all (no retry helps). */
  private readonly problem?: { reason: string; message: string };
  /** Phase while a (re)start is in progress, before the containers exist. */
  private transient?: 'Pending' | 'Starting';
  private backoffTimer?: NodeJS.Timeout;
  private released = false;
  private persisted?: string;
  /** The spec each container last started with, env resolved (container-env.ts): for exec probes and hooks of processes. */
  private readonly resolved = new Map<string, ContainerSpec>();
  private readonly pod: PodRef;
  private readonly setup: PodSetup;
  /** Set while converge starts containers: interrupt() ends their waits. */
  private starting?: AbortController;
  /** Running, but not as asked (an emptyDir over its sizeLimit): said in the status. */
  private notice?: { reason: string; message: string };

  private constructor(
    readonly record: InstanceRecord,
    readonly dir: string,
    private readonly host: InstanceHost,
  ) {
    this.id = record.id;
    this.uid = record.uid;
    const run = (spec: ContainerSpec): Run => ({ spec, runtime: host.runtimeFor(spec), ports: [], restarts: 0, ran: false, nextStartAt: 0, backoffStep: 0 });
    this.inits = (record.initContainers ?? []).map(run);
    this.containers = record.containers.map(run);
    this.problem = runtimeProblem(record);
    this.pod = { record, dir };
    this.setup = new PodSetup(this.pod, host, [...this.inits, ...this.containers]);
  }

  /** An instance nothing runs for yet. */
  static create(record: InstanceRecord, dir: string, host: InstanceHost): LocalInstance {
    return new LocalInstance(record, dir, host);
  }

  /**
   * Takes over what a previous agent started for the same uid: the sandbox, live processes and
   * containers are watched as they are (same pid or container id, no restart); ended ones are
   * reported with the code recorded for them, and the restart policy then applies.
   */
  static async adopt(record: InstanceRecord, dir: string, state: InstanceState | undefined, found: FoundContainer[], host: InstanceHost): Promise<LocalInstance> {
    const inst = new LocalInstance(record, dir, host);
    await inst.setup.adopt();
    for (const c of [...inst.inits, ...inst.containers]) {
      const adopted = await c.runtime.adopt(inst.pod, c.spec, state, found);
      if (!adopted) continue;
      Object.assign(c, { ports: inst.setup.adoptedPorts(c, adopted.ports), restarts: adopted.restarts, startedAt: adopted.startedAt, ran: true });
      c.saved = c.runtime.saved({ ...c, name: c.spec.name, proc: 'running' in adopted.result ? adopted.result.running : undefined });
      if ('running' in adopted.result) inst.watch(c, adopted.result.running);
      else inst.recordExit(c, adopted.result.exit);
    }
    // Containers that ran mean the init containers had all completed.
    inst.initsDone = inst.containers.some((c) => c.ran) ? inst.inits.length : Math.min(state?.initsDone ?? 0, inst.inits.length);
    return inst;
  }

  /**
   * Starts what should run now and arms the backoff timer for what should run later. With
   * `recheck`, first looks at containers whose exits may have gone unannounced (and at the sandbox).
   */
  async converge(report: ReportStatus, opts: { recheck?: boolean } = {}): Promise<void> {
    if (opts.recheck) {
      await Promise.all([...this.inits, ...this.containers].map((c) => c.proc?.recheck?.()));
      if (await this.setup.sandboxLost()) this.restartForNewSandbox();
      const notice = await this.setup.sizeLimitNotice();
      if (notice && notice.message !== this.notice?.message) this.event('Warning', notice.reason, notice.message);
      this.notice = notice;
    }
    const now = Date.now();
    const due = this.problem ? [] : this.runnable().filter((c) => !c.stopping && c.nextStartAt !== undefined && c.nextStartAt <= now);
    if (due.length > 0) {
      this.transient = 'Starting';
      let progress: Promise<void> | undefined;
      // A quick start is reported once, when it is over (see PROGRESS_REPORT_AFTER_MS).
      const timer = setTimeout(() => (progress = report(this.status()).catch(() => {})), PROGRESS_REPORT_AFTER_MS);
      timer.unref();
      this.starting = new AbortController();
      try {
        for (const c of due) {
          if (this.starting.signal.aborted) break;
          await this.start(c, this.starting.signal);
        }
      } finally {
        this.starting = undefined;
        clearTimeout(timer);
        // The final report below must not be overtaken by this one.
        await progress;
        // Even when a report fails (Redis away), the phase must follow the containers again.
        this.transient = undefined;
      }
    }
    this.persist();
    this.armBackoffTimer();
    await report(this.status());
  }

  /** What may start now: the next init container until all completed, then the containers. */
  private runnable(): Run[] {
    if (this.initsDone < this.inits.length) return [this.inits[this.initsDone]!];
    return this.containers;
  }

  private isInit(c: Run): boolean {
    return this.inits.includes(c);
  }

  /**
   * Ends the waits of a start in progress (for its image, for a start slot): the agent learnt that
   * the instance is no longer wanted here, and its stop waits for this start under the instance's
   * mutex. Engine calls already made are not undone; the handler that follows stops what runs.
   */
  interrupt(): void {
    this.starting?.abort();
  }

  /** A start is under way (and may be waiting: see interrupt). */
  get isStarting(): boolean {
    return this.starting !== undefined;
  }

  private async start(c: Run, signal?: AbortSignal): Promise<void> {
    const countsAsRestart = c.ran;
    const t0 = performance.now();
    const runtime = c.spec.image !== undefined ? 'docker' : 'process';
    if (c.finishedAt !== undefined) c.lastTermination = { ...(c.exitCode !== undefined ? { exitCode: c.exitCode } : {}), reason: c.exitReason ?? (c.startError !== undefined ? 'StartError' : c.exitCode === 0 ? 'Completed' : 'Error'), ...(c.startedAt !== undefined ? { startedAt: c.startedAt } : {}), finishedAt: c.finishedAt };
    Object.assign(c, { nextStartAt: undefined, exitCode: undefined, exitReason: undefined, finishedAt: undefined, startError: undefined });
    try {
      const why = c.runtime.unavailable();
      if (why) throw new StartError('RuntimeUnavailable', `container ${c.spec.name}${c.spec.image ? ` has image ${c.spec.image}` : ''}: ${why}`);
      mkdirSync(this.dir, { recursive: true });
      const report = (ev: { type: 'Normal' | 'Warning'; reason: string; message: string }) => this.event(ev.type, ev.reason, ev.message);
      // The image first, outside of a start slot: a pull that takes minutes must not hold up other pods.
      await c.runtime.prepare?.(this.pod, c.spec, report, signal);
      const restarts = countsAsRestart ? c.restarts + 1 : c.restarts;
      const slot = <T>(fn: () => Promise<T>) => (this.host.startSlots ? this.host.startSlots.run(fn, signal) : fn());
      const proc = await slot(async () => {
        // The pod's network and ports, then its volumes (config files at their versions, the downward API's podIP).
        const sandbox = await this.setup.network(c);
        const volumes = await this.setup.volumes((w) => this.event('Warning', w.reason, w.message));
        // Resolved at every start, as the kubelet does: the service variables may have changed.
        const spec = await this.resolveSpec(c, sandbox);
        return c.runtime.start({
          pod: this.pod,
          container: spec,
          ports: c.ports,
          identity: this.startEnv(c, spec),
          restarts,
          volumes,
          ...(sandbox ? { sandbox } : {}),
          report,
        });
      });
      Object.assign(c, { restarts, ran: true, waiting: undefined, startedAt: Date.now() });
      this.host.started?.(runtime, true, (performance.now() - t0) / 1000);
      c.saved = c.runtime.saved({ ...c, name: c.spec.name, proc });
      if (countsAsRestart) this.event('Normal', 'Restarted', `container ${c.spec.name} restarted (restart ${restarts})`);
      this.watch(c, proc);
      await this.postStart(c, proc);
    } catch (err) {
      // Not a failure: due again at once, for the handler that follows (which stops it, if unwanted).
      if (err instanceof StartInterrupted) {
        c.nextStartAt = Date.now();
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof StartError && err.waiting) {
        // Never ran (no image yet, no engine, config not there): retry with backoff, without counting a restart.
        const attempts = (c.waiting?.attempts ?? 0) + 1;
        // Once per cause, not per retry: the status carries it meanwhile.
        if (err.reason === 'CreateContainerConfigError' && c.waiting?.message !== message) this.event('Warning', err.reason, `container ${c.spec.name}: ${message}`);
        c.waiting = { reason: err.reason, message, attempts };
        c.nextStartAt = Date.now() + backoffMs(attempts - 1);
        return;
      }
      this.host.started?.(runtime, false, (performance.now() - t0) / 1000);
      Object.assign(c, { restarts: countsAsRestart ? c.restarts + 1 : c.restarts, ran: true, waiting: undefined, startError: message });
      this.recordExit(c, { finishedAt: Date.now() });
    }
  }

  /** Variables Gantry adds to the container's own env (they win): services, the pod's ports, identity. */
  private startEnv(c: Run, spec: ContainerSpec): Record<string, string> {
    return {
      ...this.host.serviceEnv?.(this.record.namespace, spec.env.map((e) => e.name), c.runtime.name),
      ...(c.runtime.name === 'process' ? this.setup.siblingPortEnv(this.host.address) : {}),
      ...this.identity(),
    };
  }

  /** postStart: the container is not started until it returns; a failure kills it (reason PostStartHookError). */
  private async postStart(c: Run, proc: RunningContainer): Promise<void> {
    const hook = c.spec.lifecycle?.postStart;
    if (!hook) return;
    const r = await runHook(hook, this.hookTarget(c), this.graceMs());
    if (r.ok || c.proc !== proc) return;
    this.event('Warning', 'FailedPostStartHook', `container ${c.spec.name}: postStart ${describeHook(hook)} failed: ${r.detail ?? 'failed'}`);
    this.stopRun(c, proc, 'PostStartHookError', this.graceMs(), { preStop: false });
  }

  private watch(c: Run, proc: RunningContainer): void {
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

  private probeTarget(c: Run): ProbeTarget & HookTarget {
    return {
      address: this.host.address,
      // A port the container does not declare is probed as is (a process listens where it likes).
      // Probes speak TCP: a UDP port of the same number is not theirs.
      hostPort: (containerPort) => c.ports.find((p) => p.containerPort === containerPort && p.protocol !== 'UDP')?.hostPort ?? containerPort,
      exec: async (command, timeoutMs) => {
        // An adopted container was resolved by the agent before: resolve again; Redis away must not fail the probe.
        const spec = this.resolved.get(c.spec.name) ?? (await this.resolveSpec(c, this.setup.sandbox, { quiet: true }).catch(() => c.spec));
        const env = containerEnv(spec, c.ports, this.startEnv(c, spec));
        // Adopted: the volumes were prepared by the agent before; their paths are needed again (rewriting is harmless).
        if (spec.volumeMounts?.length && this.setup.prepared.length === 0) await this.setup.volumes(() => {}).catch(() => {});
        return c.runtime.exec({ pod: this.pod, proc: c.proc, container: spec, env, volumes: this.setup.prepared }, command, timeoutMs);
      },
    };
  }

  private hookTarget(c: Run): HookTarget {
    return this.probeTarget(c);
  }

  /**
   * The container's spec with its env resolved (container-env.ts) for the runtimes, which only see
   * literals. What cannot be resolved (a version or key not there, Redis away) is a waiting
   * CreateContainerConfigError, retried with backoff: a later write of the version lets it start.
   */
  private async resolveSpec(c: Run, sandbox: PodSandbox | undefined, opts: { quiet?: boolean } = {}): Promise<ContainerSpec> {
    const { node, address } = this.host;
    const services = this.host.serviceEnv?.(this.record.namespace, [], c.runtime.name);
    const r = await resolveForStart(this.record, c.spec, { node, address, services, read: (...ref) => this.host.readConfig(...ref), ...(sandbox?.podIP ? { podIP: sandbox.podIP } : {}) });
    if (!opts.quiet) for (const w of r.warnings) this.event('Warning', w.reason, `container ${c.spec.name}: ${w.message}`);
    if ('error' in r) throw new StartError('CreateContainerConfigError', r.error);
    this.resolved.set(c.spec.name, r.spec);
    return r.spec;
  }

  private identity(): Record<string, string> {
    return { GANTRY_INSTANCE_ID: this.id, GANTRY_NODE: this.host.node, GANTRY_NAMESPACE: this.record.namespace, GANTRY_DEPLOYMENT: this.record.deployment };
  }

  private graceMs(): number {
    return (this.record.terminationGracePeriodSeconds ?? 10) * 1000;
  }

  /**
   * A failed liveness or startup probe: the container is stopped (preStop, grace period, then
   * SIGKILL) and ends as a failure, so that the restart policy and the backoff apply as to a crash.
   */
  private unhealthy(c: Run, proc: RunningContainer, why: Unhealthy): void {
    if (c.proc !== proc || this.released) return;
    this.event('Warning', why.reason, `${why.message}; restarting it`);
    // A probe's own terminationGracePeriodSeconds (Kubernetes 1.25+) wins over the instance's.
    this.stopRun(c, proc, why.reason, why.terminationGracePeriodSeconds !== undefined ? why.terminationGracePeriodSeconds * 1000 : this.graceMs());
  }

  /** Stops one run on the agent's initiative; it then ends with `reason` and the restart policy applies. */
  private stopRun(c: Run, proc: RunningContainer, reason: string, graceMs: number, opts: { preStop?: boolean } = {}): void {
    c.proc = undefined;
    c.stopping = true;
    c.probes?.stop();
    void this.stopGracefully(c, proc, graceMs, opts.preStop !== false)
      .catch(() => {})
      .finally(() => {
        c.stopping = false;
        this.recordExit(c, { finishedAt: Date.now(), reason });
        this.host.poke(this.id);
      });
  }

  /**
   * preStop, then SIGTERM with what is left of the grace period (at least 2 s, as the kubelet
   * gives), then SIGKILL. A failed preStop is an event; the stop goes on.
   */
  private async stopGracefully(c: Run, proc: RunningContainer, graceMs: number, preStop = true): Promise<void> {
    const hook = preStop ? c.spec.lifecycle?.preStop : undefined;
    const began = Date.now();
    if (hook) {
      const r = await runHook(hook, this.hookTarget(c), graceMs).catch((err: Error) => ({ ok: false, detail: err.message }));
      if (!r.ok) this.event('Warning', 'FailedPreStopHook', `container ${c.spec.name}: preStop ${describeHook(hook)} failed: ${r.detail ?? 'failed'}`);
    }
    await proc.stop(hook ? Math.max(graceMs - (Date.now() - began), 2_000) : graceMs);
  }

  private event(type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.host.event({ type, reason, object: `instance/${this.id}`, message });
  }

  private recordExit(c: Run, exit: ExitInfo): void {
    c.exitCode = exit.exitCode;
    c.exitReason = exit.reason;
    c.finishedAt = exit.finishedAt;
    const init = this.isInit(c);
    const next = afterExit(this.record.restartPolicy, { init, ...exit, startError: c.startError, startedAt: c.startedAt, backoffStep: c.backoffStep }, this.host.backoff);
    c.nextStartAt = next.kind === 'restart' ? next.at : undefined;
    // Completed: the next init container (or the containers) may start now.
    if (next.kind === 'completed') this.initsDone = Math.max(this.initsDone, this.inits.indexOf(c) + 1);
    if (next.kind !== 'restart') return;
    c.backoffStep = next.backoffStep;
    c.restartDelayMs = next.delayMs;
    if (next.delayMs > 0) {
      const code = exit.exitCode === undefined ? 'unknown' : String(exit.exitCode);
      this.event('Warning', 'BackOff', `back-off ${next.delayMs / 1000}s restarting failed ${init ? 'init container' : 'container'} ${c.spec.name} (exit code ${code}${exit.reason ? `, ${exit.reason}` : ''}, ${c.restarts} restarts)`);
    }
  }

  /** The sandbox died (pause container killed, engine restarted): its containers lost their network; all start again in a new one. */
  private restartForNewSandbox(): void {
    this.event('Normal', 'SandboxChanged', 'pod sandbox changed, it will be killed and re-created');
    for (const c of [...this.inits, ...this.containers]) {
      if (c.runtime !== this.setup.sandboxRuntime) continue;
      const proc = c.proc;
      if (proc) this.stopRun(c, proc, 'SandboxChanged', 0, { preStop: false });
    }
    // Kubernetes runs the init containers again in a new sandbox.
    this.initsDone = 0;
    for (const c of this.inits) c.nextStartAt = 0;
  }

  private armBackoffTimer(): void {
    clearTimeout(this.backoffTimer);
    const waits = this.runnable().map((c) => c.nextStartAt).filter((t): t is number => t !== undefined);
    if (waits.length === 0 || this.problem || this.released) return;
    this.backoffTimer = setTimeout(() => this.host.poke(this.id), Math.max(0, Math.min(...waits) - Date.now()));
    this.backoffTimer.unref();
  }

  /** state.json, rewritten only when it changes (converge runs on every resync). */
  private persist(): void {
    const runs = [...this.inits, ...this.containers];
    for (const c of runs) c.saved = c.runtime.saved({ ...c, name: c.spec.name, previous: c.saved });
    const state: InstanceState = {
      uid: this.uid,
      namespace: this.record.namespace,
      deployment: this.record.deployment,
      terminationGracePeriodSeconds: this.record.terminationGracePeriodSeconds,
      containers: runs.flatMap((c) => (c.saved && 'process' in c.saved ? [c.saved.process] : [])),
      docker: runs.flatMap((c) => (c.saved && 'docker' in c.saved ? [c.saved.docker] : [])),
      ...(this.inits.length > 0 ? { initsDone: this.initsDone } : {}),
    };
    const text = JSON.stringify(state);
    if (text === this.persisted || !runs.some((c) => c.ran)) return;
    writeInstanceState(this.dir, state);
    this.persisted = text;
  }

  /** Stops every container (preStop, SIGTERM, grace period, SIGKILL) and the sandbox; the instance is done afterwards. */
  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    const runs = [...this.inits, ...this.containers];
    const running = runs.flatMap((c) => (c.proc ? [[c, c.proc] as const] : []));
    this.release();
    const graceMs = opts.graceMs ?? this.graceMs();
    await Promise.all(running.map(([c, proc]) => this.stopGracefully(c, proc, graceMs)));
    for (const c of runs) c.proc = undefined;
    await this.setup.remove();
  }

  /** Stops watching and timing, leaving containers (and the sandbox) running for the next agent to adopt. */
  release(): void {
    this.released = true;
    clearTimeout(this.backoffTimer);
    for (const c of [...this.inits, ...this.containers]) {
      c.probes?.stop();
      c.proc?.unwatch();
    }
  }

  /** Engine ids of the Docker containers this instance runs, its sandbox included (anything else labelled for it is a stray). */
  containerIds(): Set<string> {
    const ids = [...this.inits, ...this.containers].flatMap((c) => (c.proc?.containerId ? [c.proc.containerId] : []));
    if (this.setup.sandbox) ids.push(this.setup.sandbox.id);
    return new Set(ids);
  }

  /** For the log endpoint: which container, and where its output is now. */
  logTarget(name?: string): { name: string; docker: boolean; containerId?: string } | undefined {
    const c = name === undefined ? this.containers[0] : [...this.containers, ...this.inits].find((x) => x.spec.name === name);
    if (!c) return undefined;
    return { name: c.spec.name, docker: c.runtime.name === 'docker', ...(c.proc?.containerId ? { containerId: c.proc.containerId } : {}) };
  }

  /** Process groups of the processes it runs now (a process's pid leads its group). */
  processGroups(): Set<number> {
    return new Set([...this.inits, ...this.containers].flatMap((c) => (c.proc?.pid !== undefined && c.runtime.name === 'process' ? [c.proc.pid] : [])));
  }

  containerNames(): string[] {
    return [...this.containers, ...this.inits].map((c) => c.spec.name);
  }

  /** Still running something, or about to: a follower of its logs keeps waiting for output. */
  isActive(): boolean {
    return !this.released && (this.transient !== undefined || [...this.inits, ...this.containers].some((c) => c.proc || c.nextStartAt !== undefined));
  }

  status(): InstanceStatus {
    return instanceStatus({
      id: this.id,
      uid: this.uid,
      node: this.host.node,
      hostIP: this.host.address,
      ...(this.setup.sandbox?.podIP ? { podIP: this.setup.sandbox.podIP } : {}),
      problem: this.problem,
      transient: this.transient,
      containers: this.containers,
      inits: this.inits,
      initsDone: this.initsDone,
      ...(this.notice ? { notice: this.notice } : {}),
    });
  }
}

/** Why this instance cannot run at all, if it cannot (a missing image or engine is retried instead). */
function runtimeProblem(record: InstanceRecord): { reason: string; message: string } | undefined {
  if (record.containers.length === 0) return { reason: 'NoCommand', message: 'instance has no containers' };
  // An image brings its own entrypoint; a process needs a command.
  const noCommand = [...(record.initContainers ?? []), ...record.containers].find((c) => !c.image && c.command.length === 0);
  if (noCommand) return { reason: 'NoCommand', message: `container ${noCommand.name} has no command` };
  return undefined;
}
