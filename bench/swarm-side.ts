/**
 * The Docker Swarm half of swarm-scale: a single-node swarm on the local engine (initialised here
 * only when it is not one already, and left again at the end), a replicated service of busybox
 * httpd, and polls of its tasks until the wanted ones run and answer HTTP on their ports.
 *
 * What keeps the comparison fair to Swarm: the image is named by its ID (a tag makes every task
 * try a registry pull first, which fails here after a DNS lookup); ports are published in host mode
 * on a host port per task, as Gantry publishes each replica's; `Init` as Gantry's containers; the
 * service is driven through the engine API (no CLI start-up in the timed part).
 */
import type Docker from 'dockerode';
import { httpGet } from './harness.ts';

export const SWARM_SERVICE_PREFIX = 'gantry-bench-swarm';

/** `docker swarm init` unless the engine is in a swarm already; says whether to leave it at the end. */
export async function joinSwarm(docker: Docker): Promise<{ ok: true; initialised: boolean } | { ok: false; why: string }> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
  const state = info.Swarm?.LocalNodeState;
  if (state === 'active') {
    return info.Swarm?.ControlAvailable ? { ok: true, initialised: false } : { ok: false, why: 'the engine is a swarm worker, not a manager' };
  }
  if (state !== 'inactive') return { ok: false, why: `swarm state is ${state ?? 'unknown'}` };
  try {
    await docker.swarmInit({ ListenAddr: '127.0.0.1:2377', AdvertiseAddr: '127.0.0.1' });
    return { ok: true, initialised: true };
  } catch (err) {
    return { ok: false, why: `docker swarm init failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

export interface UpdatePolicy {
  parallelism: number;
  order: 'stop-first' | 'start-first';
}

/** The docker CLI's defaults for `docker service create` (update-parallelism 1, stop-first, monitor 5s). */
export const SWARM_DEFAULT_UPDATE: UpdatePolicy = { parallelism: 1, order: 'stop-first' };

export class SwarmService {
  private constructor(
    private readonly docker: Docker,
    readonly name: string,
    private readonly imageId: string,
    private greeting: string,
  ) {}

  /** A service of `replicas` busybox httpd tasks, each publishing 8080 on a host port of its own. */
  static async create(docker: Docker, name: string, imageId: string, replicas: number, update: UpdatePolicy): Promise<SwarmService> {
    const svc = new SwarmService(docker, name, imageId, 'v0');
    await docker.createService(svc.spec(replicas, update) as Docker.CreateServiceOptions);
    return svc;
  }

  private spec(replicas: number, update: UpdatePolicy): Record<string, unknown> {
    return {
      Name: this.name,
      Labels: { 'gantry-bench': 'swarm' },
      TaskTemplate: {
        ContainerSpec: {
          Image: this.imageId,
          Command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
          Env: [`GREETING=${this.greeting}`],
          Init: true,
          StopGracePeriod: 2_000_000_000,
        },
        RestartPolicy: { Condition: 'any' },
      },
      Mode: { Replicated: { Replicas: replicas } },
      UpdateConfig: { Parallelism: update.parallelism, Delay: 0, FailureAction: 'pause', Monitor: 5_000_000_000, MaxFailureRatio: 0, Order: update.order },
      EndpointSpec: { Ports: [{ Protocol: 'tcp', TargetPort: 8080, PublishMode: 'host' }] },
    };
  }

  /** The service's spec changed in one call (the version read first is not part of a timed step's work on Gantry's side either: the file is written before). */
  private async change(edit: (spec: { Mode: { Replicated: { Replicas: number } }; TaskTemplate: { ContainerSpec: { Env: string[] } } }) => void): Promise<() => Promise<void>> {
    const service = this.docker.getService(this.name);
    const info = (await service.inspect()) as { Version: { Index: number }; Spec: Parameters<typeof edit>[0] };
    const spec = structuredClone(info.Spec);
    edit(spec);
    return async () => {
      await service.update({ version: info.Version.Index, ...spec } as unknown as Docker.ServiceSpec);
    };
  }

  /** Changes only how updates roll (no task changes, so nothing is redeployed). */
  async setUpdatePolicy(update: UpdatePolicy): Promise<void> {
    await (
      await this.change((s) => {
        const spec = s as unknown as { UpdateConfig: Record<string, unknown> };
        spec.UpdateConfig = { ...spec.UpdateConfig, Parallelism: update.parallelism, Order: update.order };
      })
    )();
  }

  /** Prepared untimed; the returned function is the timed call. */
  prepareScale(replicas: number): Promise<() => Promise<void>> {
    return this.change((s) => (s.Mode.Replicated.Replicas = replicas));
  }

  prepareTemplate(greeting: string): Promise<() => Promise<void>> {
    this.greeting = greeting;
    return this.change((s) => (s.TaskTemplate.ContainerSpec.Env = [`GREETING=${greeting}`]));
  }

  /** Tasks that should run, and of them those running the current greeting and answering on their host port. */
  async look(answered: Set<string>): Promise<{ running: number; answering: number; oldRunning: number }> {
    const tasks = (await this.docker.listTasks({ filters: { service: [this.name] } })) as SwarmTask[];
    const mine = `GREETING=${this.greeting}`;
    let running = 0;
    let oldRunning = 0;
    const checks: Promise<void>[] = [];
    let answering = 0;
    for (const t of tasks) {
      if (t.Status?.State !== 'running') continue;
      const current = t.Spec?.ContainerSpec?.Env?.includes(mine) ?? false;
      if (!current) {
        oldRunning++;
        continue;
      }
      if (t.DesiredState !== 'running') continue;
      running++;
      const port = t.Status?.PortStatus?.Ports?.[0]?.PublishedPort;
      if (!port) continue;
      const key = `${t.ID}|${port}`;
      if (answered.has(key)) answering++;
      else
        checks.push(
          httpGet('127.0.0.1', port, 500).then(
            () => {
              answered.add(key);
              answering++;
            },
            () => {},
          ),
        );
    }
    await Promise.all(checks);
    return { running, answering, oldRunning };
  }

  /** Containers of the service still on the engine, running or not (a scale-down is over when only the wanted ones are left). */
  async containers(): Promise<number> {
    return (await this.docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name=${this.name}`] } })).length;
  }

  async running(): Promise<number> {
    return (await this.docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${this.name}`], status: ['running'] } })).length;
  }

  async remove(): Promise<void> {
    await this.docker.getService(this.name).remove().catch(() => {});
  }
}

interface SwarmTask {
  ID: string;
  DesiredState?: string;
  Status?: { State?: string; PortStatus?: { Ports?: { PublishedPort?: number }[] } };
  Spec?: { ContainerSpec?: { Env?: string[] } };
}
