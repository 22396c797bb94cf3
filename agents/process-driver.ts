import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer, isIP, type Server } from 'node:net';
import { constants, networkInterfaces } from 'node:os';
import { runtimeLimits, type ContainerSpec, type PortProtocol, type PortSpec, type PortStatus } from '../state/records/instance.ts';
import { findLimitGroup, procsFiles, removeLimitGroup, setUpLimits, wasOomKilled, type LimitGroup } from './cgroup-limits.ts';
import { StartError, type ExitInfo, type RunningContainer } from './container-runtime.ts';
import { exitFilePath, logPath, type ContainerState } from './instance-dir.ts';
import { hasExecedChild, isGroupAlive, isProcessAlive, processStartTime, signalGroup } from './proc.ts';

/**
 * The process runtime: each container is one process group, started detached so that it outlives
 * the agent, with its output appended to a log file and its exit code written to a file by a
 * wrapper shell. Everything an agent needs to adopt it later is in ContainerState. Limits are
 * enforced with cgroups where the agent can write them (cgroup-limits.ts).
 */

/**
 * Runs the command as a child (not `exec`) so that the shell can record the exit code afterwards.
 * `trap : TERM` makes the shell outlive a group-wide SIGTERM until the command has finished its own
 * shutdown (POSIX defers the trap until the foreground command completes), and since it is a trap
 * and not an ignore, the command itself starts with the default SIGTERM disposition.
 */
const WRAPPER = 'trap : TERM; "$@"; echo $? > "$GANTRY_EXIT_FILE"';
/**
 * With limits: `sh -c JOIN_WRAPPER sh <n> <n cgroup.procs files> <command> <args>`. The shell moves
 * itself into the container's cgroups before it forks the command, so the command and all it starts
 * are limited from their first allocation (moving the pid from the agent after spawn would race
 * with that fork). Failing to join ends the container (code 125) rather than running it unlimited
 * while the agent believes otherwise.
 */
const JOIN_WRAPPER =
  'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || { echo "gantry: could not join cgroup $1" >&2; echo 125 > "$GANTRY_EXIT_FILE"; exit 125; }; shift; n=$((n - 1)); done; ' +
  WRAPPER;

export type { ExitInfo } from './container-runtime.ts';

/** A container process the agent watches, whether it spawned it or adopted it. */
export interface ContainerProcess extends RunningContainer {
  readonly pid: number;
  /** The process group (== pid: the wrapper shell leads its own group). */
  readonly pgid: number;
  readonly startTime?: number;
}

class WatchedProcess implements ContainerProcess {
  private listener?: (exit: ExitInfo) => void;
  private result?: ExitInfo;
  private detach: () => void = () => {};

  constructor(
    readonly pid: number,
    readonly startTime: number | undefined,
    private readonly exitFile: string,
    /** Its cgroups, while it has limits the agent enforces; removed once it is gone. */
    private readonly group?: LimitGroup,
    readonly limitsNotEnforced?: string,
  ) {}

  get pgid(): number {
    return this.pid;
  }

  watch(detach: () => void): void {
    this.detach = detach;
  }

  onExit(listener: (exit: ExitInfo) => void): void {
    this.listener = listener;
    const result = this.result;
    if (result) queueMicrotask(() => this.listener?.(result));
  }

  unwatch(): void {
    this.listener = undefined;
    this.detach();
  }

  async stop(graceMs: number): Promise<void> {
    this.unwatch();
    await stopProcessGroup(this, graceMs);
    if (this.group) await removeLimitGroup(this.group);
  }

  /** The wrapper ended; `fallbackCode` is what wait() said, when we are its parent. */
  ended(fallbackCode?: number): void {
    if (this.result) return;
    this.detach();
    // Members the command left behind (background children) die with the container; unless the
    // pid already names another process, which then may lead a group of its own.
    if (!isProcessAlive(this.pid)) signalGroup(this.pgid, 'SIGKILL');
    const recorded = readExitFile(this.exitFile);
    const exitCode = recorded?.exitCode ?? fallbackCode;
    // Read before the group goes: the kernel's OOM kill counts are all that tells an OOM kill from any SIGKILL.
    const oom = wasOomKilled(this.group, exitCode);
    this.result = { exitCode: oom ? (exitCode ?? 137) : exitCode, finishedAt: recorded?.at ?? Date.now(), ...(oom ? { reason: 'OOMKilled' } : {}) };
    if (this.group) void removeLimitGroup(this.group);
    this.listener?.(this.result);
  }
}

export interface SpawnOptions {
  /** The instance dir: cwd of the process and home of its log and exit files. */
  dir: string;
  container: ContainerSpec;
  ports: PortStatus[];
  /** GANTRY_INSTANCE_ID, GANTRY_NODE, ... */
  identity: Record<string, string>;
  /**
   * The cgroup filesystem the container's limits go into (default $GANTRY_CGROUP_ROOT, else
   * /sys/fs/cgroup). One the agent cannot write runs the process without limits, and says so.
   */
  cgroupRoot?: string;
  /**
   * A command that enters a namespace and execs the rest (`nsenter --net=<file> --`), put before the
   * wrapper shell. Since it execs, the pid spawned becomes the wrapper's, which adoption, stops and
   * the stray sweep go by.
   */
  enter?: string[];
}

/** Starts one container; resolves once the process exists, rejects when it could not be spawned. */
export async function spawnContainer(opts: SpawnOptions): Promise<ContainerProcess> {
  const { dir, container } = opts;
  const exitFile = exitFilePath(dir, container.name);
  rmSync(exitFile, { force: true });
  const limits = setUpLimits({ root: opts.cgroupRoot, instanceDir: dir, container: container.name, limits: runtimeLimits(container, 'process') });
  const group = 'group' in limits ? limits.group : undefined;
  const files = group ? procsFiles(group) : [];
  const argv = group ? ['-c', JOIN_WRAPPER, 'sh', String(files.length), ...files] : ['-c', WRAPPER, 'sh'];
  const logFd = openSync(logPath(dir, container.name), 'a');
  let child;
  try {
    const [file, ...pre] = [...(opts.enter ?? []), '/bin/sh'];
    child = spawn(file!, [...pre, ...argv, ...container.command, ...container.args], {
      cwd: dir,
      env: { ...containerEnv(container, opts.ports, opts.identity), GANTRY_EXIT_FILE: exitFile },
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    // The child has its own copy of the fd by now.
    closeSync(logFd);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (err) {
    if (group) await removeLimitGroup(group);
    throw err;
  }
  // Later errors (e.g. a failed kill) must not crash the agent; exits are handled below.
  child.on('error', () => {});
  // The agent may exit while the container keeps running.
  child.unref();
  const pid = child.pid!;
  const proc = new WatchedProcess(pid, processStartTime(pid), exitFile, group, 'notEnforced' in limits ? limits.notEnforced : undefined);
  const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
    proc.ended(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : undefined));
  child.once('exit', onExit);
  proc.watch(() => child.removeListener('exit', onExit));
  return proc;
}

/**
 * Adopts a process a previous agent started: watches it by polling /proc, since it is not our
 * child. Returns undefined when it is no longer running (its exit, if any, is in the exit file).
 */
export function adoptContainer(dir: string, state: ContainerState, pollMs = 500, cgroupRoot?: string): ContainerProcess | undefined {
  if (!isProcessAlive(state.pid, state.startTime)) {
    // The wrapper died while we were away: what the command left behind goes too.
    if (!isProcessAlive(state.pid)) signalGroup(state.pgid, 'SIGKILL');
    return undefined;
  }
  // Its groups, if the agent that started it gave it limits: to tell an OOM kill, and to remove them.
  const group = findLimitGroup({ root: cgroupRoot, instanceDir: dir, container: state.name, pid: state.pid });
  const proc = new WatchedProcess(state.pid, state.startTime, exitFilePath(dir, state.name), group);
  const timer = setInterval(() => {
    if (!isProcessAlive(state.pid, state.startTime)) proc.ended();
  }, pollMs);
  timer.unref();
  proc.watch(() => clearInterval(timer));
  return proc;
}

/** How a container that is no longer running ended, as far as its exit file tells. */
export function readExitFile(file: string): { exitCode: number; at: number } | undefined {
  try {
    const exitCode = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    if (Number.isNaN(exitCode)) return undefined;
    return { exitCode, at: statSync(file).mtimeMs };
  } catch {
    return undefined;
  }
}

/**
 * SIGTERM to the whole group, up to `graceMs` for it to go away, then SIGKILL. Safe on a pid that
 * was recycled: a live leader with another start time is not ours and is left alone.
 */
export async function stopProcessGroup(
  target: { pid: number; pgid: number; startTime?: number },
  graceMs: number,
): Promise<void> {
  const leaderRecycled = isProcessAlive(target.pid) && !isProcessAlive(target.pid, target.startTime);
  if (leaderRecycled || !isGroupAlive(target.pgid)) return;
  // A SIGTERM that lands while the wrapper is starting the command is lost: before the fork the
  // shell defers its trap and then starts the command anyway; between fork and exec the child
  // still has the shell's handler, which exec discards. So a just-started container is first given
  // a moment to reach its command.
  await pollUntil(() => !isProcessAlive(target.pid, target.startTime) || hasExecedChild(target.pid), 2_000);
  signalGroup(target.pgid, 'SIGTERM');
  if (await pollUntil(() => !isGroupAlive(target.pgid), graceMs)) return;
  signalGroup(target.pgid, 'SIGKILL');
  await pollUntil(() => !isGroupAlive(target.pgid), 5_000);
}

/**
 * Looks every 2 ms at first, doubling to every 50 ms: most processes end within a few ms of their
 * SIGTERM, and a rolling update waits for each stop before its next step, so a fixed 50 ms period
 * would add up to 50 ms to every step; a process that takes its grace period costs /proc reads
 * every 50 ms as before.
 */
async function pollUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let everyMs = 2;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
    everyMs = Math.min(everyMs * 2, 50);
  }
  return true;
}

/**
 * The environment of a container: a minimal base from the agent, the container's own env, then
 * what Gantry provides, which wins because the process must listen on the host port it was given
 * (the process runtime has no port mapping).
 */
export function containerEnv(
  container: ContainerSpec,
  ports: PortStatus[],
  identity: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin' };
  for (const name of ['PATH', 'HOME', 'LANG']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  // LocalInstance passes the resolved spec (container-env.ts): references are literals by now.
  for (const e of container.env) if ('value' in e) env[e.name] = e.value;
  if (ports[0]) env.PORT = String(ports[0].hostPort);
  for (const p of ports) {
    if (p.name) env[`PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.hostPort);
  }
  return { ...env, ...identity };
}

/**
 * Host ports, one per declared port, on the node address (or the port's hostIP): a fixed
 * `hostPort` is checked by binding exactly it; any other is chosen by the kernel (bind port 0). A
 * UDP port binds a datagram socket, since a free TCP port says nothing about UDP. All stay bound
 * until every one is chosen, so that one call never repeats a port. `previous` are the ports of an
 * earlier run: allocated ones are kept (endpoints and clients know them), fixed ones checked again
 * (something else may have taken one meanwhile). A taken hostPort is a waiting HostPortInUse: the
 * instance retries with backoff and starts once it is free.
 */
export async function allocateHostPorts(address: string, specs: PortSpec[], previous: PortStatus[] = []): Promise<PortStatus[]> {
  const held: (() => Promise<void>)[] = [];
  try {
    const ports: PortStatus[] = [];
    for (const spec of specs) {
      const protocol = spec.protocol ?? 'TCP';
      const ip = spec.hostIP ?? address;
      if (!isNodeAddress(ip, address)) {
        throw new StartError('HostIPNotOnNode', `HostIPNotOnNode: hostIP ${ip} of port ${spec.containerPort}/${protocol} is not an address of this node (${address})`);
      }
      const kept = spec.hostPort ? undefined : previous.find((p) => p.containerPort === spec.containerPort && (p.protocol ?? 'TCP') === protocol);
      let hostPort = kept?.hostPort;
      if (hostPort === undefined) {
        const wanted = spec.hostPort ?? 0;
        const bound = await bindHostPort(protocol, ip, wanted).catch((err: NodeJS.ErrnoException) => {
          throw bindFailure(err, `${wanted || 'a port'}/${protocol} on ${ip}`);
        });
        held.push(bound.close);
        hostPort = bound.port;
      }
      // Written like before protocols existed for TCP on the node address, so statuses stay as they were.
      ports.push({
        ...(spec.name ? { name: spec.name } : {}),
        containerPort: spec.containerPort,
        hostPort,
        ...(protocol === 'UDP' ? { protocol } : {}),
        ...(ip !== address ? { hostIP: ip } : {}),
      });
    }
    return ports;
  } finally {
    await Promise.all(held.map((close) => close()));
  }
}

/** The node's address, an unspecified one (all of them), or an address of one of this host's interfaces. */
function isNodeAddress(ip: string, address: string): boolean {
  if (ip === address || ip === '0.0.0.0' || ip === '::') return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === ip));
}

function bindHostPort(protocol: PortProtocol, ip: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  if (protocol === 'UDP') {
    const socket = createSocket(isIP(ip) === 6 ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => {
        // A socket whose bind failed still holds its handle.
        try {
          socket.close();
        } catch {}
        reject(err);
      });
      socket.bind(port, ip, () => resolve({ port: socket.address().port, close: () => new Promise<void>((r) => socket.close(() => r())) }));
    });
  }
  const server: Server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => {
      const addr = server.address();
      resolve({ port: typeof addr === 'object' && addr ? addr.port : 0, close: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}

/** A bind error as the instance reports it: taken and a missing address are waited out, the rest fails the start. */
function bindFailure(err: NodeJS.ErrnoException, what: string): Error {
  if (err.code === 'EADDRINUSE') return new StartError('HostPortInUse', `HostPortInUse: ${what} is in use`);
  if (err.code === 'EADDRNOTAVAIL') return new StartError('HostIPNotOnNode', `HostIPNotOnNode: cannot bind ${what}: the address is not on this node`);
  if (err.code === 'EACCES') return new StartError('StartFailed', `host port ${what}: permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)`);
  return new StartError('StartFailed', `host port ${what}: ${err.message}`);
}
