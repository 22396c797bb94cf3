import type { Runtime } from '../state/records/instance.ts';
import type { ExitInfo, RunningContainer } from './container-runtime.ts';
import type { AdoptedRun, ContainerRuntime, RuntimeStartRequest, SavedRun } from './runtime.ts';

/**
 * The hollow runtime (`gantry agent --hollow`), for benchmarks only, as kubemark's hollow kubelet
 * is for Kubernetes: the agent runs its whole path (registration, heartbeats, jobs, host ports,
 * env, volumes, instance dirs, status writes) but a container start starts nothing: no process, no
 * engine call. So one machine can hold a hundred nodes and ten thousand instances, and the
 * reconciler and scheduler are measured against real nodes without the cost of real workloads.
 *
 * A hollow container runs until it is stopped, then ends as a SIGTERM'd process would. What it
 * cannot do: answer on its ports, so httpGet, tcpSocket and grpc probes fail (exec probes and
 * hooks succeed); manifests meant for hollow nodes should not have network probes.
 *
 * One instance per runtime name the node offers, so a Docker manifest is scheduled on the node and
 * reads as `docker` everywhere a runtime's name matters (service env, the log endpoint).
 */
export class HollowRuntime implements ContainerRuntime {
  constructor(readonly name: Runtime) {}

  unavailable(): undefined {
    return undefined;
  }

  async start(_req: RuntimeStartRequest): Promise<RunningContainer> {
    return new HollowContainer();
  }

  /**
   * Nothing outlives the agent that "ran" it: a restarted hollow agent finds nothing and starts the
   * containers afresh (not counted as restarts: they never ran for this agent).
   */
  async adopt(): Promise<AdoptedRun | undefined> {
    return undefined;
  }

  /** Exec probes and hooks pass: there is nothing inside to fail. */
  async exec(): Promise<{ ok: boolean; detail?: string }> {
    return { ok: true };
  }

  /** Nothing to adopt by (no pid, no container id): state.json keeps only the pod's identity. */
  saved(): SavedRun | undefined {
    return undefined;
  }
}

/** A container that is "running" from its start until stop(): no pid, no container id. */
class HollowContainer implements RunningContainer {
  private listener?: (exit: ExitInfo) => void;
  private ended = false;

  onExit(listener: (exit: ExitInfo) => void): void {
    this.listener = listener;
  }

  unwatch(): void {
    this.listener = undefined;
  }

  /** Ends at once, as a process honouring SIGTERM (exit code 143), and tells a watcher that still listens. */
  async stop(_graceMs: number): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.({ exitCode: 143, finishedAt: Date.now() });
  }
}
