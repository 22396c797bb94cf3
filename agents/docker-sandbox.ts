import type Docker from 'dockerode';
import type { InstanceRecord, PortSpec, PortStatus } from '../state/records/instance.ts';
import { StartError } from './container-runtime.ts';
import { listManaged } from './docker-engine.ts';
import { containerLabels, containerName, inScope, LABELS } from './docker-labels.ts';
import { portBindings } from './docker-spec.ts';
import { engineMessage, IMAGE_PRESENT_FOR_MS, isNoSuchImage } from './image-pull.ts';
import { ensurePauseImage } from './pause-image.ts';

/**
 * The pod sandbox of a Docker instance, as the kubelet makes one: a pause container holding the
 * pod's network namespace on the default bridge. Every app container of the instance joins it
 * (`NetworkMode: container:<id>`, see joinSandbox), so they reach each other on localhost, share
 * one pod IP, and the pod's host ports are published once, here. The bridge matters: containers
 * reach Gantry's service proxy at its gateway (node-docker.ts).
 *
 * A sandbox found not running (killed, the engine restarted) cannot be repaired: the network
 * namespace the app containers joined died with its process, and a restarted pause container gets
 * a new one they are not in. The caller then removes the sandbox and every app container of the
 * instance and creates the pod again, as the kubelet does when a sandbox dies.
 */

/** The sandbox's container name within the instance: upper case, which no container of a pod can have (their names are DNS labels). */
export const SANDBOX_CONTAINER = 'POD';

/** The pause process needs next to nothing; the engine's minimum is 6 MiB. */
const SANDBOX_MEMORY_BYTES = 16 * 1024 * 1024;

export interface SandboxSpecInput {
  node: string;
  scope: string;
  /** Host ports are published on this address (or a port's own hostIP), as for app containers. */
  address: string;
  record: InstanceRecord;
  /** The pod's ports, every container's, with their host ports already allocated. */
  ports: PortStatus[];
  /** The pause image (ensurePauseImage). */
  image: string;
  logMaxBytes: number;
}

/**
 * The hostname the pod's containers share (they take the sandbox's): the pod name, i.e. the
 * instance id without `<namespace>.`, cut to 63 characters as the kubelet does.
 */
export function sandboxHostname(record: InstanceRecord): string {
  const prefix = `${record.namespace}.`;
  const name = record.id.startsWith(prefix) ? record.id.slice(prefix.length) : record.id;
  return name.slice(0, 63).replace(/[-.]+$/, '');
}

/** The create options of an instance's sandbox; pure. */
export function sandboxCreateOptions(o: SandboxSpecInput): Docker.ContainerCreateOptions {
  const { exposed, bindings } = portBindings(o.ports, o.address);
  return {
    name: containerName(o.node, o.record.id, SANDBOX_CONTAINER),
    Image: o.image,
    Hostname: sandboxHostname(o.record),
    // The sandbox is never restarted in place (see above): its restart count stays 0.
    Labels: { ...containerLabels(o.node, o.scope, o.record, SANDBOX_CONTAINER, 0), [LABELS.sandbox]: 'true' },
    ExposedPorts: exposed,
    HostConfig: {
      NetworkMode: 'bridge',
      PortBindings: bindings,
      Memory: SANDBOX_MEMORY_BYTES,
      MemorySwap: SANDBOX_MEMORY_BYTES,
      // No init: the pause process is PID 1 and has nothing to reap.
      RestartPolicy: { Name: 'no' },
      // It writes nothing, but a log of its own is capped like every container's.
      LogConfig: { Type: 'json-file', Config: { 'max-size': String(o.logMaxBytes), 'max-file': '2' } },
    },
  };
}

/**
 * An app container's create options, made to join the sandbox's network namespace. The engine
 * refuses what belongs to the namespace's owner with that mode (published or exposed ports, a
 * hostname, DNS, extra hosts, links, a MAC address, other networks to attach), so those go: the
 * sandbox has them for the pod. The container's hostname, /etc/hosts and resolv.conf come from
 * the sandbox. Pure; `opts` is not changed.
 */
export function joinSandbox(opts: Docker.ContainerCreateOptions, sandboxId: string): Docker.ContainerCreateOptions {
  const { Hostname: _h, Domainname: _d, ExposedPorts: _e, MacAddress: _m, NetworkingConfig: _n, ...rest } = opts as Docker.ContainerCreateOptions & { MacAddress?: string };
  const { PortBindings: _p, PublishAllPorts: _a, Dns: _dns, DnsSearch: _s, DnsOptions: _o, ExtraHosts: _x, Links: _l, Sysctls, ...host } = opts.HostConfig ?? {};
  // net.* sysctls set the namespace, which is the sandbox's: the engine refuses them here.
  const sysctls = Object.fromEntries(Object.entries(Sysctls ?? {}).filter(([k]) => !k.startsWith('net.')));
  return {
    ...rest,
    HostConfig: { ...host, ...(Object.keys(sysctls).length > 0 ? { Sysctls: sysctls } : {}), NetworkMode: `container:${sandboxId}` },
  };
}

export interface StartedSandbox {
  id: string;
  /** The pod's address on the bridge network: every container of the pod has it. */
  podIP: string;
}

/** An instance's sandbox as found on the engine (by labels), for adoption. */
export interface FoundSandbox {
  id: string;
  uid: string;
  /** False: the pod cannot be adopted as it is (see the top of this file). */
  running: boolean;
  /** Undefined when not running: a stopped container has no address. */
  podIP?: string;
  ports: PortStatus[];
}

/** The sandboxes of one node's instances on the engine. */
export class DockerSandboxes {
  /**
   * The pause image's reference once made sure of, until when that holds: ensurePauseImage asks the
   * engine for its architecture and inspects the image, two calls that a scale-up of 20 pods would
   * otherwise make 20 times while the engine is busiest. A create that finds it gone asks again.
   */
  private pause?: { ref: Promise<string>; until: number };

  constructor(
    private readonly docker: Docker,
    private readonly node: string,
    /** agentScope(): sandboxes of another installation sharing the engine are not ours. */
    private readonly scope: string,
    private readonly address: string,
    private readonly logMaxBytes: number,
  ) {}

  /**
   * Creates (not starts) the instance's sandbox, making the pause image first if the engine lacks
   * it. A leftover of ours under the same name (an agent crash mid-start) is removed first.
   */
  async create(record: InstanceRecord, ports: PortStatus[]): Promise<string> {
    const options = (image: string) => sandboxCreateOptions({ node: this.node, scope: this.scope, address: this.address, record, ports, image, logMaxBytes: this.logMaxBytes });
    try {
      return (await this.createReplacingLeftover(options(await this.pauseImage()))).id;
    } catch (err) {
      if (err instanceof StartError) throw err;
      if (!isNoSuchImage(err)) throw new StartError('StartFailed', `creating pod sandbox: ${engineMessage(err)}`);
    }
    // Removed since it was made sure of (`docker rmi`, an engine reset): made again, once.
    this.pause = undefined;
    try {
      return (await this.createReplacingLeftover(options(await this.pauseImage()))).id;
    } catch (err) {
      if (err instanceof StartError) throw err;
      throw new StartError('StartFailed', `creating pod sandbox: ${engineMessage(err)}`);
    }
  }

  /** The pause image, made on the engine if it lacks it; shared by the sandboxes created meanwhile. */
  private async pauseImage(): Promise<string> {
    if (!this.pause || this.pause.until <= Date.now()) {
      const ref = ensurePauseImage(this.docker);
      this.pause = { ref, until: Date.now() + IMAGE_PRESENT_FOR_MS };
      // A failure is not remembered: the next sandbox asks again.
      ref.catch(() => {
        if (this.pause?.ref === ref) this.pause = undefined;
      });
    }
    try {
      return await this.pause.ref;
    } catch (err) {
      // Waiting, not a failed run: the engine may answer better at the next try.
      throw new StartError('RuntimeUnavailable', `pod sandbox: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async createReplacingLeftover(opts: Docker.ContainerCreateOptions): Promise<Docker.Container> {
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

  /** Starts a created sandbox and reads its pod IP. A failure removes it: a half-made pod is of no use. */
  async start(id: string): Promise<StartedSandbox> {
    try {
      await this.docker.getContainer(id).start();
      const podIP = podIPOf(await this.docker.getContainer(id).inspect());
      if (!podIP) throw new Error('the engine gave it no address on the bridge network');
      return { id, podIP };
    } catch (err) {
      await this.remove(id).catch(() => {});
      throw new StartError('StartFailed', `starting pod sandbox: ${engineMessage(err)}`);
    }
  }

  /** The instance's sandbox on the engine, if any; `declared` names its ports as in the manifest. */
  async find(instanceId: string, declared: PortSpec[] = []): Promise<FoundSandbox | undefined> {
    const listed = (await listManaged(this.docker, this.node, this.scope, instanceId)).filter((c) => c.labels[LABELS.sandbox] === 'true');
    // Names are unique per engine, so there is at most one; a second would be another agent's race.
    for (const c of listed) {
      let info: Docker.ContainerInspectInfo;
      try {
        info = await this.docker.getContainer(c.id).inspect();
      } catch {
        continue; // Removed meanwhile.
      }
      const running = info.State.Running;
      const podIP = running ? podIPOf(info) : undefined;
      return {
        id: c.id,
        uid: c.labels[LABELS.uid] ?? '',
        running,
        ...(podIP ? { podIP } : {}),
        ports: sandboxPorts(info, declared, this.address),
      };
    }
    return undefined;
  }

  /**
   * Kills and removes the sandbox; gone already is fine. No grace: the pause process ignores
   * SIGTERM and holds no work; stop the app containers first, so they keep their network while
   * they shut down.
   */
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
 * The pod's ports as the sandbox publishes them (the inverse of portBindings), named and ordered
 * after `declared`. Not docker-driver.ts's publishedPorts: the driver imports this module (joinSandbox).
 */
function sandboxPorts(info: Docker.ContainerInspectInfo, declared: PortSpec[], address: string): PortStatus[] {
  const bindings = (info.HostConfig.PortBindings ?? {}) as Record<string, { HostIp?: string; HostPort?: string }[] | null>;
  const same = (a: { containerPort: number; protocol?: string }, b: { containerPort: number; protocol?: string }) => a.containerPort === b.containerPort && (a.protocol ?? 'TCP') === (b.protocol ?? 'TCP');
  const ports: PortStatus[] = [];
  for (const [key, binds] of Object.entries(bindings)) {
    const containerPort = Number.parseInt(key, 10);
    const hostPort = Number(binds?.[0]?.HostPort);
    if (!containerPort || !hostPort) continue;
    const protocol = key.endsWith('/udp') ? ('UDP' as const) : undefined;
    const hostIP = binds?.[0]?.HostIp;
    const name = declared.find((d) => same(d, { containerPort, protocol }))?.name;
    ports.push({ ...(name ? { name } : {}), containerPort, hostPort, ...(protocol ? { protocol } : {}), ...(hostIP && hostIP !== address ? { hostIP } : {}) });
  }
  const order = (p: PortStatus) => {
    const i = declared.findIndex((d) => same(d, p));
    return i < 0 ? declared.length : i;
  };
  return ports.sort((a, b) => order(a) - order(b));
}

/** The bridge network's address of a running container. */
function podIPOf(info: Docker.ContainerInspectInfo): string | undefined {
  // The top-level IPAddress (the default bridge's, on engines that still report it) is not in the typings.
  return info.NetworkSettings.Networks?.bridge?.IPAddress || (info.NetworkSettings as { IPAddress?: string }).IPAddress || undefined;
}
