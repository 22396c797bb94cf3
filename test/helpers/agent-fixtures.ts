import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { startAgent, type AgentHandle, type AgentOptions } from '../../agents/agent.ts';
import { listInstanceIds, readInstanceState } from '../../agents/instance-dir.ts';
import { stopProcessGroup } from '../../agents/process-driver.ts';
import { configVersion, type ConfigVersionRecord } from '../../state/records/config.ts';
import type { ContainerSpec, InstanceRecord, InstanceStatus } from '../../state/records/instance.ts';
import type { NodeRecord } from '../../state/records/node.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys, type Keys } from '../../state/keys.ts';
import { nodeQueueName } from '../../state/queues.ts';
import { freshPrefix, testRedis } from './redis.ts';
import { waitFor } from './wait.ts';

/** A tiny HTTP server on $PORT that answers every request with its GANTRY_INSTANCE_ID. */
export const ECHO_SERVER_JS =
  "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE_ID)).listen(Number(process.env.PORT), '127.0.0.1')";

export function container(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: 'main',
    command: [process.execPath, '-e', ECHO_SERVER_JS],
    args: [],
    env: [],
    ports: [{ name: 'http', containerPort: 8080 }],
    cpuMilli: 100,
    memoryBytes: 64 * 1024 * 1024,
    ...overrides,
  };
}

/** A valid InstanceRecord bound to `node`, by default running the echo server (a fresh id each call). */
export function instanceRecord(node: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  const ordinal = overrides.ordinal ?? 0;
  const containers = overrides.containers ?? [container()];
  // Random, so that ids (and the processes found by them) never collide across concurrent test runs.
  const templateHash = randomUUID().slice(0, 8);
  return {
    id: `default.web-${templateHash}-${ordinal}`,
    uid: randomUUID(),
    namespace: 'default',
    deployment: 'web',
    templateHash,
    ordinal,
    commit: '0000000000000000000000000000000000000000',
    labels: { app: 'web' },
    containers,
    cpuMilli: containers.reduce((n, c) => n + c.cpuMilli, 0),
    memoryBytes: containers.reduce((n, c) => n + c.memoryBytes, 0),
    nodeSelector: {},
    restartPolicy: 'Always',
    runtime: 'process',
    terminationGracePeriodSeconds: 5,
    createdAt: Date.now(),
    node,
    boundAt: Date.now(),
    ...overrides,
  };
}

/**
 * One isolated world per test: its own key prefix, node name, data dir and queue producer, with
 * what the reconciler and scheduler would write done directly in Redis.
 */
export class AgentWorld {
  readonly node = `node-${randomUUID().slice(0, 6)}`;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'gantry-agent-'));
  readonly keys: Keys;
  readonly queue: Queue;
  readonly logs: string[] = [];
  private readonly agents: AgentHandle[] = [];

  private constructor(
    readonly url: string,
    readonly prefix: string,
    readonly redis: Redis,
  ) {
    this.keys = createKeys(prefix);
    this.queue = new Queue(nodeQueueName(this.node), { connection: redis, prefix: this.keys.bullPrefix });
  }

  static async create(): Promise<AgentWorld> {
    const { url } = await testRedis();
    return new AgentWorld(url, freshPrefix(), connectRedis(url, 'agent-test'));
  }

  async startAgent(overrides: Partial<AgentOptions> = {}): Promise<AgentHandle> {
    const agent = await startAgent({
      redisUrl: this.url,
      prefix: this.prefix,
      node: this.node,
      cpuMilli: 4000,
      memoryBytes: 8 * 1024 ** 3,
      dataDir: this.dataDir,
      // Long by default so that tests which rely on jobs prove the jobs work.
      resyncMs: 60_000,
      adoptPollMs: 100,
      log: (line) => this.logs.push(line),
      ...overrides,
    });
    this.agents.push(agent);
    return agent;
  }

  /** What reconciler + scheduler do: write the bound record and add it to the node's set. */
  async bind(record: InstanceRecord): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.instance(record.id), JSON.stringify(record))
      .sadd(this.keys.instances, record.id)
      .sadd(this.keys.nodeInstances(record.node!), record.id)
      .exec();
  }

  /** What the reconciler does when an instance goes away. */
  async unbind(record: InstanceRecord): Promise<void> {
    await this.redis
      .multi()
      .del(this.keys.instance(record.id))
      .srem(this.keys.instances, record.id)
      .srem(this.keys.nodeInstances(record.node!), record.id)
      .exec();
  }

  private nudges = 0;

  /**
   * "Look at instance X now" on the node's queue. Each nudge has its own job id, as the
   * reconciler's ids carry the record's uid: BullMQ ignores an add whose id is still active.
   */
  async nudge(id: string, kind: 'start' | 'stop' = 'start'): Promise<void> {
    await this.queue.add(kind, { instanceId: id }, { jobId: `${kind}.${id}.${++this.nudges}`, removeOnComplete: true, removeOnFail: true });
  }

  /** Waits until the instance's status satisfies `ok`, and returns it. */
  async statusWhere(id: string, what: string, ok: (s: InstanceStatus) => boolean, timeoutMs = 30_000): Promise<InstanceStatus> {
    return waitFor(async () => {
      const s = await this.status(id);
      return s && ok(s) ? s : undefined;
    }, { what: `${id}: ${what}`, timeoutMs });
  }

  async status(id: string): Promise<InstanceStatus | undefined> {
    const raw = await this.redis.get(this.keys.instanceStatus(id));
    return raw ? (JSON.parse(raw) as InstanceStatus) : undefined;
  }

  async nodeRecord(): Promise<NodeRecord | undefined> {
    const raw = await this.redis.get(this.keys.node(this.node));
    return raw ? (JSON.parse(raw) as NodeRecord) : undefined;
  }

  instanceDir(id: string): string {
    return join(this.dataDir, 'agents', this.node, 'instances', id);
  }

  /** Stops every agent and every process it started, then drops the data dir. */
  async cleanup(): Promise<void> {
    try {
      for (const agent of this.agents.splice(0)) await agent.stop({ stopInstances: true });
    } finally {
      // An agent stopped with the default (or a failed test) may leave processes behind.
      for (const id of listInstanceIds(this.dataDir, this.node)) {
        const state = readInstanceState(this.instanceDir(id));
        for (const c of state?.containers ?? []) await stopProcessGroup(c, 0);
      }
      await this.queue.close();
      await this.redis.quit();
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}

/** Body of an HTTP GET on the node address, or undefined while nothing answers there. */
export async function httpGet(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
    return await res.text();
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Process groups of live processes whose environment names this instance (one per container). */
export function processGroupsOf(instanceId: string): Set<number> {
  const groups = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (!env.includes(`GANTRY_INSTANCE_ID=${instanceId}`) || !pidAlive(Number(entry))) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      groups.add(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return groups;
}

/** A ConfigMap or Secret version as the reconciler writes it (ConfigStore.writeVersions), in namespace default. */
export function configVersionRecord(kind: 'ConfigMap' | 'Secret', name: string, data: Record<string, string>): ConfigVersionRecord {
  const content = { kind, data };
  return { ...content, namespace: 'default', name, version: configVersion(content), commit: '0'.repeat(40) };
}
