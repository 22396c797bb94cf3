import type Docker from 'dockerode';
import { runtimeLimits, type ContainerSpec, type InstanceRecord, type PortStatus } from '../state/records/instance.ts';
import { containerLabels, containerName } from './docker-labels.ts';

/**
 * What the agent asks the engine to create for one container of an instance (pure; no I/O).
 */

export interface DockerSpecInput {
  node: string;
  /** agentScope(): which installation the container belongs to. */
  scope: string;
  /** Host ports are published on this address only, as processes listen only there. */
  address: string;
  record: InstanceRecord;
  container: ContainerSpec;
  ports: PortStatus[];
  identity: Record<string, string>;
  restarts: number;
  logMaxBytes: number;
  /** The pod's volumes as bind mounts (pod-volumes.ts dockerMounts); absent: none. */
  mounts?: Docker.MountSettings[];
}

/**
 * The container's environment: its own env, then `PORT` / `PORT_<NAME>` and the GANTRY_*
 * identity, which win. Unlike a process, a container listens on its containerPort (Docker maps
 * the host port to it), so PORT carries the containerPort, the same value the manifest declares.
 * The image's own ENV (PATH...) stays: the engine merges it under these.
 */
export function dockerEnv(container: ContainerSpec, ports: PortStatus[], identity: Record<string, string>): string[] {
  const env: Record<string, string> = {};
  // LocalInstance passes the resolved spec (container-env.ts): references are literals by now.
  for (const e of container.env) if ('value' in e) env[e.name] = e.value;
  if (ports[0]) env.PORT = String(ports[0].containerPort);
  for (const p of ports) {
    if (p.name) env[`PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.containerPort);
  }
  return Object.entries({ ...env, ...identity }).map(([k, v]) => `${k}=${v}`);
}

/** Kubernetes' cpu.shares of a request: 1024 per core, at least 2 (the kernel's minimum). */
export function cpuShares(requestMilli: number): number {
  return Math.max(2, Math.floor((requestMilli * 1024) / 1000));
}

/**
 * Limits and requests as the engine takes them. Limits only become NanoCpus and Memory (a record
 * without `limits`, the flat form, has its requests as limits, as before: runtimeLimits); a request
 * is not a limit, but a cpu request sets the container's share of contended CPU (CpuShares), as the
 * kubelet does. No cpu request: the engine's default share (1024).
 */
export function dockerResources(c: ContainerSpec): Pick<Docker.HostConfig, 'NanoCpus' | 'Memory' | 'MemorySwap' | 'CpuShares'> {
  const { cpuMilli, memoryBytes } = runtimeLimits(c, 'docker');
  return {
    ...(cpuMilli ? { NanoCpus: cpuMilli * 1_000_000 } : {}),
    // Swap equal to memory: the limit is the limit, not twice it on hosts with swap.
    ...(memoryBytes ? { Memory: memoryBytes, MemorySwap: memoryBytes } : {}),
    ...(c.cpuMilli > 0 ? { CpuShares: cpuShares(c.cpuMilli) } : {}),
  };
}

/**
 * How the engine publishes host ports: `ExposedPorts` and `PortBindings` keyed `<containerPort>/<tcp|udp>`.
 * Shared by app containers and pod sandboxes (docker-sandbox.ts), which publish the pod's ports.
 */
export function portBindings(ports: PortStatus[], address: string): { exposed: Record<string, object>; bindings: Record<string, { HostIp: string; HostPort: string }[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of ports) {
    // "53/udp" publishes datagrams; a port's own hostIP (0.0.0.0: every address) wins over the node's.
    const key = `${p.containerPort}/${p.protocol === 'UDP' ? 'udp' : 'tcp'}`;
    exposed[key] = {};
    bindings[key] = [{ HostIp: p.hostIP ?? address, HostPort: String(p.hostPort) }];
  }
  return { exposed, bindings };
}

export function dockerCreateOptions(o: DockerSpecInput): Docker.ContainerCreateOptions {
  const { container: c, record } = o;
  const { exposed, bindings } = portBindings(o.ports, o.address);
  return {
    name: containerName(o.node, record.id, c.name),
    Image: c.image,
    // Kubernetes semantics: command replaces the image's ENTRYPOINT, args its CMD; with a command
    // and no args, the image's CMD is dropped (an empty Cmd), as `docker run --entrypoint` does.
    ...(c.command.length > 0 ? { Entrypoint: c.command, Cmd: c.args } : c.args.length > 0 ? { Cmd: c.args } : {}),
    Env: dockerEnv(c, o.ports, o.identity),
    ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
    Labels: containerLabels(o.node, o.scope, record, c.name, o.restarts),
    ExposedPorts: exposed,
    StopTimeout: record.terminationGracePeriodSeconds,
    HostConfig: {
      PortBindings: bindings,
      ...(o.mounts?.length ? { Mounts: o.mounts } : {}),
      ...dockerResources(c),
      // An init (docker-init, i.e. tini) as PID 1 forwards SIGTERM to the command, which then has
      // its default disposition, as a process started by the process driver does; a command that is
      // PID 1 itself ignores SIGTERM unless it handles it, and every stop would last the whole grace period.
      Init: true,
      // The agent restarts containers itself, with the restart policy and backoff of the instance.
      RestartPolicy: { Name: 'no' },
      // Capped like the process driver's log files: the current file and one rotated.
      LogConfig: { Type: 'json-file', Config: { 'max-size': String(o.logMaxBytes), 'max-file': '2' } },
    },
  };
}
