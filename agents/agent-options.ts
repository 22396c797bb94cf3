/** What `startAgent` takes and gives back (agent.ts); `gantry agent`'s flags map onto the options. */

export interface AgentOptions {
  redisUrl: string;
  prefix?: string;
  node: string;
  cpuMilli: number;
  memoryBytes: number;
  labels?: Record<string, string>;
  /** Most instances bound to this node at once (default 110, DEFAULT_MAX_INSTANCES); in the NodeRecord. */
  maxInstances?: number;
  /** Where this node's instances answer; host ports are bound there. */
  address?: string;
  /** Instances live under <dataDir>/agents/<node>/instances/<id>/. */
  dataDir: string;
  heartbeatMs?: number;
  resyncMs?: number;
  /** Instance starts at once (`--concurrency`, default 8: start-slots.ts); stops, pulls and probes take none. */
  concurrency?: number;
  logMaxBytes?: number;
  /** Poll interval for processes adopted from a previous agent (default 500 ms). */
  adoptPollMs?: number;
  /**
   * Run containers with an image on the Docker Engine (DOCKER_HOST or /var/run/docker.sock) when it
   * answers; probed at start and on every resync. false: this node never offers the docker runtime.
   */
  docker?: boolean;
  /** Gantry's version, shown by the agent's metrics (gantry_agent_info). */
  version?: string;
  /** Port of the log endpoint, and of GET /metrics, on `address` (default 0: any free port, recorded in the NodeRecord). */
  logsPort?: number;
  /** Log followers served at once (default 32) and bytes waiting per follower (default 1 MiB). */
  logsMaxFollowers?: number;
  logsMaxBufferedBytes?: number;
  /** Restart backoff of crashed containers: first delay (default 10 s), doubling up to the max (5 min). */
  restartBackoffMs?: number;
  restartBackoffMaxMs?: number;
  /** Stop this node's instances after this long without Redis (default: keep them running). */
  stopAfterDisconnectMs?: number;
  /**
   * After Redis lost its data (the cluster epoch is gone or changed): how long instances that ran
   * then are kept without a record, claimed for the reconciler to adopt (default 60 s).
   */
  adoptionWindowMs?: number;
  /**
   * A tmpfs where secret volumes and emptyDirs of medium Memory are written (default /dev/shm where
   * it is a tmpfs); pod-volumes.ts.
   */
  memoryRoot?: string;
  /**
   * Each pod of the process runtime gets its own network namespace (containerPort honoured inside,
   * siblings on localhost, ports published by relays in the agent): namespaced-process-runtime.ts.
   * Root on Linux only; elsewhere startAgent throws. Default false: processes share the host's network.
   */
  podNetworkNamespaces?: boolean;
  /** With podNetworkNamespaces: the private IPv4 range the pods' /30s come from (default 10.213.0.0/16). */
  podNetworkRange?: string;
  /**
   * For benchmarks only (`gantry agent --hollow`, as kubemark's hollow nodes): the agent's whole
   * path (registration, heartbeats, jobs, host ports, statuses) but every container start starts
   * nothing (hollow-runtime.ts); the node offers both runtimes and never talks to an engine.
   */
  hollow?: boolean;
  log?: (line: string) => void;
}

export interface AgentHandle {
  /** By default leaves instances running for the next agent to adopt; stopInstances stops them. */
  stop(opts?: { stopInstances?: boolean }): Promise<void>;
}
