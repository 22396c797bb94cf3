import { uniquePorts } from './pod-network.ts';
import { readlinkSync } from 'node:fs';
import type { ContainerSpec, PortStatus } from '../state/records/instance.ts';
import { StartError } from './container-runtime.ts';
import { readInstanceState } from './instance-dir.ts';
import { deleteNetns, ensureNetns, inspectNetns, listNetns, netnsPath, podNetnsSupport } from './pod-netns.ts';
import {
  aliasNames,
  candidateSlots,
  DEFAULT_POD_NETWORK_RANGE,
  netnsName,
  netnsPrefix,
  parsePodNetworkRange,
  parseSandboxAlias,
  sandboxAlias,
  type PodNetworkRange,
} from './pod-netns-plan.ts';
import { PodPortRelay } from './pod-port-relay.ts';
import { spawnContainer, type ContainerProcess } from './process-driver.ts';
import { ProcessRuntime } from './process-runtime.ts';
import { processVolumeEnv } from './pod-volumes.ts';
import type { ExecTarget, PodRef, PodSandbox, RuntimeStartRequest } from './runtime.ts';

/**
 * The process runtime with a network namespace per pod (`gantry agent --pod-network-namespaces`,
 * root on Linux): what a Kubernetes pod's network promises, for processes. The pod's sandbox is a
 * namespace (pod-netns.ts) with loopback and a veth to the host; its processes start inside it, so
 * each listens on its own containerPort (PORT / PORT_<NAME> say so, as on Docker) and siblings
 * reach each other on localhost:<containerPort>. Each declared port is published on the node: the
 * host port allocated as for host-network processes, relayed by the agent to podIP:containerPort
 * (pod-port-relay.ts), which is where probes and clients reach it.
 *
 * Everything else (spawn, adoption by state.json, stops, exit files, cgroups) is ProcessRuntime's:
 * the wrapper shell is started through `nsenter --net=<namespace> --`, which execs it, so the pid
 * recorded is still the wrapper's. A restarted agent finds the namespace by its name (scope +
 * instance id), checks the uid in its loopback's alias, reads the pod IP back from eth0 and opens
 * the relays again on the host ports state.json recorded. Nothing of it is kept in Redis.
 */
export class NamespacedProcessRuntime extends ProcessRuntime {
  private readonly nsenter: string;
  private readonly range: PodNetworkRange;
  /** The relays of each namespace this agent serves (by namespace name), with the ports they should hold. */
  private readonly relays = new Map<string, { relay: PodPortRelay; ports: PortStatus[] }>();
  private readonly log: (line: string) => void;

  /** Throws one line when this agent cannot make namespaces (not root, not Linux, no ip or nsenter) or the range is wrong. */
  constructor(
    private readonly config: {
      adoptPollMs: number;
      /** The agent's address: published ports listen there, or on their own hostIP. */
      address: string;
      /** The installation scope (agentScope): namespace names, and which strays are this agent's. */
      scope: string;
      /** The private IPv4 range the pods' /30s come from (default 10.213.0.0/16). */
      range?: string;
      log?: (line: string) => void;
    },
  ) {
    super({ adoptPollMs: config.adoptPollMs });
    const support = podNetnsSupport();
    if ('error' in support) throw new Error(`--pod-network-namespaces ${support.error}`);
    this.nsenter = support.nsenter;
    this.range = parsePodNetworkRange(config.range ?? DEFAULT_POD_NETWORK_RANGE);
    this.log = config.log ?? (() => {});
  }

  /** The namespace of the pod: made (or completed, or remade for a new uid), with its ports relayed. */
  async ensureSandbox(pod: PodRef, ports: PortStatus[]): Promise<PodSandbox> {
    const { id, uid } = pod.record;
    const name = netnsName(this.config.scope, id);
    try {
      const alias = parseSandboxAlias((await inspectNetns(name))?.alias);
      if (alias && !aliasNames(alias, id)) throw new Error(`it belongs to another instance (the names collide)`);
      // Another incarnation's (its processes were stopped before this one starts): a fresh one.
      if (alias && alias.uid !== uid) await this.drop(name);
      const link = await ensureNetns(name, sandboxAlias(id, uid), this.range, candidateSlots(this.range, this.config.scope, id));
      const failed = await this.relay(pod, name, link.podIP, ports);
      // The namespace and the ports bound so far stay: the retry completes them.
      if (failed[0]) throw failed[0];
      return { id: name, podIP: link.podIP, ports };
    } catch (err) {
      if (err instanceof StartError) throw err;
      throw new StartError('StartFailed', `pod network namespace ${name}: ${(err as Error).message}`);
    }
  }

  /**
   * The namespace a previous agent made for this incarnation, its relays opened again on the host
   * ports its processes were given (state.json). Another uid's, or one never finished (no alias:
   * no process ever started in it), is removed.
   */
  async findSandbox(pod: PodRef): Promise<PodSandbox | undefined> {
    const { id, uid } = pod.record;
    const name = netnsName(this.config.scope, id);
    const info = await inspectNetns(name);
    if (!info) return undefined;
    const alias = parseSandboxAlias(info.alias);
    if (alias && !aliasNames(alias, id)) return undefined;
    if (!alias || alias.uid !== uid) {
      await this.drop(name);
      return undefined;
    }
    // Repairs what is missing (an eth0 deleted by hand gets a new pair); the processes stay inside.
    const link = await ensureNetns(name, sandboxAlias(id, uid), this.range, candidateSlots(this.range, this.config.scope, id));
    const state = readInstanceState(pod.dir);
    const ports = uniquePorts(state?.uid === uid ? state.containers.flatMap((c) => c.ports) : []);
    for (const f of await this.relay(pod, name, link.podIP, ports)) this.log(`pod ${id}: ${f.message}; retried at every resync`);
    return { id: name, podIP: link.podIP, ports };
  }

  /**
   * Alive while the namespace exists with the pod IP it was given (a namespace deleted by hand, or
   * an eth0 gone with its host end, means a new sandbox). Ports that could not be bound are retried.
   */
  async sandboxAlive(sandbox: PodSandbox): Promise<boolean> {
    let info;
    try {
      info = await inspectNetns(sandbox.id);
    } catch {
      return true; // ip did not answer: nothing known against it
    }
    if (!info || info.podIP !== sandbox.podIP) return false;
    const entry = this.relays.get(sandbox.id);
    if (entry) for (const f of await entry.relay.open(entry.ports)) this.log(`${sandbox.id}: ${f.message}`);
    return true;
  }

  /** The relays close and the namespace goes; its processes were stopped before (LocalInstance). */
  async removeSandbox(pod: PodRef, sandbox: PodSandbox | undefined): Promise<void> {
    await this.drop(sandbox?.id ?? netnsName(this.config.scope, pod.record.id));
  }

  /**
   * Inside the namespace when the pod has one (a process adopted from an agent without the option
   * runs on the host's network, and so do its siblings), with PORT and PORT_<NAME> the containerPorts.
   */
  async start(req: RuntimeStartRequest): Promise<ContainerProcess> {
    const identity = { ...processVolumeEnv(req.container, req.volumes), ...req.identity };
    if (!req.sandbox) return spawnContainer({ dir: req.pod.dir, container: req.container, ports: req.ports, identity });
    return spawnContainer({
      dir: req.pod.dir,
      container: req.container,
      ports: portsInside(req.container),
      identity: siblingEnvInside(identity),
      enter: [this.nsenter, `--net=${netnsPath(req.sandbox.id)}`, '--'],
    });
  }

  /** Exec probes and hooks join the network of the container's process, so localhost is the pod's. */
  exec(target: ExecTarget, command: string[], timeoutMs: number): Promise<{ ok: boolean; detail?: string }> {
    const pid = target.proc?.pid;
    const net = pid !== undefined ? `/proc/${pid}/ns/net` : undefined;
    if (!net || !inOtherNetns(net)) return super.exec(target, command, timeoutMs);
    const env = { ...siblingEnvInside(target.env), ...portEnvInside(target.container) };
    return super.exec({ ...target, env }, [this.nsenter, `--net=${net}`, '--', ...command], timeoutMs);
  }

  /**
   * Namespaces of this installation that no instance in `claimed` (ids) owns: left by an instance
   * removed while no agent ran, or by a stop cut short. Removed, with their relays. Processes still
   * in one are not killed here (the stray sweep by cwd does that); the namespace lives until they end.
   */
  async removeStrays(claimed: Set<string>): Promise<string[]> {
    const mine = new Set([...claimed].map((id) => netnsName(this.config.scope, id)));
    const strays = listNetns(netnsPrefix(this.config.scope)).filter((n) => !mine.has(n));
    const removed: string[] = [];
    for (const name of strays) {
      try {
        await this.drop(name);
        removed.push(name);
        this.log(`removed stray network namespace ${name} (no instance on this node claims it)`);
      } catch (err) {
        this.log(`removing stray network namespace ${name} failed: ${(err as Error).message}`);
      }
    }
    return removed;
  }

  /** The agent stops: its relays close (published ports pause until the next agent opens them); pods keep running. */
  close(): void {
    for (const { relay } of this.relays.values()) relay.close();
    this.relays.clear();
  }

  private async relay(pod: PodRef, name: string, podIP: string, ports: PortStatus[]): Promise<StartError[]> {
    let entry = this.relays.get(name);
    if (entry && entry.relay.podIP !== podIP) {
      entry.relay.close();
      entry = undefined;
    }
    if (!entry) {
      entry = { relay: new PodPortRelay({ address: this.config.address, podIP, instanceId: pod.record.id, log: this.log }), ports };
      this.relays.set(name, entry);
    }
    entry.ports = ports;
    return entry.relay.open(ports);
  }

  private async drop(name: string): Promise<void> {
    this.relays.get(name)?.relay.close();
    this.relays.delete(name);
    await deleteNetns(name);
  }
}

/** Inside its namespace a process listens on its containerPort: the "host port" containerEnv puts in PORT is that. */
function portsInside(container: ContainerSpec): PortStatus[] {
  return container.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), containerPort: p.containerPort, hostPort: p.containerPort, ...(p.protocol === 'UDP' ? { protocol: p.protocol } : {}) }));
}

/** PORT and PORT_<NAME> as a process in a namespace got them (LocalInstance computed them for the host's network). */
function portEnvInside(container: ContainerSpec): Record<string, string> {
  const env: Record<string, string> = {};
  const first = container.ports[0];
  if (first) env.PORT = String(first.containerPort);
  for (const p of container.ports) if (p.name) env[`PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.containerPort);
  return env;
}

/**
 * GANTRY_POD_HOST and GANTRY_PORT_<containerPort> (pod-network.ts) as they hold inside the pod: its
 * siblings are on 127.0.0.1 at their containerPorts. LocalInstance gives the host's values (node
 * address, host ports), which inside the namespace would point at the pod's own loopback, so a
 * process written for the shared host network works unchanged here.
 */
function siblingEnvInside(env: Record<string, string>): Record<string, string> {
  const out = { ...env };
  for (const key of Object.keys(out)) {
    const m = /^GANTRY_PORT_(\d+)(?:_UDP)?$/.exec(key);
    if (m) out[key] = m[1]!;
  }
  if (out.GANTRY_POD_HOST !== undefined) out.GANTRY_POD_HOST = '127.0.0.1';
  return out;
}

function inOtherNetns(net: string): boolean {
  try {
    return readlinkSync(net) !== readlinkSync('/proc/self/ns/net');
  } catch {
    return false; // the process is gone: run beside it, as for the host's network
  }
}
