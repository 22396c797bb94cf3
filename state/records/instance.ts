/**
 * Instances: one replica of a deployment (InstanceRecord, written by the reconciler, bound by the
 * scheduler), what its node's agent observed (InstanceStatus), and the id format with the readiness
 * rules that reconciler and agents both apply.
 * Manifest types (what users write) are generated from schemas/; these are internal state.
 */
import type { EnvFromSpec, EnvSpec } from './config.ts';
import type { PodSpec } from '../../schemas/generated/index.ts';

/** The one definition, from the schema (reconciler/manifests/ re-exports it). */
export type RestartPolicy = NonNullable<PodSpec['restartPolicy']>;
export type Runtime = 'process' | 'docker';

/** A container port's protocol. Records write it only for UDP: TCP ones stay as they were before protocols existed. */
export type PortProtocol = 'TCP' | 'UDP';

export interface PortSpec {
  name?: string;
  containerPort: number;
  /** Absent: TCP. */
  protocol?: PortProtocol;
  /** The host port to use instead of an allocated one (absent: allocated, as before). */
  hostPort?: number;
  /** The address to bind the host port on (absent: the node's address). */
  hostIP?: string;
}

/** One container of an instance, resolved from the deployment template (defaults applied). */
export interface ContainerSpec {
  name: string;
  image?: string;
  /** Only with an image; IfNotPresent when the manifest does not say. */
  imagePullPolicy?: 'IfNotPresent' | 'Always' | 'Never';
  command: string[];
  args: string[];
  /** In order; references to ConfigMaps and Secrets name exact versions (records/config.ts). */
  env: EnvSpec[];
  /** Applied before `env` (which overrides it), as in Kubernetes; absent: none. */
  envFrom?: EnvFromSpec[];
  ports: PortSpec[];
  workingDir?: string;
  /** Requests: what the scheduler reserves on the node (0: nothing). */
  cpuMilli: number;
  memoryBytes: number;
  /**
   * Limits: the most the runtime lets the container use (Docker's NanoCpus and Memory, cgroups for a
   * process); a field that is absent or 0 is no limit. The record itself is absent for the flat
   * `resources: { cpu, memory }` form and in records written before limits existed: their requests
   * are their limits on Docker, as they always were, and the process runtime enforces none, as it
   * never did (an upgrade must not OOM-kill processes sized only for scheduling). See runtimeLimits.
   */
  limits?: ResourceLimits;
  readinessProbe?: ProbeSpec;
  livenessProbe?: ProbeSpec;
  startupProbe?: ProbeSpec;
  /** The pod's volumes this container mounts, in order; absent: none (records written before volumes). */
  volumeMounts?: MountSpec[];
  /** postStart / preStop hooks; absent: none. */
  lifecycle?: LifecycleSpec;
}

/** A lifecycle hook's one action (Kubernetes' LifecycleHandler; its deprecated tcpSocket is not recorded). */
export type LifecycleHandler = { exec: { command: string[] } } | { httpGet: HttpGetProbe } | { sleep: { seconds: number } };

/**
 * postStart runs right after the container started (the container counts as started once it
 * succeeded; a failure kills it, as the kubelet does); preStop runs before SIGTERM and counts
 * against terminationGracePeriodSeconds.
 */
export interface LifecycleSpec {
  postStart?: LifecycleHandler;
  preStop?: LifecycleHandler;
}

/**
 * One volumeMount. How a runtime honours it (README "Volumes"): Docker mounts the volume (or its
 * subPath) at mountPath; a process has no mount namespace, so it gets the path in its environment,
 * GANTRY_VOLUME_<NAME> (the volume name upper-cased, '-' as '_': names are DNS labels, so two
 * volumes never share a variable). The loader lets a process mount each volume once for that reason.
 */
export interface MountSpec {
  /** A volume of the template (InstanceTemplate.volumes). */
  name: string;
  /** Absolute, without '..', unique in the container. */
  mountPath: string;
  /** Absent: read-write. */
  readOnly?: true;
  /** Relative, without '..'; absent: the volume's root. */
  subPath?: string;
}

/** hostPath types Gantry honours (Kubernetes' CharDevice and BlockDevice are rejected by the loader); absent: nothing checked. */
export type HostPathType = 'Directory' | 'DirectoryOrCreate' | 'File' | 'FileOrCreate' | 'Socket';

/**
 * A configMap or secret volume: the keys of one exact version (records/config.ts), so a content
 * change is a new template (the pod rolls) and the config GC keeps what a revision mounts. Names,
 * keys and versions only: the agent reads the values from the version when it starts the instance.
 */
export interface ConfigVolumeSpec {
  /** The ConfigMap's or Secret's name (a Secret's `secretName`), in the instance's namespace. */
  name: string;
  /** Absent only when `optional` and the object is not in the commit: an empty directory. */
  version?: string;
  /** Which keys at which relative paths; absent: every key (a ConfigMap's binaryData too), named after it. An optional volume's missing keys give no file. */
  items?: { key: string; path: string; mode?: number }[];
  /** Permission bits of files without their own `mode`: as written, else 0644 (420), Kubernetes' default. */
  defaultMode: number;
  optional?: true;
}

/** A downwardAPI file: a field the agent fills in per instance (as env fieldRef), or a value the reconciler computed (resourceFieldRef). */
export type DownwardAPIFileSpec = { path: string; mode?: number } & ({ fieldRef: { fieldPath: string } } | { value: string });

/** A pod volume as records hold it: its name and exactly one kind. Volumes of kinds Gantry does not support are not recorded. */
export type VolumeSpec =
  /** medium absent: the node's disk; sizeLimitBytes absent: no limit. */
  | { name: string; emptyDir: { medium?: 'Memory'; sizeLimitBytes?: number } }
  | { name: string; configMap: ConfigVolumeSpec }
  | { name: string; secret: ConfigVolumeSpec }
  | { name: string; hostPath: { path: string; type?: HostPathType } }
  | { name: string; downwardAPI: { items: DownwardAPIFileSpec[]; defaultMode: number } };

export interface ResourceLimits {
  cpuMilli?: number;
  memoryBytes?: number;
}

/** The limits a runtime enforces for a container: `limits` as written, or for a record without them, what that meant on the runtime. */
export function runtimeLimits(c: Pick<ContainerSpec, 'cpuMilli' | 'memoryBytes' | 'limits'>, runtime: Runtime): ResourceLimits {
  if (c.limits) return c.limits;
  if (runtime === 'process') return {};
  return { ...(c.cpuMilli > 0 ? { cpuMilli: c.cpuMilli } : {}), ...(c.memoryBytes > 0 ? { memoryBytes: c.memoryBytes } : {}) };
}

/**
 * A probe with Kubernetes' defaults applied. Exactly one action; a port is the containerPort (a
 * name in the manifest is resolved), which the agent maps to the host port it allocated. Optional
 * fields are absent when they mean the default, so records of probes that use none of them stay
 * as they were before those fields existed (and an agent reads both alike).
 */
export interface ProbeSpec {
  httpGet?: HttpGetProbe;
  /** `host`: where to connect instead of the node's address. */
  tcpSocket?: { port: number; host?: string };
  /** grpc.health.v1.Health/Check; `service` absent: "" (the server's overall health). */
  grpc?: { port: number; service?: string };
  exec?: { command: string[] };
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
  /** Liveness and startup only: the grace period when this probe's failure stops the container; absent: the instance's. */
  terminationGracePeriodSeconds?: number;
}

export interface HttpGetProbe {
  path: string;
  port: number;
  /** Absent: HTTP (the loader writes only HTTPS). HTTPS does not verify the certificate, as the kubelet does not. */
  scheme?: 'HTTP' | 'HTTPS';
  /** Where to connect instead of the node's address. */
  host?: string;
  /** In order, repeats kept; a Host header replaces the request's host:port. Absent: none. */
  httpHeaders?: { name: string; value: string }[];
}

/** What every instance of one template revision shares; the planner stamps ids and ordinals. */
export interface InstanceTemplate {
  labels: Record<string, string>;
  /** The pod template's annotations (what fieldRef metadata.annotations['k'] reads); absent: none. */
  annotations?: Record<string, string>;
  containers: ContainerSpec[];
  /** The effective request, as Kubernetes computes it: max(sum of the containers', largest init container's), per resource; what the scheduler reserves on the node. */
  cpuMilli: number;
  memoryBytes: number;
  nodeSelector: Record<string, string>;
  restartPolicy: RestartPolicy;
  runtime: Runtime;
  terminationGracePeriodSeconds: number;
  /**
   * spec.imagePullSecrets: Secrets of the instance's namespace, each at the exact version the
   * revision was made with (records/config.ts), whose registry credentials the Docker runtime pulls
   * with. Absent: none (anonymous pulls), as in records written before the field existed.
   */
  imagePullSecrets?: { name: string; version: string }[];
  /** spec.volumes, in order; absent: none, so records and hashes of templates without volumes stay as they were. */
  volumes?: VolumeSpec[];
  /**
   * spec.initContainers: run one after another, each to completion (exit 0), before `containers`
   * start; a failure is retried per restartPolicy (Never: the instance fails). Absent: none.
   */
  initContainers?: ContainerSpec[];
}

/**
 * One replica of a deployment: what should run, and (once the scheduler bound it) where.
 * The id is deterministic: `<namespace>.<deployment>-<templateHash>-<ordinal>`. `uid` changes each
 * time the record is (re)created, so an agent can tell a recreated instance from the copy it runs.
 */
export interface InstanceRecord extends InstanceTemplate {
  id: string;
  uid: string;
  namespace: string;
  deployment: string;
  templateHash: string;
  ordinal: number;
  commit: string;
  createdAt: number;
  /** Set atomically by the scheduler's bind script; absent while pending. */
  node?: string;
  boundAt?: number;
  /** Why the scheduler could not place it, while pending. */
  pendingReason?: string;
}

export type InstancePhase = 'Pending' | 'Starting' | 'Running' | 'Exited' | 'Failed';

export interface PortStatus {
  name?: string;
  containerPort: number;
  hostPort: number;
  /** Absent: TCP (so statuses of TCP ports read as they did before protocols existed). */
  protocol?: PortProtocol;
  /** Only when the manifest's hostIP binds it elsewhere than the node's address (InstanceStatus.hostIP). */
  hostIP?: string;
}

export type ContainerStateName = 'Waiting' | 'Running' | 'Terminated';

export interface ContainerStatus {
  name: string;
  pid?: number;
  running: boolean;
  exitCode?: number;
  restarts: number;
  ports: PortStatus[];
  startedAt?: number;
  finishedAt?: number;
  /** Readiness of this container (its readinessProbe; no probe: ready while running). Absent in statuses of older agents. */
  ready?: boolean;
  /** As kubectl shows it; absent in statuses of older agents. */
  state?: ContainerStateName;
  /** Why it waits or how it ended, in the kubelet's words: ContainerCreating, PodInitializing, CrashLoopBackOff, Completed, Error, OOMKilled, CreateContainerConfigError... */
  reason?: string;
  message?: string;
  /** The run before this one, once it ended (Kubernetes' lastState.terminated). */
  lastTermination?: { exitCode?: number; reason?: string; startedAt?: number; finishedAt: number };
}

/** What an agent observed about one instance on its node. Written only by that agent. */
export interface InstanceStatus {
  id: string;
  uid: string;
  node: string;
  phase: InstancePhase;
  /** Readiness as the agent's probes judge it; absent means "ready once Running". */
  ready?: boolean;
  reason?: string;
  message?: string;
  hostIP: string;
  /** First container's pid, ports of all containers. */
  pid?: number;
  exitCode?: number;
  restarts: number;
  ports: PortStatus[];
  containers: ContainerStatus[];
  /** Init containers, in order; absent when the template has none. */
  initContainers?: ContainerStatus[];
  /** The pod's own IP where it has one (a Docker pod's sandbox); absent: the node's address (hostIP). */
  podIP?: string;
  startedAt?: number;
  finishedAt?: number;
  updatedAt: number;
}

/** An instance as read from Redis: its record and, once an agent reported, its status. */
export interface ActualInstance {
  record: InstanceRecord;
  status?: InstanceStatus;
}

export function instanceId(namespace: string, name: string, templateHash: string, ordinal: number): string {
  return `${namespace}.${name}-${templateHash}-${ordinal}`;
}

/** `<ns>.<name>` of an instance id: the part shared by all revisions of one deployment. */
export function instanceGroup(id: string): string {
  const last = id.lastIndexOf('-');
  const cut = last > 0 ? id.lastIndexOf('-', last - 1) : -1;
  return cut > 0 ? id.slice(0, cut) : id;
}

/** Ready = running on its node as the record asks (same uid), as reported by that node's agent. */
export function isReady(inst: ActualInstance): boolean {
  const s = inst.status;
  // `ready` is the agent's readiness verdict (probes); without probes an instance is ready once running.
  return !!s && s.phase === 'Running' && (s.ready ?? true) && s.uid === inst.record.uid && s.node === inst.record.node;
}

/** Available = ready for at least minReadySeconds (Kubernetes' minReadySeconds). */
export function isAvailable(inst: ActualInstance, now: number, minReadyMs: number): boolean {
  if (!isReady(inst)) return false;
  if (minReadyMs <= 0) return true;
  const since = inst.status!.startedAt ?? inst.status!.updatedAt;
  return now - since >= minReadyMs;
}

