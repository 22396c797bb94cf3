import { wellKnownNodeLabels } from './node-labels.ts';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { InstanceStatus } from '../state/records/instance.ts';
import { DEFAULT_MAX_INSTANCES, type NodeRecord } from '../state/records/node.ts';
import { connectRedis } from '../state/connection.ts';
import { createKeys, DEFAULT_PREFIX, type Keys } from '../state/keys.ts';
import { nodeQueueName } from '../state/queues.ts';
import type { ManagedContainer } from './docker-engine.ts';
import {
  instanceDir,
  listInstanceIds,
  readInstanceState,
  removeInstanceDir,
  type InstanceState,
} from './instance-dir.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { DEFAULT_START_CONCURRENCY, StartSlots } from './start-slots.ts';
import type { AgentHandle, AgentOptions } from './agent-options.ts';
import { LocalInstance, type InstanceHost } from './local-instance.ts';
import { AgentMetrics } from './agent-metrics.ts';
import { agentScope } from './docker-labels.ts';
import { removeStrayPodMemory } from './pod-volumes.ts';
import { DockerRuntime } from './docker-runtime.ts';
import { ProcessRuntime } from './process-runtime.ts';
import { HollowRuntime } from './hollow-runtime.ts';
import { NamespacedProcessRuntime } from './namespaced-process-runtime.ts';
import { DEFAULT_LOG_MAX_BYTES, rotateInstanceLogs } from './log-file.ts';
import { startLogServer, type LogServer } from './log-server.ts';
import { NodeDocker, ownerFromLabels } from './node-docker.ts';
import { stopProcessGroup } from './process-driver.ts';
import { signalGroup } from './proc.ts';
import { AgentStore } from '../state/agent-store.ts';
import { sameSecret } from '../state/cluster-secret.ts';
import { ServiceProxy } from './service-proxy.ts';
import { serviceEnv, serviceHost } from './service-env.ts';
import { ConnectionGuard } from './connection-guard.ts';
import { DEFAULT_BACKOFF } from './restart-backoff.ts';
import { DEFAULT_ADOPTION_WINDOW_MS, EpochWatch } from './epoch-watch.ts';
import { processesByInstance, type InstanceProcess } from './stray-processes.ts';
import { instancesRoot } from './instance-dir.ts';

/**
 * The node agent: registers its node, heartbeats, and makes the processes and Docker containers
 * on this node match the instances bound to it in Redis. Jobs on the node's queue only say "look
 * at instance X now"; the truth is always re-read from Redis, and a periodic resync catches
 * whatever jobs were lost.
 */

export type { AgentHandle, AgentOptions } from './agent-options.ts';

/** How long claims live in Redis at least (twice the adoption window when that is longer). */
const CLAIM_TTL_MS = 5 * 60_000;

/**
 * Jobs taken off the node's queue at once. A job only hands its instance to a handler (which waits
 * for the instance's mutex, and a start for a start slot) and completes: taking one is a few Redis
 * calls, so a burst of 20 is picked up at once, and a stop never queues behind starts.
 */
const JOB_PICKUP_CONCURRENCY = 16;
/** A failed handler is run again after 200 ms, 400 ms ... (as the jobs' own retries were: JOB_OPTIONS), then left to the resync. */
const HANDLE_RETRIES = 4;
const HANDLE_RETRY_MS = 200;

interface InstanceJob {
  instanceId: string;
}

interface HandleOptions {
  /** This node's containers labelled for the instance, as listed at the start of a resync: any not claimed is a stray. */
  seen?: ManagedContainer[];
  /** Look again at containers whose end may have gone unannounced (resync). */
  recheck?: boolean;
  /** Processes found running in the instance's dir at the start of a resync: any not owned is a stray. */
  procs?: InstanceProcess[];
}

export async function startAgent(opts: AgentOptions): Promise<AgentHandle> {
  const agent = new NodeAgent(opts);
  await agent.start();
  return { stop: (o) => agent.stop(o) };
}

class NodeAgent {
  private readonly keys: Keys;
  private readonly node: string;
  private readonly address: string;
  private readonly log: (line: string) => void;
  /** The logger's warn level when it has one (cli/serve.ts gives a levelled logger), else `log`. */
  private readonly warn: (line: string) => void;
  private readonly redis: Redis;
  private readonly workerRedis: Redis;
  private readonly store: AgentStore;
  private readonly host: InstanceHost;
  private readonly instances = new Map<string, LocalInstance>();
  private readonly metrics: AgentMetrics;
  /** Last status written per local instance, to skip writes (and change events) that change nothing. */
  private readonly lastReported = new WeakMap<LocalInstance, string>();
  private readonly mutex = new KeyedMutex();
  /** Starts at once on this node (--concurrency); stops and probes never take one. */
  private readonly startSlots: StartSlots;
  /**
   * Instance ids with containers on the engine at the last listing (resync), once one has been
   * made: after it, containers of this node are only ever created by this agent, so an instance
   * it has no copy of and that was not listed has none, and its first start skips looking.
   */
  private engineListed?: Set<string>;
  /** Handlers started outside of jobs (pokes, resyncs), awaited on stop. */
  private readonly background = new Set<Promise<unknown>>();
  private worker?: Worker<InstanceJob>;
  private heartbeatTimer?: NodeJS.Timeout;
  private resyncTimer?: NodeJS.Timeout;
  private closing = false;
  private readonly docker: NodeDocker;
  private logServer?: LogServer;
  private readonly proxy: ServiceProxy;
  private readonly guard: ConnectionGuard;
  private logsSecret?: string;
  /** The cluster epoch last seen, and what runs on through a loss of Redis's data (epoch-watch.ts). */
  private readonly epochs: EpochWatch;
  private epochCheck?: Promise<void>;
  /** Whether the claims of the current adoption window are published. */
  private claimsOut = false;
  /** The process runtime with a network namespace per pod (--pod-network-namespaces), when on. */
  private readonly netns?: NamespacedProcessRuntime;

  constructor(private readonly opts: AgentOptions) {
    this.keys = createKeys(opts.prefix ?? DEFAULT_PREFIX);
    this.node = opts.node;
    this.keys.node(this.node); // validates the name before anything touches Redis or disk
    this.address = opts.address ?? '127.0.0.1';
    this.log = opts.log ?? (() => {});
    const levelled = opts.log as { warn?: (line: string) => void } | undefined;
    this.warn = typeof levelled?.warn === 'function' ? levelled.warn : this.log;
    // Before any connection exists: a host that cannot make namespaces fails the start with one line.
    // A hollow node makes no namespaces: it starts nothing to put in them.
    if (opts.podNetworkNamespaces && !opts.hollow) {
      this.netns = new NamespacedProcessRuntime({ adoptPollMs: opts.adoptPollMs ?? 500, address: this.address, scope: agentScope(opts.dataDir, this.keys.prefix), range: opts.podNetworkRange, log: this.log });
    }
    this.redis = connectRedis(opts.redisUrl, `gantry-agent-${this.node}`);
    // BullMQ blocks on its connection; commands of the agent must not queue behind it.
    this.workerRedis = connectRedis(opts.redisUrl, `gantry-agent-${this.node}-worker`);
    this.store = new AgentStore(this.redis, this.keys, this.node);
    this.metrics = new AgentMetrics(this.node, opts.version ?? 'unknown', () => [...this.instances.values()].map((i) => i.status().phase));
    this.docker = new NodeDocker(
      // A hollow node never talks to an engine, yet offers docker (runtimes()).
      { enabled: opts.docker !== false && !opts.hollow, node: this.node, address: this.address, dataDir: opts.dataDir, prefix: this.keys.prefix, logMaxBytes: opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES },
      this.log,
    );
    const processRuntime = this.netns ?? new ProcessRuntime({ adoptPollMs: opts.adoptPollMs ?? 500 });
    const dockerRuntime = new DockerRuntime(
      () => this.docker.driverOrReason(),
      ({ record }) => (record.imagePullSecrets?.length ? { namespace: record.namespace, refs: record.imagePullSecrets, read: (name, version) => this.store.configs.readVersion(record.namespace, 'Secret', name, version) } : undefined),
    );
    this.host = {
      node: this.node,
      address: this.address,
      poke: (id) => this.inBackground(this.handle(id)),
      runtimeFor: hollowRuntimeFor(opts) ?? ((spec) => (spec.image ? dockerRuntime : processRuntime)),
      // Per node too: agents of one installation share a host (gantry up runs two) and sweep their own only.
      volumes: { scope: agentScope(opts.dataDir, `${this.keys.prefix}\0${this.node}`), ...(opts.memoryRoot !== undefined ? { memoryRoot: opts.memoryRoot } : {}) },
      event: (ev) => void this.store.events.record(ev).catch((err) => this.warn(`recording an event failed: ${err}`)),
      // Containers reach the proxy at their network's gateway, processes at the agent's address.
      serviceEnv: (ns, own, runtime) => serviceEnv(this.proxy.services(), ns, serviceHost(runtime, this.address, this.docker.gateway), own),
      readConfig: (ns, kind, name, version) => this.store.configs.readVersion(ns, kind, name, version),
      backoff: {
        ...DEFAULT_BACKOFF,
        ...(opts.restartBackoffMs !== undefined ? { initialMs: opts.restartBackoffMs } : {}),
        ...(opts.restartBackoffMaxMs !== undefined ? { maxMs: opts.restartBackoffMaxMs } : {}),
      },
    };
    this.epochs = new EpochWatch(opts.adoptionWindowMs ?? DEFAULT_ADOPTION_WINDOW_MS);
    this.startSlots = new StartSlots(opts.concurrency ?? DEFAULT_START_CONCURRENCY);
    this.host.startSlots = this.startSlots;
    this.host.started = (runtime, ok, seconds) => this.metrics.started(runtime, ok, seconds);
    this.store.events.observe((ev) => this.metrics.recorded(ev));
    // The containers' gateway is learned by every engine probe (before the proxy starts, and at every resync).
    this.proxy = new ServiceProxy({
      redisUrl: opts.redisUrl,
      keys: this.keys,
      node: this.node,
      address: this.address,
      containerAddress: () => this.docker.gateway,
      resyncMs: opts.resyncMs,
      log: this.log,
      onConnection: (protocol) => this.metrics.proxyConnection(protocol),
      onError: (protocol, reason) => this.metrics.proxyError(protocol, reason),
    });
    const heartbeatMs = opts.heartbeatMs ?? 5_000;
    this.guard = new ConnectionGuard({
      redis: this.redis,
      ping: () => this.store.ping(),
      // Well past any event-loop hiccup, well before the reconciler's NotReady timeout.
      gapMs: Math.max(1_000, Math.min(2 * heartbeatMs, 5_000)),
      stopAfterDisconnectMs: opts.stopAfterDisconnectMs,
      fence: () => this.fence(),
      afterFence: () => this.inBackground(this.resync()),
      cutOff: async () => {
        await this.stopAllInstances();
        // Started afresh from Redis once it answers again (resync).
        this.instances.clear();
      },
      log: this.log,
    });
  }

  async start(): Promise<void> {
    await this.docker.probe();
    // Before any instance starts: their env names the services that exist now.
    await this.proxy.start();
    this.logServer = await startLogServer({
      address: this.address,
      port: this.opts.logsPort ?? 0,
      node: this.node,
      dataDir: this.opts.dataDir,
      lookup: (id) => this.instances.get(id),
      metrics: () => this.metrics.exposition(),
      docker: () => this.docker.client(),
      log: this.log,
      authorize: (credential) => this.authorizeLogs(credential),
      maxFollowers: this.opts.logsMaxFollowers,
      maxBufferedBytes: this.opts.logsMaxBufferedBytes,
    });
    await this.register();
    this.guard.start();
    this.heartbeatTimer = setInterval(() => {
      // Never "I am here" before stale copies are stopped (fencing).
      this.guard
        .whenFenced()
        .then(() => this.store.heartbeat())
        .then(() => this.guard.markOk(), (err) => this.warn(`heartbeat failed: ${err}`));
    }, this.opts.heartbeatMs ?? 5_000);
    // The job completes once its handler is on its way (see JOB_PICKUP_CONCURRENCY); the handler
    // retries itself, and the resync covers what still fails.
    this.worker = new Worker<InstanceJob>(nodeQueueName(this.node), async (job) => this.trigger(job.data.instanceId), {
      connection: this.workerRedis,
      prefix: this.keys.bullPrefix,
      concurrency: JOB_PICKUP_CONCURRENCY,
    });
    this.worker.on('error', (err) => this.warn(`queue worker error: ${err.message}`));
    // The first resync adopts what a previous agent left running; it runs while jobs flow.
    this.inBackground(this.resyncLoop());
    this.log(`agent ${this.node} registered at ${this.address} (runtimes ${this.runtimes().join(', ')}${this.opts.hollow ? ', hollow: starts nothing' : ''}; logs on port ${this.logServer.port})`);
  }

  /**
   * Whether a log request carries the cluster's logs credential. Read from Redis once and kept;
   * a mismatch reads it again (the secret was re-created, e.g. after Redis lost its data).
   */
  private async authorizeLogs(credential: string): Promise<boolean> {
    if (this.logsSecret && sameSecret(credential, this.logsSecret)) return true;
    this.logsSecret = await this.store.logsCredential();
    return sameSecret(credential, this.logsSecret);
  }

  private runtimes(): NodeRecord['runtimes'] {
    // Hollow: both, so that Docker manifests are scheduled on hollow nodes too.
    return this.docker.available || this.opts.hollow ? ['process', 'docker'] : ['process'];
  }

  /** Writes the node record (keeping an operator's cordon), joins `nodes`, heartbeats, announces. */
  private async register(): Promise<void> {
    await this.store.register((existing) => ({
      name: this.node,
      cpuMilli: this.opts.cpuMilli,
      memoryBytes: this.opts.memoryBytes,
      // The labels every Kubernetes node carries (manifests select on them: nodeSelector
      // kubernetes.io/os: linux), under the operator's own.
      labels: { ...wellKnownNodeLabels(this.node), ...this.opts.labels },
      runtimes: this.runtimes(),
      maxInstances: this.opts.maxInstances ?? DEFAULT_MAX_INSTANCES,
      address: this.address,
      agentPid: process.pid,
      ...(this.logServer ? { logsPort: this.logServer.port } : {}),
      registeredAt: Date.now(),
      ...(existing?.cordoned ? { cordoned: true } : {}),
    }));
  }

  /** A job's instance: handled in the background, run again a few times if the handler fails. */
  private trigger(id: string, attempt = 0): void {
    this.inBackground(
      this.handle(id).catch((err) => {
        if (this.closing || attempt >= HANDLE_RETRIES) throw err;
        this.warn(`handling ${id} failed (${err}); trying again`);
        setTimeout(() => !this.closing && this.trigger(id, attempt + 1), HANDLE_RETRY_MS * 2 ** attempt).unref();
      }),
    );
  }

  private handle(id: string, opts: HandleOptions = {}): Promise<void> {
    this.interruptIfUnwanted(id);
    return this.guard.whenFenced().then(() => this.mutex.run(id, () => this.handleLocked(id, opts)));
  }

  /**
   * A start waiting for its image or a start slot holds the instance's mutex, and the stop this
   * trigger may bring would wait behind it. One whose record no longer binds it here with its uid
   * stops waiting (LocalInstance.interrupt), so a stop never waits for a pull. Read outside of
   * the mutex; the handler reads the record again under it and decides as always.
   */
  private interruptIfUnwanted(id: string): void {
    const local = this.instances.get(id);
    if (!local?.isStarting) return;
    void this.store.readInstance(id).then(
      (record) => {
        if (record?.node !== this.node || record.uid !== local.uid) local.interrupt();
      },
      () => {},
    );
  }

  /** Back from being away: stops every local copy whose assignment (node + uid) is no longer ours. */
  private async fence(): Promise<void> {
    await Promise.all(
      [...this.instances.keys()].map((id) =>
        this.mutex.run(id, async () => {
          const local = this.instances.get(id);
          if (!local) return;
          const record = await this.store.readInstance(id);
          if (record?.node === this.node && record.uid === local.uid) return;
          // Redis lost its data meanwhile: a missing record is no reason to stop it (checkEpoch).
          if (!record && (await this.holdsMissing(id))) return;
          this.log(`fencing: stopping stale copy of ${id} (uid ${local.uid})`);
          // At once: another node runs the instance now.
          await local.stop({ graceMs: 0 });
          this.instances.delete(id);
          removeInstanceDir(instanceDir(this.opts.dataDir, this.node, id));
          this.host.event({ type: 'Warning', reason: 'Fenced', object: `instance/${id}`, message: `node ${this.node} came back and stopped its stale copy (moved or deleted meanwhile)` });
        }),
      ),
    );
  }

  /** Makes this node's copy of instance `id` match Redis: run it with the right uid, or remove it. */
  private async handleLocked(id: string, opts: HandleOptions): Promise<void> {
    if (this.closing) return;
    const record = await this.store.readInstance(id);
    if (record) this.epochs.release(id);
    const wanted = record?.node === this.node ? record : undefined;
    const dir = instanceDir(this.opts.dataDir, this.node, id);
    const docker = this.docker.usable();
    let local = this.instances.get(id);
    // Redis lost its data: what ran then runs on without a record until adopted or the window ends.
    if (!record && local && (await this.holdsMissing(id))) return this.keepHeld(local, opts);
    let leftover: { namespace: string; deployment: string } | undefined;
    /** Containers dealt with here (adopted or removed), so the stray sweep leaves them alone. */
    const handled = new Set<string>();
    if (!local) {
      const state = readInstanceState(dir);
      // The engine, not the disk, says which containers exist: adoption works without the dir too.
      // Not asked for an instance it cannot have (see engineListed): one call less per new pod.
      const ask = docker && (opts.seen !== undefined || !this.engineListed || this.engineListed.has(id));
      const found = ask ? await docker.find(id, wanted?.containers ?? []) : [];
      const mine = found.filter((f) => f.uid === wanted?.uid);
      for (const f of found) handled.add(f.id);
      if (wanted && (state?.uid === wanted.uid || mine.length > 0)) {
        await Promise.all(found.filter((f) => !mine.includes(f)).map((f) => docker!.stopAndRemove(f.id, wanted.terminationGracePeriodSeconds)));
        local = await LocalInstance.adopt(wanted, dir, state?.uid === wanted.uid ? state : undefined, mine, this.host);
        this.instances.set(id, local);
        this.log(`adopted ${id}`);
      } else {
        if (state) {
          leftover = state;
          await stopFromState(state);
        }
        await Promise.all(found.map((f) => docker!.stopAndRemove(f.id, record?.terminationGracePeriodSeconds ?? 10)));
      }
    }
    if (local && local.uid !== wanted?.uid) {
      // An operator's delete may ask for a shorter grace period than the pod's (--grace-period 0 --force).
      const grace = wanted ? undefined : await this.store.stopGraceSeconds(id).catch(() => undefined);
      this.log(`stopping ${id} (uid ${local.uid})${grace !== undefined ? ` with a grace period of ${grace} s` : ''}`);
      await local.stop(grace !== undefined ? { graceMs: grace * 1000 } : {});
      this.instances.delete(id);
      removeInstanceDir(dir);
    }
    if (!wanted) {
      this.killStrays(id, opts.procs, new Set());
      removeInstanceDir(dir);
      const owner = local?.record ?? leftover ?? record ?? ownerFromLabels(opts.seen);
      if ((await this.store.deleteStatusIfMine(id)) && owner) await this.store.announceDeploymentChange(owner.namespace, owner.deployment);
      await this.docker.removeStrays(opts.seen, handled);
      return;
    }
    if (!this.instances.has(id)) {
      // Files of another incarnation (or a half-started one) must not leak into this one.
      removeInstanceDir(dir);
      local = LocalInstance.create(wanted, dir, this.host);
      this.instances.set(id, local);
      this.log(`starting ${id} (uid ${wanted.uid})`);
    }
    const current = this.instances.get(id)!;
    // Actual state lost in Redis (FLUSH, DEL): write it again from what runs, restarting nothing.
    if (opts.recheck && !(await this.store.statusExists(id))) this.lastReported.delete(current);
    await current.converge((status) => this.report(current, status), { recheck: opts.recheck });
    this.killStrays(id, opts.procs, current.processGroups());
    await this.docker.removeStrays(opts.seen, new Set([...handled, ...current.containerIds()]));
  }

  /**
   * A held instance (see checkEpoch): kept running by its restart policy, its strays removed, its
   * status not written (no record to write it against). Its status went with the rest of Redis:
   * the first report once it is adopted must be written, not skipped as unchanged.
   */
  private async keepHeld(local: LocalInstance, opts: HandleOptions): Promise<void> {
    this.lastReported.delete(local);
    await local.converge(async () => {}, { recheck: opts.recheck });
    this.killStrays(local.id, opts.procs, local.processGroups());
    await this.docker.removeStrays(opts.seen, local.containerIds());
  }

  /** Whether a missing record of `id` must not stop it: Redis lost its data and the adoption window is open. */
  private async holdsMissing(id: string): Promise<boolean> {
    await this.checkEpoch();
    return this.epochs.holds(id, Date.now());
  }

  /**
   * Looks at the cluster epoch (on every resync, after a reconnect, and before a missing record
   * stops anything). Gone or changed means Redis lost its data: what runs here is kept (held),
   * claimed in `node-claims:<node>` for the reconciler to adopt, the node registered again (its
   * record went too) and the deployments announced; once the window has passed, the claims are
   * dropped and whatever got no record back is stopped as usual. Concurrent callers share one look.
   */
  private checkEpoch(): Promise<void> {
    this.epochCheck ??= this.lookAtEpoch().finally(() => (this.epochCheck = undefined));
    return this.epochCheck;
  }

  private async lookAtEpoch(): Promise<void> {
    const { epoch, registered } = await this.store.readClusterEpoch();
    const now = Date.now();
    if (this.epochs.observe(epoch, registered, now, this.instances.keys()) === 'lost') {
      this.claimsOut = false;
      const n = [...this.instances.keys()].filter((id) => this.epochs.holds(id, now)).length;
      const why = !registered ? 'its node record is gone' : epoch === undefined ? 'the cluster epoch is gone' : 'the cluster epoch changed';
      const message = `${why}: Redis lost its data; node ${this.node} keeps its ${n} instance(s) running and claims them for adoption (window ${this.epochs.windowMs / 1000}s)`;
      this.log(message);
      this.host.event({ type: 'Warning', reason: 'RedisDataLost', object: `node/${this.node}`, message });
    }
    if (this.epochs.recovering && !this.claimsOut) {
      // Retried on the next look when Redis fails us halfway.
      const claimed = [...this.instances.values()].filter((l) => this.epochs.holds(l.id, now)).map((l) => l.record);
      // Registered first: the reconciler looks for claims of registered nodes only.
      await this.register();
      await this.store.publishClaims(claimed, Math.max(CLAIM_TTL_MS, 2 * this.epochs.windowMs));
      // Their deployments are reconciled at once, and adopt them.
      const owners = new Map(claimed.map((r) => [`${r.namespace}/${r.deployment}`, r]));
      for (const r of owners.values()) await this.store.announceDeploymentChange(r.namespace, r.deployment);
      this.claimsOut = true;
    }
    const unadopted = this.epochs.expire(now);
    if (unadopted) {
      await this.store.clearClaims();
      if (unadopted.length > 0) this.log(`adoption window over: ${unadopted.join(', ')} got no record back and will be stopped`);
    }
  }

  /** Kills process groups running in the instance's dir that it does not own (drift: started by hand, or lost track of). */
  private killStrays(id: string, procs: InstanceProcess[] | undefined, owned: Set<number>): void {
    for (const pgid of new Set((procs ?? []).map((p) => p.pgid))) {
      if (owned.has(pgid)) continue;
      this.log(`removing stray process group ${pgid} in the dir of ${id}`);
      signalGroup(pgid, 'SIGKILL');
      this.host.event({ type: 'Warning', reason: 'StrayRemoved', object: `instance/${id}`, message: `process group ${pgid} ran in the dir of ${id} on node ${this.node} but nothing assigned it; killed` });
    }
  }

  private async report(local: LocalInstance, status: InstanceStatus): Promise<void> {
    const { updatedAt: _ignored, ...meaningful } = status;
    const fingerprint = JSON.stringify(meaningful);
    if (this.lastReported.get(local) === fingerprint) return;
    if (await this.store.writeStatus(status, local.record.namespace, local.record.deployment)) {
      this.lastReported.set(local, fingerprint);
    } else {
      // Unbound or recreated between our read and this write: look again.
      this.host.poke(local.id);
    }
  }

  /**
   * Every known instance, from Redis, from disk and from the engine's labels, handled again (and
   * its containers rechecked); then the log size cap. A change in Docker's availability first
   * re-registers the node, so the scheduler learns what it offers now.
   */
  private async resync(): Promise<void> {
    await this.checkEpoch();
    if (await this.docker.probe()) await this.register();
    const assigned = await this.store.assignedInstanceIds();
    const onDisk = listInstanceIds(this.opts.dataDir, this.node);
    const seen = await this.docker.listByInstance();
    if (seen) this.engineListed = new Set(seen.keys());
    // Hollow: nothing it starts can be there, and 100 hollow nodes on one host would read the same /proc 100 times.
    const procs = this.opts.hollow ? new Map<string, InstanceProcess[]>() : processesByInstance(instancesRoot(this.opts.dataDir, this.node));
    const ids = new Set([...assigned, ...onDisk, ...this.instances.keys(), ...(seen?.keys() ?? []), ...procs.keys()]);
    await Promise.all(
      [...ids].map((id) =>
        this.handle(id, { recheck: true, seen: seen ? (seen.get(id) ?? []) : undefined, procs: procs.get(id) ?? [] }).catch((err) => this.warn(`handling ${id} failed: ${err}`)),
      ),
    );
    // Secret files and Memory emptyDirs of pods this agent no longer runs (their dir went without a stop).
    const uids = new Set([...this.instances.values()].map((i) => i.uid));
    for (const uid of removeStrayPodMemory({ ...this.host.volumes, keep: uids })) this.log(`removed the memory volumes of a pod no longer here (uid ${uid})`);
    // Pod namespaces nothing here claims (their instance went while no agent ran): after the handlers, which adopt theirs.
    await this.netns?.removeStrays(new Set([...assigned, ...this.instances.keys()])).catch((err) => this.warn(`removing stray network namespaces failed: ${err}`));
    const maxBytes = this.opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES;
    for (const id of listInstanceIds(this.opts.dataDir, this.node)) {
      for (const file of rotateInstanceLogs(instanceDir(this.opts.dataDir, this.node, id), maxBytes)) {
        this.log(`rotated ${id}/${file}`);
      }
    }
  }

  private async resyncLoop(): Promise<void> {
    if (this.closing) return;
    try {
      await this.resync();
    } catch (err) {
      this.warn(`resync failed: ${err}`);
    }
    if (this.closing) return;
    this.resyncTimer = setTimeout(() => this.inBackground(this.resyncLoop()), this.opts.resyncMs ?? 5_000);
  }

  private inBackground(work: Promise<unknown>): void {
    const tracked = work.catch((err) => this.log(`${err}`)).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  async stop(opts: { stopInstances?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.resyncTimer);
    this.guard.stop();
    await this.worker?.close();
    await Promise.allSettled([...this.background]);
    await this.logServer?.close();
    await this.proxy.stop();
    if (opts.stopInstances) await this.stopAllInstances();
    else for (const local of this.instances.values()) local.release();
    this.instances.clear();
    // Published ports of namespaced pods pause until the next agent opens them again.
    this.netns?.close();
    this.docker.close();
    await Promise.allSettled([this.redis.quit(), this.workerRedis.quit()]);
    this.log(`agent ${this.node} stopped`);
  }

  /** Stops every process of this node, records why in the statuses, and clears the instance dirs. */
  private async stopAllInstances(): Promise<void> {
    const ids = new Set([...this.instances.keys(), ...listInstanceIds(this.opts.dataDir, this.node)]);
    await Promise.all(
      [...ids].map((id) =>
        this.mutex.run(id, async () => {
          const dir = instanceDir(this.opts.dataDir, this.node, id);
          const local = this.instances.get(id);
          if (local) {
            // An engine that does not answer must not keep the agent from stopping the rest.
            await local.stop().catch((err) => this.warn(`stopping ${id} failed: ${err}`));
            const status: InstanceStatus = { ...local.status(), phase: 'Failed', reason: 'AgentStopped', message: `the agent of node ${this.node} stopped its instances` };
            await this.store.writeStatus(status, local.record.namespace, local.record.deployment).catch(() => false);
          } else {
            const state = readInstanceState(dir);
            if (state) await stopFromState(state);
          }
          removeInstanceDir(dir);
        }),
      ),
    );
    // Containers of this node that no local instance knew (a previous agent's, strays).
    await this.docker.removeAll();
    await this.netns?.removeStrays(new Set()).catch((err) => this.warn(`removing network namespaces failed: ${err}`));
  }
}

/** --hollow: every container, whatever its runtime, goes to a hollow runtime of that name (hollow-runtime.ts). */
function hollowRuntimeFor(opts: AgentOptions): InstanceHost['runtimeFor'] | undefined {
  if (!opts.hollow) return undefined;
  const runtimes = { process: new HollowRuntime('process'), docker: new HollowRuntime('docker') };
  return (spec) => (spec.image ? runtimes.docker : runtimes.process);
}

/** Stops the processes a state.json describes (an incarnation this agent does not run any more). */
async function stopFromState(state: InstanceState): Promise<void> {
  const graceMs = (state.terminationGracePeriodSeconds ?? 10) * 1000;
  await Promise.all(state.containers.map((c) => stopProcessGroup(c, graceMs)));
}

