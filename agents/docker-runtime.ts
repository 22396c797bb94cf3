import type { ContainerSpec, PortStatus } from '../state/records/instance.ts';
import type { AdoptedRun, ContainerRuntime, ExecTarget, PodRef, PodSandbox, RuntimeStartRequest, SavedRun, SavedRunInput } from './runtime.ts';
import { StartError } from './container-runtime.ts';
import type { DockerDriver, FoundContainer } from './docker-driver.ts';
import type { InstanceState } from './instance-dir.ts';
import type { PullSecrets } from './image-pull.ts';
import { dockerMounts } from './pod-volumes.ts';

/**
 * The Docker runtime behind the ContainerRuntime seam. A pod is a sandbox (a pause container
 * holding the network namespace, its ports published once) and one engine container per
 * container of the pod, joined to it, so containers reach each other on localhost and share the
 * pod's volumes as bind mounts (docker-driver.ts does the engine work).
 */
export class DockerRuntime implements ContainerRuntime {
  readonly name = 'docker' as const;

  constructor(
    /** The driver while the engine answers; else why not. */
    private readonly driver: () => DockerDriver | string,
    /** Credentials for pulls: the pod's imagePullSecrets at their versions. */
    private readonly pullSecrets: (pod: PodRef) => PullSecrets | undefined,
  ) {}

  unavailable(): string | undefined {
    const d = this.driver();
    return typeof d === 'string' ? d : undefined;
  }

  private engine(what: string): DockerDriver {
    const d = this.driver();
    if (typeof d === 'string') throw new StartError('RuntimeUnavailable', `${what}: ${d}`);
    return d;
  }

  /** The pause container holding the pod's network, its ports published once for every container. */
  async ensureSandbox(pod: PodRef, ports: PortStatus[]): Promise<PodSandbox> {
    const sandboxes = this.engine('pod sandbox').sandboxes;
    const started = await sandboxes.start(await sandboxes.create(pod.record, ports));
    return { id: started.id, podIP: started.podIP, ports };
  }

  /** A running sandbox of this incarnation is kept; a dead one or another uid's is removed (the pod starts again in a new one). */
  async findSandbox(pod: PodRef): Promise<PodSandbox | undefined> {
    const d = this.driver();
    if (typeof d === 'string') return undefined;
    const declared = pod.record.containers.filter((c) => c.image).flatMap((c) => c.ports);
    const found = await d.sandboxes.find(pod.record.id, declared);
    if (!found) return undefined;
    if (found.running && found.uid === pod.record.uid) return { id: found.id, ...(found.podIP ? { podIP: found.podIP } : {}), ports: found.ports };
    await d.sandboxes.remove(found.id);
    return undefined;
  }

  /** Gone or stopped: dead. An engine that does not answer says nothing about it: alive until known otherwise. */
  async sandboxAlive(sandbox: PodSandbox): Promise<boolean> {
    const d = this.driver();
    if (typeof d === 'string') return true;
    try {
      return (await d.docker.getContainer(sandbox.id).inspect()).State.Running;
    } catch (err) {
      return (err as { statusCode?: number }).statusCode !== 404;
    }
  }

  async removeSandbox(pod: PodRef, sandbox: PodSandbox | undefined): Promise<void> {
    const d = this.driver();
    if (typeof d === 'string') return;
    const id = sandbox?.id ?? (await d.sandboxes.find(pod.record.id))?.id;
    if (id) await d.sandboxes.remove(id);
  }

  /** The image by its pull policy (image-pull.ts: one check and one pull per image for all the instances starting). */
  async prepare(pod: PodRef, c: ContainerSpec, report: RuntimeStartRequest['report'], signal?: AbortSignal): Promise<void> {
    await this.engine(`container ${c.name} has image ${c.image}`).puller.ensure(c.image!, c.imagePullPolicy ?? 'IfNotPresent', report, this.pullSecrets(pod), signal);
  }

  async start(req: RuntimeStartRequest) {
    const c = req.container;
    const secrets = this.pullSecrets(req.pod);
    return this.engine(`container ${c.name} has image ${c.image}`).start({
      // LocalInstance called prepare just before (runtime.ts): an Always policy must not pull twice.
      imageReady: true,
      record: req.pod.record,
      dir: req.pod.dir,
      container: c,
      ports: req.ports,
      identity: req.identity,
      restarts: req.restarts,
      mounts: dockerMounts(c, req.volumes),
      ...(req.sandbox ? { sandbox: req.sandbox.id } : {}),
      report: req.report,
      ...(secrets ? { pullSecrets: secrets } : {}),
    });
  }

  async adopt(pod: PodRef, container: ContainerSpec, saved: InstanceState | undefined, found: FoundContainer[]): Promise<AdoptedRun | undefined> {
    const d = this.driver();
    const engine = found.find((f) => f.container === container.name);
    if (engine && typeof d !== 'string') {
      const adopted = await d.adopt(engine, pod.dir);
      return { ports: engine.ports, restarts: engine.restarts, startedAt: engine.startedAt, result: 'running' in adopted ? { running: adopted.running } : { exit: adopted.exit } };
    }
    const state = saved?.docker?.find((s) => s.name === container.name);
    if (!state) return undefined;
    // Ended and removed before; or removed while no agent was watching, code unknown.
    return { ports: state.ports, restarts: state.restarts, startedAt: state.startedAt, result: { exit: state.exit ?? { finishedAt: Date.now() } } };
  }

  /** Inside the container, as Kubernetes runs exec probes and hooks. */
  exec(target: ExecTarget, command: string[], timeoutMs: number): Promise<{ ok: boolean; detail?: string }> {
    const d = this.driver();
    if (typeof d === 'string') return Promise.resolve({ ok: false, detail: `exec: ${d}` });
    const id = target.proc?.containerId;
    if (!id) return Promise.resolve({ ok: false, detail: 'exec: the container is not running' });
    return d.exec(id, command, timeoutMs);
  }

  saved(run: SavedRunInput): SavedRun | undefined {
    if (!run.ran) return undefined;
    return {
      docker: {
        name: run.name,
        ...(run.proc?.containerId ? { containerId: run.proc.containerId } : {}),
        ports: run.ports,
        restarts: run.restarts,
        ...(run.startedAt !== undefined ? { startedAt: run.startedAt } : {}),
        ...(!run.proc && run.finishedAt !== undefined ? { exit: { exitCode: run.exitCode, finishedAt: run.finishedAt, ...(run.exitReason ? { reason: run.exitReason } : {}) } } : {}),
      },
    };
  }
}
