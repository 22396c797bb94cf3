import { GantryError, registerErrorClass } from '../lib/errors/index.ts';

/**
 * What every runtime's containers are to LocalInstance: a RunningContainer to watch, how it ended
 * (ExitInfo), why it could not start (StartError). The ContainerRuntime interface itself is in
 * runtime.ts. Restart policy, backoff and status live above this line and are the same for all.
 */

export interface ExitInfo {
  /** Undefined when nothing recorded it (killed while the agent was away, removed out of band). */
  exitCode?: number;
  finishedAt: number;
  /** Why it ended, when the runtime knows more than the code says: `OOMKilled`. */
  reason?: string;
}

/** A container the agent watches, whether it started it or adopted it. */
export interface RunningContainer {
  /** Host pid (the wrapper shell of a process; the container's init for Docker). */
  readonly pid?: number;
  /** Docker only: the engine's container id. */
  readonly containerId?: string;
  /** Set when the container has limits its runtime could not apply (a process without a writable cgroup hierarchy): why. */
  readonly limitsNotEnforced?: string;
  /** Called once when the container ends, unless unwatch() came first. */
  onExit(listener: (exit: ExitInfo) => void): void;
  /** Stops watching: used before a deliberate stop, and when the agent leaves containers running. */
  unwatch(): void;
  /** Graceful stop: SIGTERM, up to `graceMs`, then SIGKILL; gone (Docker: removed) afterwards. */
  stop(graceMs: number): Promise<void>;
  /**
   * Looks at the container again. For runtimes whose exit notifications can be lost (the Docker
   * events stream reconnecting), so that every resync catches an exit nobody announced.
   */
  recheck?(): Promise<void>;
}

/**
 * Reasons a container could not be started. `waiting` ones mean it never ran and will be retried
 * with backoff without counting a restart (an image that cannot be pulled yet, an engine that does
 * not answer, an env reference to a ConfigMap or Secret version that is not there yet or Redis
 * away while reading it: `CreateContainerConfigError`, as the kubelet says; a hostPort something
 * else holds, `HostPortInUse`, or a hostIP the node lacks, `HostIPNotOnNode`); the others count as
 * a failed run, which the restart policy then handles.
 */
export type StartFailure = 'ImagePullFailed' | 'ErrImageNeverPull' | 'RuntimeUnavailable' | 'CreateContainerConfigError' | 'HostPortInUse' | 'HostIPNotOnNode' | 'StartFailed';

const START_ERROR_CODES = {
  ImagePullFailed: 'IMAGE_PULL_FAILED',
  ErrImageNeverPull: 'IMAGE_NEVER_PULL',
  RuntimeUnavailable: 'RUNTIME_UNAVAILABLE',
  CreateContainerConfigError: 'CREATE_CONTAINER_CONFIG_ERROR',
  HostPortInUse: 'HOST_PORT_IN_USE',
  HostIPNotOnNode: 'HOST_IP_NOT_ON_NODE',
  StartFailed: 'START_FAILED',
} as const satisfies Record<StartFailure, string>;

export type StartErrorCode = (typeof START_ERROR_CODES)[StartFailure];

export class StartError extends GantryError {
  declare readonly code: StartErrorCode;

  constructor(reason: StartFailure, message: string) {
    super(START_ERROR_CODES[reason], message, { reason });
  }

  /** The status reason the instance reports (a Kubernetes-style word: `ImagePullFailed`). */
  get reason(): StartFailure {
    return this.data.reason as StartFailure;
  }

  get waiting(): boolean {
    return this.reason !== 'StartFailed';
  }
}
registerErrorClass(StartError, 'StartError');

