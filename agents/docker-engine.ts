import Docker from 'dockerode';
import { inScope, LABELS, nodeFilter } from './docker-labels.ts';

/**
 * The agent's connection to the Docker Engine: the client, the "does it answer" probe that decides
 * whether the node offers the docker runtime, the listing of this node's containers by label, and
 * one events stream that tells the agent when a container dies instead of one long poll per
 * container.
 */

/** DOCKER_HOST (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) or /var/run/docker.sock, as the docker CLI does. */
export function connectDocker(): Docker {
  return new Docker();
}

export type EngineProbe = { ok: true; version: string } | { ok: false; error: string };

/** Asks the engine for its version, with a short timeout: a hung socket must not hold up a resync. */
export async function probeEngine(docker: Docker, timeoutMs = 2_000): Promise<EngineProbe> {
  try {
    // The typings lack the options argument that dockerode accepts (and passes on as the abort signal).
    const version = docker.version.bind(docker) as unknown as (opts: { abortSignal: AbortSignal }) => Promise<Docker.DockerVersion>;
    const v = await version({ abortSignal: AbortSignal.timeout(timeoutMs) });
    return { ok: true, version: v.Version };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * The gateway of the engine's default `bridge` network, where the agent's containers run:
 * `docker network inspect bridge` -> IPAM.Config[].Gateway, IPv4 first (containers on the default
 * bridge always have IPv4). It is the host's address on that network (docker0), the one address of
 * the host a container reaches. Undefined when the engine names none.
 */
export async function bridgeGateway(docker: Docker, timeoutMs = 2_000): Promise<string | undefined> {
  const networks = await docker.listNetworks({ filters: { name: ['bridge'] }, abortSignal: AbortSignal.timeout(timeoutMs) });
  // The name filter matches substrings ("my-bridge"): the default network is the one named exactly.
  const config = networks.find((n) => n.Name === 'bridge')?.IPAM?.Config ?? [];
  // Some engines (a dockerd that found docker0 already configured) list the subnet without its
  // gateway: the bridge then has the subnet's first address, as Docker assigns it.
  const gateways = config.map((c) => c.Gateway || firstHost(c.Subnet)).filter((g): g is string => !!g);
  return gateways.find((g) => !g.includes(':')) ?? gateways[0];
}

/** The first host address of an IPv4 subnet (`172.17.0.0/16` -> `172.17.0.1`); undefined for anything else. */
export function firstHost(subnet: string | undefined): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(subnet ?? '');
  if (!m) return undefined;
  const bits = Number(m[5]);
  if (bits > 30) return undefined;
  const n = m.slice(1, 5).reduce((a, o) => a * 256 + Number(o), 0);
  const host = (n - (n % 2 ** (32 - bits))) + 1;
  return [24, 16, 8, 0].map((s) => Math.floor(host / 2 ** s) % 256).join('.');
}

/** A container this node's agent manages, as the engine lists it. */
export interface ManagedContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** created, running, exited, dead, ... */
  state: string;
}

export function instanceOf(c: ManagedContainer): string | undefined {
  return c.labels[LABELS.instance];
}

/** Every container labelled for this node of this installation (or for one instance on it), running or not. */
export async function listManaged(docker: Docker, node: string, scope: string, instanceId?: string): Promise<ManagedContainer[]> {
  const list = await docker.listContainers({ all: true, filters: { label: nodeFilter(node, instanceId) } });
  return list
    .filter((c) => inScope(c.Labels ?? {}, scope))
    .map((c) => ({ id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), labels: c.Labels ?? {}, state: c.State }));
}

export interface ContainerEvent {
  action: 'die' | 'oom' | 'destroy';
  id: string;
  /** From `die`: the engine reports the code in the event itself, which survives a `docker rm -f`. */
  exitCode?: number;
}

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;

/**
 * One `GET /events` stream filtered to this node's containers, dispatching die/oom/destroy to the
 * watcher of each container id. It reconnects after an error; events lost in between are caught
 * by the agent's resync, which rechecks every container it watches.
 */
export class DockerEvents {
  private readonly watchers = new Map<string, (ev: ContainerEvent) => void>();
  private stream?: NodeJS.ReadableStream & { destroy?: () => void };
  private reconnectTimer?: NodeJS.Timeout;
  private closed = false;
  private connecting = false;
  /** Doubles while the engine stays away (up to 10 s), so a node without a running engine stays quiet. */
  private reconnectMs = RECONNECT_MIN_MS;

  constructor(
    private readonly docker: Docker,
    private readonly node: string,
    private readonly log: (line: string) => void,
  ) {}

  /** Resolves once the stream is connected (or failed to; it keeps retrying). */
  async start(): Promise<void> {
    if (this.stream || this.connecting) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectMs = RECONNECT_MIN_MS;
    await this.connect();
  }

  watch(id: string, fn: (ev: ContainerEvent) => void): void {
    this.watchers.set(id, fn);
  }

  unwatch(id: string): void {
    this.watchers.delete(id);
  }

  private async connect(): Promise<void> {
    if (this.closed || this.stream || this.connecting) return;
    let stream: NodeJS.ReadableStream & { destroy?: () => void };
    this.connecting = true;
    try {
      stream = await this.docker.getEvents({ filters: { type: ['container'], event: ['die', 'oom', 'destroy'], label: nodeFilter(this.node) } });
    } catch (err) {
      this.retry(`docker events: ${err instanceof Error ? err.message : err}`);
      return;
    } finally {
      this.connecting = false;
    }
    if (this.closed) {
      stream.destroy?.();
      return;
    }
    this.stream = stream;
    this.reconnectMs = RECONNECT_MIN_MS;
    let buffered = '';
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        this.dispatch(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    let ended = false;
    const onEnd = (why: string) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) this.stream = undefined;
      this.retry(why);
    };
    stream.on('error', (err: Error) => onEnd(`docker events: ${err.message}`));
    stream.on('end', () => onEnd('docker events stream ended'));
    stream.on('close', () => onEnd('docker events stream closed'));
  }

  private dispatch(line: string): void {
    if (!line.trim()) return;
    let ev: { Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    const action = ev.Action ?? ev.status;
    const id = ev.Actor?.ID ?? ev.id;
    if (!id || (action !== 'die' && action !== 'oom' && action !== 'destroy')) return;
    const code = ev.Actor?.Attributes?.exitCode;
    this.watchers.get(id)?.({ action, id, ...(code !== undefined && /^\d+$/.test(code) ? { exitCode: Number(code) } : {}) });
  }

  private retry(why: string): void {
    if (this.closed) return;
    // Only the first failure after a working stream is news.
    if (this.reconnectMs === RECONNECT_MIN_MS) this.log(`${why}; reconnecting`);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(), this.reconnectMs);
    this.reconnectTimer.unref();
    this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.stream?.destroy?.();
    this.stream = undefined;
    this.watchers.clear();
  }
}
