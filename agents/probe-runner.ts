import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { ContainerSpec, ProbeSpec } from '../state/records/instance.ts';
import { clampDelay } from '../lib/timer.ts';
import { grpcHealthCheck } from './grpc-health.ts';
import { httpGetCheck } from './http-probe.ts';
import { initialProbeState, nextProbeState, type CheckResult, type ProbeState } from './probe-state.ts';

/**
 * Runs the probes of one running container on timers. The startup probe goes first; until it has
 * passed, liveness and readiness are not run (a slow starter is not killed for being slow). A
 * failed startup or liveness probe is reported once through `unhealthy`; the owner then restarts
 * the container and starts a new runner for the new run. Readiness changes go through `changed`.
 */

export type { CheckResult } from './probe-state.ts';

export interface ProbeTarget {
  /** Where the container answers: the node address (a probe's `host` replaces it). */
  address: string;
  /**
   * The host port for a containerPort (process: the allocated port; Docker: the one published on
   * the node address); a port the container does not declare is returned as is.
   */
  hostPort(containerPort: number): number;
  /** Runs an exec probe's command for this container. */
  exec(command: string[], timeoutMs: number): Promise<CheckResult>;
}

export type Unhealthy = {
  reason: 'LivenessProbeFailed' | 'StartupProbeFailed';
  message: string;
  /** The failed probe's own grace period for stopping the container (Kubernetes 1.25+); absent: the instance's. */
  terminationGracePeriodSeconds?: number;
};

type Kind = 'startup' | 'liveness' | 'readiness';

export class ContainerProbes {
  private readonly states = new Map<Kind, ProbeState>();
  private readonly timers = new Map<Kind, NodeJS.Timeout>();
  private started: boolean;
  private stopped = false;

  constructor(
    private readonly spec: ContainerSpec,
    private readonly target: ProbeTarget,
    private readonly changed: () => void,
    private readonly unhealthy: (why: Unhealthy) => void,
  ) {
    this.started = !spec.startupProbe;
    if (spec.readinessProbe) this.states.set('readiness', initialProbeState(false));
    if (spec.livenessProbe) this.states.set('liveness', initialProbeState(true));
    if (spec.startupProbe) this.states.set('startup', initialProbeState(false));
  }

  /** Has any probe: readiness needs the runner even without a readiness probe (startup gates it). */
  static wanted(spec: ContainerSpec): boolean {
    return !!(spec.readinessProbe || spec.livenessProbe || spec.startupProbe);
  }

  /** Undefined: this container has no say in readiness (no readiness or startup probe). */
  get ready(): boolean | undefined {
    if (!this.spec.readinessProbe && !this.spec.startupProbe) return undefined;
    return this.started && (this.states.get('readiness')?.passing ?? true);
  }

  /** Starts the timers; initial delays count from when the container started (it may be adopted). */
  start(startedAt: number): void {
    if (this.started) {
      this.schedule('liveness', startedAt);
      this.schedule('readiness', startedAt);
    } else this.schedule('startup', startedAt);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private probeOf(kind: Kind): ProbeSpec | undefined {
    return kind === 'startup' ? this.spec.startupProbe : kind === 'liveness' ? this.spec.livenessProbe : this.spec.readinessProbe;
  }

  private schedule(kind: Kind, startedAt?: number): void {
    const probe = this.probeOf(kind);
    if (!probe || this.stopped) return;
    const timer = setTimeout(() => void this.run(kind, probe), probeDelayMs(probe, startedAt, Date.now()));
    timer.unref();
    this.timers.set(kind, timer);
  }

  private async run(kind: Kind, probe: ProbeSpec): Promise<void> {
    const result = await check(probe, this.target).catch((err: unknown) => ({ ok: false, detail: String(err) }));
    if (this.stopped) return;
    const before = this.states.get(kind)!;
    const after = nextProbeState(before, result.ok, probe);
    this.states.set(kind, after);
    const name = `${kind[0]!.toUpperCase()}${kind.slice(1)} probe`;
    if (kind === 'startup') {
      if (after.passing) {
        this.started = true;
        this.timers.delete('startup');
        this.start(Date.now());
        this.changed();
        return;
      }
      if (after.failures >= probe.failureThreshold) {
        this.stop();
        this.unhealthy({ reason: 'StartupProbeFailed', message: `${name} of container ${this.spec.name} failed ${after.failures} times: ${result.detail ?? 'failed'}`, ...graceOf(probe) });
        return;
      }
    } else if (kind === 'liveness' && !after.passing) {
      this.stop();
      this.unhealthy({ reason: 'LivenessProbeFailed', message: `${name} of container ${this.spec.name} failed ${after.failures} times: ${result.detail ?? 'failed'}`, ...graceOf(probe) });
      return;
    } else if (kind === 'readiness' && after.passing !== before.passing) {
      this.changed();
    }
    this.schedule(kind);
  }
}

function graceOf(probe: ProbeSpec): Pick<Unhealthy, 'terminationGracePeriodSeconds'> {
  return probe.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: probe.terminationGracePeriodSeconds } : {};
}

/**
 * When a probe runs next: its initial delay after the start, else a period after the last check.
 * Clamped, as the values come from a record: a timer past 2^31-1 ms would fire at once, every time.
 */
export function probeDelayMs(probe: Pick<ProbeSpec, 'initialDelaySeconds' | 'periodSeconds'>, startedAt: number | undefined, now: number): number {
  return clampDelay(startedAt !== undefined ? startedAt + probe.initialDelaySeconds * 1000 - now : probe.periodSeconds * 1000);
}

/** One check of a probe; never throws. */
export async function check(probe: ProbeSpec, target: ProbeTarget): Promise<CheckResult> {
  // At least 1 ms (a timeout of 0 would never fire), at most what a timer holds.
  const timeoutMs = Math.max(1, clampDelay(probe.timeoutSeconds * 1000));
  // `host` changes where to connect, never the port mapping: the container answers on its host port.
  if (probe.httpGet) return httpGetCheck(probe.httpGet, probe.httpGet.host ?? target.address, target.hostPort(probe.httpGet.port), timeoutMs);
  if (probe.tcpSocket) return tcpCheck(probe.tcpSocket.host ?? target.address, target.hostPort(probe.tcpSocket.port), timeoutMs);
  if (probe.grpc) return grpcHealthCheck({ host: target.address, port: target.hostPort(probe.grpc.port), service: probe.grpc.service ?? '', timeoutMs });
  if (probe.exec) return target.exec(probe.exec.command, timeoutMs);
  return { ok: false, detail: 'probe has no action' };
}

function tcpCheck(address: string, port: number, timeoutMs: number): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const where = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    const done = (r: CheckResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, detail: `TCP ${where}: no connection within ${timeoutMs / 1000}s` }));
    socket.once('connect', () => done({ ok: true }));
    socket.once('error', (err) => done({ ok: false, detail: `TCP ${where}: ${err.message}` }));
  });
}

/** Runs an exec probe's command as a process: exit 0 passes; killed (group-wide) at the timeout. */
export function execCheck(command: string[], opts: { cwd: string; env: Record<string, string>; timeoutMs: number }): Promise<CheckResult> {
  return new Promise((resolve) => {
    // Its own group, so that a timeout kills what it started too, and the agent's group is never touched.
    const child = spawn(command[0]!, command.slice(1), { cwd: opts.cwd, env: opts.env, stdio: 'ignore', detached: true });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      resolve({ ok: false, detail: `exec ${command.join(' ')}: no exit within ${opts.timeoutMs / 1000}s` });
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `exec ${command.join(' ')}: ${err.message}` });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === 0 ? { ok: true } : { ok: false, detail: `exec ${command.join(' ')}: exit ${code ?? signal}` });
    });
  });
}
