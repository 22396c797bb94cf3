import type Docker from 'dockerode';
import type { ContainerSpec, InstanceRecord, PortStatus } from '../state/records/instance.ts';
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
}

/**
 * The container's environment: its own env, then `PORT` / `PORT_<NAME>` and the GANTRY_*
 * identity, which win. Unlike a process, a container listens on its containerPort (Docker maps
 * the host port to it), so PORT carries the containerPort, the same value the manifest declares.
 * The image's own ENV (PATH...) stays: the engine merges it under these.
 */
export function dockerEnv(container: ContainerSpec, ports: PortStatus[], identity: Record<string, string>): string[] {
  const env: Record<string, string> = {};
  for (const { name, value } of container.env) env[name] = value;
  if (ports[0]) env.PORT = String(ports[0].containerPort);
  for (const p of ports) {
    if (p.name) env[`PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.containerPort);
  }
  return Object.entries({ ...env, ...identity }).map(([k, v]) => `${k}=${v}`);
}

export function dockerCreateOptions(o: DockerSpecInput): Docker.ContainerCreateOptions {
  const { container: c, record } = o;
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of o.ports) {
    exposed[`${p.containerPort}/tcp`] = {};
    bindings[`${p.containerPort}/tcp`] = [{ HostIp: o.address, HostPort: String(p.hostPort) }];
  }
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
      ...(c.cpuMilli > 0 ? { NanoCpus: c.cpuMilli * 1_000_000 } : {}),
      // Swap equal to memory: the limit is the limit, not twice it on hosts with swap.
      ...(c.memoryBytes > 0 ? { Memory: c.memoryBytes, MemorySwap: c.memoryBytes } : {}),
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
