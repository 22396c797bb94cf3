import type Docker from 'dockerode';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { assertKeyPart } from '../state/keys.ts';
import { bridgeGateway, connectDocker, DockerEvents, instanceOf, probeEngine, type ManagedContainer } from './docker-engine.ts';
import { DockerDriver } from './docker-driver.ts';
import { agentScope, LABELS } from './docker-labels.ts';

/**
 * The agent's view of the Docker Engine on its node: whether it answers (and so whether the node
 * offers the docker runtime), and the containers labelled for the node, from which strays are
 * removed. The driver exists unless Docker is disabled; it is handed out only while the engine
 * answers. It also learns the gateway of the containers' network (Docker's default `bridge`), the
 * address of this host that containers reach: the service proxy listens there too, and containers
 * get it as `<NAME>_SERVICE_HOST`.
 */
export class NodeDocker {
  private readonly driver?: DockerDriver;
  private up = false;
  private probed = false;
  private whyDown = 'Docker is disabled on this node';
  private gw?: string;
  /** The last thing said about the gateway, to say it once. */
  private gatewayNote?: string;

  constructor(
    opts: { enabled: boolean; node: string; address: string; dataDir: string; prefix: string; logMaxBytes: number },
    private readonly log: (line: string) => void,
  ) {
    if (!opts.enabled) return;
    const client = connectDocker();
    const scope = agentScope(opts.dataDir, opts.prefix);
    this.driver = new DockerDriver(client, new DockerEvents(client, opts.node, log), opts.node, scope, opts.address, opts.logMaxBytes);
  }

  /** The driver while the engine answers. */
  usable(): DockerDriver | undefined {
    return this.up ? this.driver : undefined;
  }

  /** For LocalInstance: the driver, or why there is none. */
  driverOrReason(): DockerDriver | string {
    return this.usable() ?? this.whyDown;
  }

  client(): Docker | undefined {
    return this.usable()?.docker;
  }

  get available(): boolean {
    return this.up;
  }

  /**
   * The gateway of Docker's `bridge` network when it is an address of this host (not when the
   * engine is elsewhere, DOCKER_HOST=tcp://...); undefined before the engine first answered. Kept
   * while the engine is away: containers that outlive it still reach the proxy there.
   */
  get gateway(): string | undefined {
    return this.gw;
  }

  /** Asks the engine whether it answers; true when that changed what this node offers. */
  async probe(): Promise<boolean> {
    if (!this.driver) return false;
    const probe = await probeEngine(this.driver.docker);
    const was = this.up;
    this.up = probe.ok;
    if (probe.ok) {
      if (!was) {
        this.log(`docker engine ${probe.version} answers: offering the docker runtime`);
        await this.driver.events.start();
      }
      // Every time: an engine restarted with another `bip` has another gateway.
      await this.learnGateway(this.driver.docker);
    } else {
      this.whyDown = `Docker engine not reachable: ${probe.error}`;
      if (was) this.log(`${this.whyDown}: no longer offering the docker runtime`);
      else if (!this.probed) this.log(`${this.whyDown}: offering only the process runtime`);
    }
    this.probed = true;
    return was !== this.up;
  }

  private async learnGateway(docker: Docker): Promise<void> {
    let found: string | undefined;
    try {
      found = await bridgeGateway(docker);
    } catch (err) {
      this.noteGateway(`docker network inspect bridge failed (${err instanceof Error ? err.message : err}); containers' service address stays ${this.gw ?? 'the node address'}`);
      return;
    }
    const local = found !== undefined && (await isLocalAddress(found));
    if (local) {
      this.gw = found;
      this.noteGateway(`containers reach services at ${found}, the gateway of Docker's bridge network`);
    } else {
      this.gw = undefined;
      this.noteGateway(`Docker's bridge network has ${found ? `gateway ${found}, not an address of this host` : 'no gateway'}: containers get the node address as <NAME>_SERVICE_HOST`);
    }
  }

  private noteGateway(note: string): void {
    if (note !== this.gatewayNote) this.log(note);
    this.gatewayNote = note;
  }

  /**
   * This node's containers on the engine by instance id; undefined when the engine cannot tell.
   * A container labelled for no valid instance id is a stray whatever happens, removed here.
   */
  async listByInstance(): Promise<Map<string, ManagedContainer[]> | undefined> {
    const docker = this.usable();
    if (!docker) return undefined;
    let managed: ManagedContainer[];
    try {
      managed = await docker.listManaged();
    } catch (err) {
      this.log(`listing containers failed: ${err}`);
      return undefined;
    }
    const byInstance = new Map<string, ManagedContainer[]>();
    for (const c of managed) {
      const id = instanceOf(c);
      if (id === undefined || !isKeyPart(id)) await this.remove(c, 'stray: labelled for no valid instance');
      else byInstance.set(id, [...(byInstance.get(id) ?? []), c]);
    }
    return byInstance;
  }

  /** Containers labelled for an instance that it does not run (`known` ids): stopped and removed. */
  async removeStrays(seen: ManagedContainer[] | undefined, known: Set<string>): Promise<void> {
    if (!seen || !this.usable()) return;
    await Promise.all(seen.filter((c) => !known.has(c.id)).map((c) => this.remove(c, 'stray: nothing on this node runs it')));
  }

  /** On `stop({ stopInstances })`: whatever is still labelled for this node goes too. */
  async removeAll(): Promise<void> {
    const docker = this.usable();
    const left = docker ? await docker.listManaged().catch(() => []) : [];
    await Promise.all(left.map((c) => this.remove(c, 'the agent stops its instances')));
  }

  private async remove(c: ManagedContainer, why: string): Promise<void> {
    this.log(`removing container ${c.name} (${why})`);
    await this.usable()
      ?.removeManaged(c)
      .catch((err) => this.log(`removing ${c.name} failed: ${err}`));
  }

  close(): void {
    this.driver?.events.close();
  }
}

/**
 * Whether this host has `address`: a socket binds it. (os.networkInterfaces() would not do: it
 * leaves out interfaces without carrier, as docker0 is while no container is attached.)
 */
function isLocalAddress(address: string): Promise<boolean> {
  const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  return new Promise<boolean>((resolve) => {
    socket.once('error', () => resolve(false));
    socket.bind({ address, port: 0 }, () => resolve(true));
  }).finally(() => {
    try {
      socket.close();
    } catch {
      // Never bound.
    }
  });
}

function isKeyPart(id: string): boolean {
  try {
    assertKeyPart(id);
    return true;
  } catch {
    return false;
  }
}

/** Namespace and deployment of an instance known only from its containers' labels. */
export function ownerFromLabels(seen: ManagedContainer[] | undefined): { namespace: string; deployment: string } | undefined {
  const labels = seen?.[0]?.labels;
  const namespace = labels?.[LABELS.namespace];
  const deployment = labels?.[LABELS.deployment];
  return namespace && deployment ? { namespace, deployment } : undefined;
}
