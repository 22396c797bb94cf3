import type { ContainerSpec } from '../state/records/instance.ts';
import type { AdoptedRun, ContainerRuntime, ExecTarget, PodRef, RuntimeStartRequest, SavedRun, SavedRunInput } from './runtime.ts';
import { exitFilePath, type InstanceState } from './instance-dir.ts';
import { processVolumeEnv } from './pod-volumes.ts';
import { execCheck } from './probe-runner.ts';
import { adoptContainer, readExitFile, spawnContainer, type ContainerProcess } from './process-driver.ts';

/**
 * The process runtime behind the ContainerRuntime seam: an image-less container is a process group
 * on the host (process-driver.ts). It has no sandbox: the pod's processes share the host's
 * network, each declared port gets a host port, and siblings learn each other's through
 * GANTRY_PORT_<containerPort> (local-instance.ts). A volume is a directory whose path is in
 * GANTRY_VOLUME_<NAME>.
 */
export class ProcessRuntime implements ContainerRuntime {
  readonly name = 'process' as const;

  constructor(private readonly opts: { adoptPollMs: number }) {}

  unavailable(): undefined {
    return undefined;
  }

  async start(req: RuntimeStartRequest): Promise<ContainerProcess> {
    const identity = { ...processVolumeEnv(req.container, req.volumes), ...req.identity };
    return spawnContainer({ dir: req.pod.dir, container: req.container, ports: req.ports, identity });
  }

  async adopt(pod: PodRef, container: ContainerSpec, saved: InstanceState | undefined): Promise<AdoptedRun | undefined> {
    const state = saved?.containers.find((s) => s.name === container.name);
    if (!state) return undefined;
    const proc = adoptContainer(pod.dir, state, this.opts.adoptPollMs);
    const base = { ports: state.ports, restarts: state.restarts, startedAt: state.startedAt };
    if (proc) return { ...base, result: { running: proc } };
    const recorded = readExitFile(exitFilePath(pod.dir, container.name));
    return { ...base, result: { exit: { exitCode: recorded?.exitCode, finishedAt: recorded?.at ?? Date.now() } } };
  }

  /** Beside the process, in its dir and with its env: a process has no inside to exec into. */
  async exec(target: ExecTarget, command: string[], timeoutMs: number): Promise<{ ok: boolean; detail?: string }> {
    let volumes: Record<string, string>;
    try {
      volumes = processVolumeEnv(target.container, target.volumes);
    } catch (err) {
      return { ok: false, detail: `exec ${command.join(' ')}: ${err instanceof Error ? err.message : String(err)}` };
    }
    return execCheck(command, { cwd: target.pod.dir, env: { ...volumes, ...target.env }, timeoutMs });
  }

  /** The pid, group and start time a later agent adopts it by; kept after it ended (its exit file tells how). */
  saved(run: SavedRunInput): SavedRun | undefined {
    const proc = run.proc as ContainerProcess | undefined;
    if (proc?.pgid !== undefined) {
      return { process: { name: run.name, pid: proc.pid, pgid: proc.pgid, startTime: proc.startTime, ports: run.ports, restarts: run.restarts, startedAt: run.startedAt ?? Date.now() } };
    }
    if (run.previous && 'process' in run.previous) return { process: { ...run.previous.process, ports: run.ports, restarts: run.restarts } };
    return undefined;
  }
}
