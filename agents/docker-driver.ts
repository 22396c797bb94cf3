import type Docker from 'dockerode';
import type { ContainerSpec, PortSpec, PortStatus } from '../state/records/instance.ts';
import { StartError, type ExitInfo, type RunningContainer } from './container-runtime.ts';
import { DockerEvents, listManaged, type ContainerEvent, type ManagedContainer } from './docker-engine.ts';
import { inScope, LABELS } from './docker-labels.ts';
import { saveLastLines } from './docker-logs.ts';
import { DockerSandboxes, joinSandbox } from './docker-sandbox.ts';
import { dockerCreateOptions, type DockerSpecInput } from './docker-spec.ts';
import { engineMessage, ImagePuller, isNoSuchImage, type PullEvent, type PullSecrets } from './image-pull.ts';

/**
 * The Docker runtime: pulls (by policy), creates and starts a container per instance container,
 * watches it through the events stream, and once it has ended records how (exit code, OOMKilled)
 * and its last log lines, then removes it. Restart policy and backoff stay in LocalInstance.
 */

export interface DockerStartRequest extends Omit<DockerSpecInput, 'node' | 'scope' | 'address' | 'logMaxBytes'> {
  /** The instance dir: where the last log lines of ended containers are kept. */
  dir: string;
  report: (ev: PullEvent) => void;
  /** The record's imagePullSecrets and how to read their versions; absent or empty: anonymous pulls. */
  pullSecrets?: PullSecrets;
  /** The pod sandbox's container id: the container joins its network (its ports are published there). */
  sandbox?: string;
  /** The image was just made present by its pull policy (DockerRuntime.prepare): no check before the create. */
  imageReady?: boolean;
}

/** A container of the instance found on the engine (by labels) when an agent takes over. */
export interface FoundContainer {
  id: string;
  /** The instance's container name (label), not the engine's name. */
  container: string;
  uid: string;
  restarts: number;
  ports: PortStatus[];
  startedAt?: number;
  running: boolean;
}

export class DockerDriver {
  readonly puller: ImagePuller;
  /** Pod sandboxes (pause containers) of this node's instances. */
  readonly sandboxes: DockerSandboxes;

  constructor(
    readonly docker: Docker,
    readonly events: DockerEvents,
    private readonly node: string,
    /** agentScope(): containers of another installation sharing the engine are not ours. */
    private readonly scope: string,
    private readonly address: string,
    private readonly logMaxBytes: number,
  ) {
    this.puller = new ImagePuller(docker);
    this.sandboxes = new DockerSandboxes(docker, node, scope, address, logMaxBytes);
  }

  /**
   * Runs an exec probe's command inside the container (`docker exec`): exit 0 passes. A command
   * still running at the timeout fails the probe (the engine has no way to kill an exec; it ends
   * with the container or on its own).
   */
  async exec(containerId: string, command: string[], timeoutMs: number): Promise<{ ok: boolean; detail?: string }> {
    const what = `exec ${command.join(' ')}`;
    try {
      const exec = await this.docker.getContainer(containerId).exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          stream.destroy();
          resolve();
        }, timeoutMs);
        stream.on('end', () => {
          clearTimeout(t);
          resolve();
        });
        stream.on('error', () => {
          clearTimeout(t);
          resolve();
        });
        stream.resume();
      });
      const info = await exec.inspect();
      if (info.Running) return { ok: false, detail: `${what}: no exit within ${timeoutMs / 1000}s` };
      return info.ExitCode === 0 ? { ok: true } : { ok: false, detail: `${what}: exit ${info.ExitCode}` };
    } catch (err) {
      return { ok: false, detail: `${what}: ${engineMessage(err)}` };
    }
  }

  async start(req: DockerStartRequest): Promise<DockerContainer> {
    const spec = req.container;
    const ensure = () => this.puller.ensure(spec.image!, spec.imagePullPolicy ?? 'IfNotPresent', req.report, req.pullSecrets);
    if (!req.imageReady) await ensure();
    const own = dockerCreateOptions({ ...req, node: this.node, scope: this.scope, address: this.address, logMaxBytes: this.logMaxBytes });
    const opts = req.sandbox ? joinSandbox(own, req.sandbox) : own;
    let created: Docker.Container;
    try {
      created = await this.create(opts).catch(async (err) => {
        // The puller takes an image found present as present for a few seconds (image-pull.ts); one
        // removed meanwhile (`docker rmi`) is looked at, and pulled by its policy, once more.
        if (!isNoSuchImage(err)) throw err;
        this.puller.forget(spec.image!);
        await ensure();
        return this.create(opts);
      });
    } catch (err) {
      if (err instanceof StartError) throw err;
      throw new StartError('StartFailed', `creating container: ${engineMessage(err)}`);
    }
    const handle = new DockerContainer(this, created.id, req.dir, spec.name);
    // Watch before starting: a command that exits at once must not be missed.
    handle.arm();
    try {
      await created.start();
    } catch (err) {
      handle.unwatch();
      await this.remove(created.id);
      throw new StartError('StartFailed', engineMessage(err));
    }
    await handle.refresh();
    return handle;
  }

  /** Creates; a leftover of ours under the same name (an agent crash mid-start) is removed first. */
  private async create(opts: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(opts);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
      const existing = await this.docker.getContainer(opts.name!).inspect();
      const labels = existing.Config.Labels ?? {};
      if (labels[LABELS.node] !== this.node || !inScope(labels, this.scope)) throw err;
      await this.remove(existing.Id);
      return await this.docker.createContainer(opts);
    }
  }

  /** The instance's containers on the engine, for adoption. */
  async find(instanceId: string, specs: ContainerSpec[]): Promise<FoundContainer[]> {
    const listed = await listManaged(this.docker, this.node, this.scope, instanceId);
    const found: FoundContainer[] = [];
    for (const c of listed) {
      try {
        const info = await this.docker.getContainer(c.id).inspect();
        const name = c.labels[LABELS.container] ?? '';
        const declared = specs.find((s) => s.name === name)?.ports ?? [];
        found.push({
          id: c.id,
          container: name,
          uid: c.labels[LABELS.uid] ?? '',
          restarts: Number(c.labels[LABELS.restarts] ?? 0) || 0,
          ports: publishedPorts(info, declared, this.address),
          ...(parseTime(info.State.StartedAt) !== undefined ? { startedAt: parseTime(info.State.StartedAt)! } : {}),
          running: info.State.Running,
        });
      } catch {
        // Removed meanwhile: nothing to adopt.
      }
    }
    return found;
  }

  /** Listing for the agent's resync (strays) and leftovers. */
  listManaged(instanceId?: string): Promise<ManagedContainer[]> {
    return listManaged(this.docker, this.node, this.scope, instanceId);
  }

  /**
   * Takes over a container a previous agent started. A running one is watched as it is (same
   * container id, no restart); an ended one is recorded and removed like any ended container.
   */
  async adopt(found: FoundContainer, dir: string): Promise<{ running: DockerContainer } | { exit: ExitInfo }> {
    const handle = new DockerContainer(this, found.id, dir, found.container);
    handle.arm();
    await handle.refresh();
    const ended = handle.endedWith();
    return ended ? { exit: ended } : { running: handle };
  }

  /** Stops (SIGTERM, `graceSeconds`, SIGKILL) and removes a container; gone already is fine. */
  async stopAndRemove(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.ceil(graceSeconds)) });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw err;
    }
    await this.remove(id);
  }

  /** A stray or leftover: stopped as gently as its labels say its instance wanted, then removed. */
  removeManaged(c: ManagedContainer): Promise<void> {
    // A sandbox's pause process ignores SIGTERM and holds no work: no grace to wait out.
    if (c.labels[LABELS.sandbox] === 'true') return this.remove(c.id);
    const grace = Number(c.labels[LABELS.grace]);
    return this.stopAndRemove(c.id, Number.isFinite(grace) ? grace : 10);
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      // 404: gone; 409: a removal is already in progress.
      if (code !== 404 && code !== 409) throw err;
    }
  }
}

/**
 * One Docker container the agent watches. Its end is learnt from a `die`/`destroy` event or a
 * recheck; `finish` then reads how it ended, keeps its last log lines, removes it and tells the
 * listener, once.
 */
export class DockerContainer implements RunningContainer {
  pid?: number;
  private listener?: (exit: ExitInfo) => void;
  private result?: ExitInfo;
  private ending?: Promise<void>;
  private watching = false;
  /** From the `die` event: all we know when the container was removed out of band. */
  private dieCode?: number;
  private oomEvent = false;

  constructor(
    private readonly driver: DockerDriver,
    readonly containerId: string,
    private readonly dir: string,
    private readonly name: string,
  ) {}

  arm(): void {
    this.watching = true;
    this.driver.events.watch(this.containerId, (ev) => this.onEvent(ev));
  }

  private onEvent(ev: ContainerEvent): void {
    if (ev.action === 'oom') this.oomEvent = true;
    else {
      if (ev.exitCode !== undefined) this.dieCode = ev.exitCode;
      void this.end();
    }
  }

  onExit(listener: (exit: ExitInfo) => void): void {
    this.listener = listener;
    const result = this.result;
    if (result) queueMicrotask(() => this.listener?.(result));
  }

  unwatch(): void {
    this.listener = undefined;
    this.watching = false;
    this.driver.events.unwatch(this.containerId);
  }

  endedWith(): ExitInfo | undefined {
    return this.result;
  }

  /** Reads the pid; a container already gone or ended is finished at once. */
  async refresh(): Promise<void> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.driver.docker.getContainer(this.containerId).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) await this.end();
      // Anything else (engine busy or away): look again at the next recheck.
      return;
    }
    if (info.State.Running) this.pid = info.State.Pid || undefined;
    else await this.end();
  }

  async recheck(): Promise<void> {
    if (this.watching && !this.result) await this.refresh();
  }

  private end(): Promise<void> {
    this.ending ??= this.finish();
    return this.ending;
  }

  private async finish(): Promise<void> {
    let info: Docker.ContainerInspectInfo | undefined;
    try {
      info = await this.driver.docker.getContainer(this.containerId).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) {
        // The engine did not answer: not a fact about the container. The next recheck looks again.
        this.ending = undefined;
        return;
      }
      // Removed out of band (`docker rm -f`): the die event's code is all there is.
    }
    if (info?.State.Running || info?.State.Restarting) {
      this.ending = undefined;
      return;
    }
    const oom = info ? info.State.OOMKilled : this.oomEvent;
    const exit: ExitInfo = {
      ...((info ? info.State.ExitCode : this.dieCode) !== undefined ? { exitCode: info ? info.State.ExitCode : this.dieCode } : {}),
      finishedAt: parseTime(info?.State.FinishedAt) ?? Date.now(),
      ...(oom ? { reason: 'OOMKilled' } : {}),
    };
    if (info) {
      await saveLastLines(this.driver.docker, this.containerId, this.dir, this.name).catch(() => {});
      await this.driver.remove(this.containerId).catch(() => {});
    }
    this.driver.events.unwatch(this.containerId);
    this.pid = undefined;
    this.result = exit;
    this.listener?.(exit);
  }

  async stop(graceMs: number): Promise<void> {
    this.unwatch();
    await this.driver.stopAndRemove(this.containerId, graceMs / 1000);
  }
}

/** The host ports a container publishes, named after the declared ports they serve. */
function publishedPorts(info: Docker.ContainerInspectInfo, declared: PortSpec[], address: string): PortStatus[] {
  const bindings = (info.HostConfig.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>;
  const ports: PortStatus[] = [];
  // The same containerPort may be published for tcp and udp ("53/tcp", "53/udp"): two ports.
  const sameAs = (p: { containerPort: number; protocol?: string }) => (d: PortSpec) => d.containerPort === p.containerPort && (d.protocol ?? 'TCP') === (p.protocol ?? 'TCP');
  for (const [key, binds] of Object.entries(bindings)) {
    const containerPort = Number.parseInt(key, 10);
    const hostPort = Number(binds?.[0]?.HostPort);
    if (!containerPort || !hostPort) continue;
    const protocol = key.endsWith('/udp') ? ('UDP' as const) : undefined;
    const hostIP = binds?.[0]?.HostIp;
    const name = declared.find(sameAs({ containerPort, protocol }))?.name;
    ports.push({ ...(name ? { name } : {}), containerPort, hostPort, ...(protocol ? { protocol } : {}), ...(hostIP && hostIP !== address ? { hostIP } : {}) });
  }
  // In declaration order, as a fresh start reports them.
  const order = (p: PortStatus) => {
    const i = declared.findIndex(sameAs(p));
    return i < 0 ? declared.length : i;
  };
  return ports.sort((a, b) => order(a) - order(b));
}

/** Engine timestamps; the zero time (never started/finished) is undefined. */
function parseTime(value: string | undefined): number | undefined {
  if (!value || value.startsWith('0001-')) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
