import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { InstanceStatus } from '../state/records/instance.ts';
import type { NodeRecord } from '../state/records/node.ts';
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
import { LocalInstance, type InstanceHost } from './local-instance.ts';
import { DEFAULT_LOG_MAX_BYTES, rotateInstanceLogs } from './log-file.ts';
import { startLogServer, type LogServer } from './log-server.ts';
import { NodeDocker, ownerFromLabels } from './node-docker.ts';
import { stopProcessGroup } from './process-driver.ts';
import { signalGroup } from './proc.ts';
import { AgentStore } from '../state/agent-store.ts';
import { ServiceProxy } from './service-proxy.ts';
import { serviceEnv } from './service-env.ts';
import { ConnectionGuard } from './connection-guard.ts';
import { DEFAULT_BACKOFF } from './restart-backoff.ts';
import { processesByInstance, type InstanceProcess } from './stray-processes.ts';
import { instancesRoot } from './instance-dir.ts';

/**
 * The node agent: registers its node, heartbeats, and makes the processes and Docker containers
 * on this node match the instances bound to it in Redis. Jobs on the node's queue only say "look
 * at instance X now"; the truth is always re-read from Redis, and a periodic resync catches
 * whatever jobs were lost.
 */

export interface AgentOptions {
  redisUrl: string;
  prefix?: string;
  node: string;
  cpuMilli: number;
  memoryBytes: number;
  labels?: Record<string, string>;
  /** Where this node's instances answer; host ports are bound there. */
  address?: string;
  /** Instances live under <dataDir>/agents/<node>/instances/<id>/. */
  dataDir: string;
  heartbeatMs?: number;
  resyncMs?: number;
  concurrency?: number;
  logMaxBytes?: number;
  /** Poll interval for processes adopted from a previous agent (default 500 ms). */
  adoptPollMs?: number;
  /**
   * Run containers with an image on the Docker Engine (DOCKER_HOST or /var/run/docker.sock) when it
   * answers; probed at start and on every resync. false: this node never offers the docker runtime.
   */
  docker?: boolean;
  /** Port of the log endpoint on `address` (default 0: any free port, recorded in the NodeRecord). */
  logsPort?: number;
  /** Restart backoff of crashed containers: first delay (default 10 s), doubling up to the max (5 min). */
  restartBackoffMs?: number;
  restartBackoffMaxMs?: number;
  /** Stop this node's instances after this long without Redis (default: keep them running). */
  stopAfterDisconnectMs?: number;
  log?: (line: string) => void;
}

export interface AgentHandle {
  /** By default leaves instances running for the next agent to adopt; stopInstances stops them. */
  stop(opts?: { stopInstances?: boolean }): Promise<void>;
}

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
  private readonly redis: Redis;
  private readonly workerRedis: Redis;
  private readonly store: AgentStore;
  private readonly host: InstanceHost;
  private readonly instances = new Map<string, LocalInstance>();
  /** Last status written per local instance, to skip writes (and change events) that change nothing. */
  private readonly lastReported = new WeakMap<LocalInstance, string>();
  private readonly mutex = new KeyedMutex();
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

  constructor(private readonly opts: AgentOptions) {
    this.keys = createKeys(opts.prefix ?? DEFAULT_PREFIX);
    this.node = opts.node;
    this.keys.node(this.node); // validates the name before anything touches Redis or disk
    this.address = opts.address ?? '127.0.0.1';
    this.log = opts.log ?? (() => {});
    this.redis = connectRedis(opts.redisUrl, `gantry-agent-${this.node}`);
    // BullMQ blocks on its connection; commands of the agent must not queue behind it.
    this.workerRedis = connectRedis(opts.redisUrl, `gantry-agent-${this.node}-worker`);
    this.store = new AgentStore(this.redis, this.keys, this.node);
    this.docker = new NodeDocker(
      { enabled: opts.docker !== false, node: this.node, address: this.address, dataDir: opts.dataDir, prefix: this.keys.prefix, logMaxBytes: opts.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES },
      this.log,
    );
    this.host = {
      node: this.node,
      address: this.address,
      adoptPollMs: opts.adoptPollMs ?? 500,
      poke: (id) => this.inBackground(this.handle(id)),
      docker: () => this.docker.driverOrReason(),
      event: (ev) => void this.store.events.record(ev).catch((err) => this.log(`recording an event failed: ${err}`)),
      serviceEnv: (ns, own) => serviceEnv(this.proxy.services(), ns, this.address, own),
      backoff: {
        ...DEFAULT_BACKOFF,
        ...(opts.restartBackoffMs !== undefined ? { initialMs: opts.restartBackoffMs } : {}),
        ...(opts.restartBackoffMaxMs !== undefined ? { maxMs: opts.restartBackoffMaxMs } : {}),
      },
    };
    this.proxy = new ServiceProxy({ redisUrl: opts.redisUrl, keys: this.keys, node: this.node, address: this.address, resyncMs: opts.resyncMs, log: this.log });
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
      docker: () => this.docker.client(),
      log: this.log,
    });
    await this.register();
    this.guard.start();
    this.heartbeatTimer = setInterval(() => {
      // Never "I am here" before stale copies are stopped (fencing).
      this.guard
        .whenFenced()
        .then(() => this.store.heartbeat())
        .then(() => this.guard.markOk(), (err) => this.log(`heartbeat failed: ${err}`));
    }, this.opts.heartbeatMs ?? 5_000);
    this.worker = new Worker<InstanceJob>(nodeQueueName(this.node), (job) => this.handle(job.data.instanceId), {
      connection: this.workerRedis,
      prefix: this.keys.bullPrefix,
      concurrency: this.opts.concurrency ?? 4,
    });
    this.worker.on('error', (err) => this.log(`queue worker error: ${err.message}`));
    // The first resync adopts what a previous agent left running; it runs while jobs flow.
    this.inBackground(this.resyncLoop());
    this.log(`agent ${this.node} registered at ${this.address} (runtimes ${this.runtimes().join(', ')}; logs on port ${this.logServer.port})`);
  }

  private runtimes(): NodeRecord['runtimes'] {
    return this.docker.available ? ['process', 'docker'] : ['process'];
  }

  /** Writes the node record (keeping an operator's cordon), joins `nodes`, heartbeats, announces. */
  private async register(): Promise<void> {
    await this.store.register((existing) => ({
      name: this.node,
      cpuMilli: this.opts.cpuMilli,
      memoryBytes: this.opts.memoryBytes,
      labels: this.opts.labels ?? {},
      runtimes: this.runtimes(),
      address: this.address,
      agentPid: process.pid,
      ...(this.logServer ? { logsPort: this.logServer.port } : {}),
      registeredAt: Date.now(),
      ...(existing?.cordoned ? { cordoned: true } : {}),
    }));
  }

  private handle(id: string, opts: HandleOptions = {}): Promise<void> {
    return this.guard.whenFenced().then(() => this.mutex.run(id, () => this.handleLocked(id, opts)));
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
    const wanted = record?.node === this.node ? record : undefined;
    const dir = instanceDir(this.opts.dataDir, this.node, id);
    const docker = this.docker.usable();
    let local = this.instances.get(id);
    let leftover: { namespace: string; deployment: string } | undefined;
    /** Containers dealt with here (adopted or removed), so the stray sweep leaves them alone. */
    const handled = new Set<string>();
    if (!local) {
      const state = readInstanceState(dir);
      // The engine, not the disk, says which containers exist: adoption works without the dir too.
      const found = docker ? await docker.find(id, wanted?.containers ?? []) : [];
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
      this.log(`stopping ${id} (uid ${local.uid})`);
      await local.stop();
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
    if (await this.docker.probe()) await this.register();
    const assigned = await this.store.assignedInstanceIds();
    const onDisk = listInstanceIds(this.opts.dataDir, this.node);
    const seen = await this.docker.listByInstance();
    const procs = processesByInstance(instancesRoot(this.opts.dataDir, this.node));
    const ids = new Set([...assigned, ...onDisk, ...this.instances.keys(), ...(seen?.keys() ?? []), ...procs.keys()]);
    await Promise.all(
      [...ids].map((id) =>
        this.handle(id, { recheck: true, seen: seen ? (seen.get(id) ?? []) : undefined, procs: procs.get(id) ?? [] }).catch((err) => this.log(`handling ${id} failed: ${err}`)),
      ),
    );
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
      this.log(`resync failed: ${err}`);
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
            await local.stop().catch((err) => this.log(`stopping ${id} failed: ${err}`));
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
  }
}

/** Stops the processes a state.json describes (an incarnation this agent does not run any more). */
async function stopFromState(state: InstanceState): Promise<void> {
  const graceMs = (state.terminationGracePeriodSeconds ?? 10) * 1000;
  await Promise.all(state.containers.map((c) => stopProcessGroup(c, graceMs)));
}
