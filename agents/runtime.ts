import type { ContainerSpec, InstanceRecord, PortStatus, Runtime } from '../state/records/instance.ts';
import type { ExitInfo, RunningContainer } from './container-runtime.ts';
import type { FoundContainer } from './docker-driver.ts';
import type { ContainerState, DockerContainerState, InstanceState } from './instance-dir.ts';
import type { PreparedVolume } from './pod-volumes.ts';

/**
 * The seam between LocalInstance (init order, restart policy, backoff, probes, hooks, status) and
 * what runs a pod's containers: ContainerRuntime, implemented once per runtime
 * (process-runtime.ts, docker-runtime.ts). LocalInstance never asks which runtime it has.
 */

/** The pod a container belongs to, as a runtime sees it. */
export interface PodRef {
  record: InstanceRecord;
  /** The instance dir (logs, exit files, state.json, volumes). */
  dir: string;
}

/** A pod's own network where its runtime makes one (Docker: the pause container holding the network namespace). */
export interface PodSandbox {
  readonly id: string;
  /** The pod's IP on the runtime's network: status.podIP. */
  readonly podIP?: string;
  /** Host ports published for the whole pod (on the sandbox): every container's ports. */
  readonly ports: PortStatus[];
}

export interface RuntimeStartRequest {
  pod: PodRef;
  /** Env resolved (container-env.ts): literals only. */
  container: ContainerSpec;
  /** This container's host ports. */
  ports: PortStatus[];
  /** Variables Gantry adds, which win over the container's own env (GANTRY_*, services, sibling ports, volumes). */
  identity: Record<string, string>;
  /** The restart count this run starts with. */
  restarts: number;
  /** The pod's volumes, materialized on the node (pod-volumes.ts). */
  volumes: PreparedVolume[];
  /** The pod's sandbox, when its runtime made one: the container joins its network. */
  sandbox?: PodSandbox;
  /** Progress worth an event (image pulls). */
  report(ev: { type: 'Normal' | 'Warning'; reason: string; message: string }): void;
}

/** What a runtime found of a container a previous agent ran. */
export interface AdoptedRun {
  ports: PortStatus[];
  restarts: number;
  startedAt?: number;
  /** Still running: watched from now on, as it is. Else how it ended. */
  result: { running: RunningContainer } | { exit: ExitInfo };
}

/** What state.json holds of one container run (instance-dir.ts), by runtime. */
export type SavedRun = { process: ContainerState } | { docker: DockerContainerState };

/**
 * The seam between LocalInstance (restart policy, backoff, probes, hooks, status) and what runs
 * containers. Each runtime is one implementation: process-runtime.ts and docker-runtime.ts; a third
 * (podman, containerd) would be one more file and one more entry in runtimeFor.
 */
export interface ContainerRuntime {
  readonly name: Runtime;
  /** Undefined while it can run containers; else why not (the start waits as RuntimeUnavailable). */
  unavailable(): string | undefined;
  /**
   * The pod's sandbox, created on the first start of one of its containers, found again on
   * adoption; undefined for runtimes without one (processes share the host's network).
   */
  ensureSandbox?(pod: PodRef, ports: PortStatus[]): Promise<PodSandbox>;
  /** The sandbox a previous agent made for this pod, if it still runs. */
  findSandbox?(pod: PodRef): Promise<PodSandbox | undefined>;
  /** Whether the sandbox still runs (a resync looks: a dead sandbox takes the pod's network with it). */
  sandboxAlive?(sandbox: PodSandbox): Promise<boolean>;
  removeSandbox?(pod: PodRef, sandbox: PodSandbox | undefined): Promise<void>;
  /**
   * What a start needs that may take long without keeping the engine busy: Docker's image check and
   * pull. LocalInstance calls it before taking a start slot (start-slots.ts) and then calls start,
   * so that a slow pull never holds up the starts of other pods. Throws StartError as start does;
   * `signal` (the instance is being stopped) ends a wait for a pull with StartInterrupted.
   */
  prepare?(pod: PodRef, container: ContainerSpec, report: RuntimeStartRequest['report'], signal?: AbortSignal): Promise<void>;
  start(req: RuntimeStartRequest): Promise<RunningContainer>;
  /** Takes over a container a previous agent started (found by labels on the engine, or from state.json). */
  adopt(pod: PodRef, container: ContainerSpec, saved: InstanceState | undefined, found: FoundContainer[]): Promise<AdoptedRun | undefined>;
  /** Runs a command inside the running container (exec probes and hooks): exit 0 is ok. */
  exec(target: ExecTarget, command: string[], timeoutMs: number): Promise<{ ok: boolean; detail?: string }>;
  /** What state.json keeps of this run, for a later adoption. */
  saved(run: SavedRunInput): SavedRun | undefined;
}

export interface ExecTarget {
  pod: PodRef;
  proc?: RunningContainer;
  /** The resolved spec and what the process got as env (a process's exec runs beside it, with its env). */
  container: ContainerSpec;
  env: Record<string, string>;
  /** The pod's volumes as last prepared (a process's exec gets their GANTRY_VOLUME_* too). */
  volumes: PreparedVolume[];
}

export interface SavedRunInput {
  name: string;
  proc?: RunningContainer;
  ports: PortStatus[];
  restarts: number;
  startedAt?: number;
  ran: boolean;
  finishedAt?: number;
  exitCode?: number;
  exitReason?: string;
  /** What was saved of it before (a process that ended keeps its entry: its exit file tells how). */
  previous?: SavedRun;
}
