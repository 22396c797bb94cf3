import type { PortStatus } from '../state/records/instance.ts';
import { StartError } from './container-runtime.ts';
import type { ContainerRuntime, PodRef, PodSandbox } from './runtime.ts';
import type { ConfigKind, ConfigVersionRecord } from '../state/records/config.ts';
import type { ContainerRun } from './instance-status.ts';
import { podPortEnv, uniquePorts } from './pod-network.ts';
import { emptyDirOverLimit, preparePodVolumes, removePodVolumes, type PreparedVolume } from './pod-volumes.ts';
import { allocateHostPorts } from './process-driver.ts';

type Run = ContainerRun & { runtime: ContainerRuntime };

/** What the pod needs of the agent (a part of InstanceHost). */
export interface PodHost {
  node: string;
  address: string;
  readConfig(namespace: string, kind: ConfigKind, name: string, version: string): Promise<ConfigVersionRecord | undefined>;
  volumes: { memoryRoot?: string; scope: string };
}

/**
 * What the containers of one pod share, made before the first of them starts: the sandbox (a
 * runtime's own network for the pod, where it has one: Docker's pause container), the host ports of
 * every container (allocated together, so each container is told its siblings'), and the volumes.
 */
export class PodSetup {
  /** The pod's sandbox while it exists. */
  sandbox?: PodSandbox;
  /** The volumes as last prepared (for execs beside processes). */
  prepared: PreparedVolume[] = [];
  /** The runtime whose sandbox it is (Docker): its containers join it. */
  readonly sandboxRuntime?: ContainerRuntime;

  constructor(
    private readonly pod: PodRef,
    private readonly host: PodHost,
    private readonly runs: Run[],
  ) {
    this.sandboxRuntime = runs.find((r) => r.runtime.ensureSandbox)?.runtime;
  }

  /** Finds the sandbox a previous agent made, to keep it (and the containers in it) as it is. */
  async adopt(): Promise<void> {
    this.sandbox = await this.sandboxRuntime?.findSandbox?.(this.pod).catch(() => undefined);
  }

  /** A container adopted in the sandbox publishes nothing itself: its ports are the sandbox's for its containerPorts. */
  adoptedPorts(c: Run, found: PortStatus[]): PortStatus[] {
    if (!this.sandbox || c.runtime !== this.sandboxRuntime || found.length > 0) return found;
    return this.sandboxPorts(c);
  }

  /** A container's declared ports as the sandbox publishes them, named as the container names them. */
  private sandboxPorts(c: Run): PortStatus[] {
    return c.spec.ports.flatMap((d) => {
      const p = this.sandbox!.ports.find((x) => x.containerPort === d.containerPort && (x.protocol ?? 'TCP') === (d.protocol ?? 'TCP'));
      if (!p) return [];
      const { name: _name, ...rest } = p;
      return [{ ...(d.name ? { name: d.name } : {}), ...rest }];
    });
  }

  /**
   * The network `c` starts in, with `c.ports` set. For a runtime with sandboxes, the first start
   * creates the sandbox with every port of its containers, allocated at once; later starts join
   * it. Docker containers an older agent started without a sandbox keep their own network (a pod
   * is not split across two), so siblings started later do the same. Ports of processes are
   * allocated for all of them on the first start (each is told its siblings'); a fixed hostPort is
   * checked again at every start of its container.
   */
  async network(c: Run): Promise<PodSandbox | undefined> {
    const rt = c.runtime;
    const mates = this.runs.filter((r) => r.runtime === rt);
    if (rt.ensureSandbox && !this.sandbox && mates.some((r) => r !== c && r.proc)) {
      await this.allocate([c], true);
      return undefined;
    }
    if (rt.ensureSandbox) {
      if (!this.sandbox) {
        await this.allocate(mates, false);
        this.sandbox = await rt.ensureSandbox(this.pod, uniquePorts(mates.flatMap((r) => r.ports)));
        // One network: a containerPort two containers declare is one port of the pod, published once.
        for (const r of mates) r.ports = this.sandboxPorts(r);
      }
      // A container first started in an adopted sandbox: its ports are the sandbox's.
      if (c.ports.length === 0) c.ports = this.sandboxPorts(c);
      return this.sandbox;
    }
    await this.allocate(mates.filter((r) => r.ports.length === 0 && r.spec.ports.length > 0), false);
    await this.allocate([c], true);
    return undefined;
  }

  private async allocate(runs: Run[], recheckFixed: boolean): Promise<void> {
    for (const r of runs) {
      const again = recheckFixed && r.spec.ports.some((p) => p.hostPort);
      if (r.spec.ports.length > 0 && (r.ports.length === 0 || again)) r.ports = await allocateHostPorts(this.host.address, r.spec.ports, r.ports);
    }
  }

  /** GANTRY_PORT_<containerPort> of every process of the pod (pod-network.ts). */
  siblingPortEnv(address: string): Record<string, string> {
    return podPortEnv(this.runs.filter((r) => r.runtime.name === 'process').flatMap((r) => r.ports), address);
  }

  /**
   * The volumes, (re)written for a start: config and downward API files at the record's versions;
   * emptyDirs keep their content for the pod's life. What is missing waits as CreateContainerConfigError.
   */
  async volumes(warn: (w: { reason: string; message: string }) => void): Promise<PreparedVolume[]> {
    const { record, dir } = this.pod;
    if (!record.volumes?.length) return [];
    const r = await preparePodVolumes({
      record,
      dir,
      ...(this.host.volumes.memoryRoot !== undefined ? { memoryRoot: this.host.volumes.memoryRoot } : {}),
      scope: this.host.volumes.scope,
      node: this.host.node,
      hostIP: this.host.address,
      ...(this.sandbox?.podIP ? { podIP: this.sandbox.podIP } : {}),
      read: (namespace, kind, name, version) => this.host.readConfig(namespace, kind, name, version),
    });
    if ('error' in r) throw new StartError('CreateContainerConfigError', r.error);
    for (const w of r.warnings) warn(w);
    this.prepared = r.volumes;
    return r.volumes;
  }

  /**
   * emptyDirs over their sizeLimit, as a status notice (the kubelet would evict the pod; Gantry
   * reports it, since nothing would replace an evicted instance): undefined when all are within.
   */
  async sizeLimitNotice(): Promise<{ reason: string; message: string } | undefined> {
    const over = await emptyDirOverLimit(this.prepared).catch(() => []);
    if (over.length === 0) return undefined;
    const what = over.map((o) => `emptyDir ${o.name} uses ${o.usedBytes} bytes of its sizeLimit ${o.limitBytes}`).join('; ');
    return { reason: 'EmptyDirSizeLimitExceeded', message: `EmptyDirSizeLimitExceeded: ${what}` };
  }

  /** True once when the sandbox is found dead (its containers must start again in a new one). */
  async sandboxLost(): Promise<boolean> {
    const sb = this.sandbox;
    if (!sb || !this.sandboxRuntime?.sandboxAlive) return false;
    if (await this.sandboxRuntime.sandboxAlive(sb)) return false;
    await this.sandboxRuntime.removeSandbox?.(this.pod, sb).catch(() => {});
    this.sandbox = undefined;
    return true;
  }

  /** The sandbox and the memory-backed volumes go with the pod (the instance dir is the agent's to remove). */
  async remove(): Promise<void> {
    await this.sandboxRuntime?.removeSandbox?.(this.pod, this.sandbox).catch(() => {});
    this.sandbox = undefined;
    removePodVolumes({ dir: this.pod.dir, ...(this.host.volumes.memoryRoot !== undefined ? { memoryRoot: this.host.volumes.memoryRoot } : {}), scope: this.host.volumes.scope, uid: this.pod.record.uid });
  }
}
