import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import { createRepo, type TestRepo } from './git-repo.ts';
import { spawnGantry, type GantryProcess } from './gantry-process.ts';
import { freshPrefix, testRedis } from './redis.ts';
import { waitFor } from './wait.ts';
import { apiFetch } from './api-auth.ts';

/**
 * A whole Gantry on this machine for an end-to-end test, as users run it: a real Git repository,
 * the reconciler and agents as separate `gantry` processes talking only through a real Redis
 * (shared per test file, fresh key prefix). Agents stop their instances when they exit.
 */
export interface TestCluster {
  repo: TestRepo;
  api: string;
  redisUrl: string;
  prefix: string;
  dataDir: string;
  reconcilerArgs: string[];
  reconciler: GantryProcess;
  agents: Map<string, GantryProcess>;
  get<T>(path: string): Promise<T>;
  instances(): Promise<InstanceView[]>;
  startAgent(node: string, extra?: string[]): GantryProcess;
  restartReconciler(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function startCluster(opts: { nodes?: string[]; reconcilerFlags?: string[]; agentFlags?: string[]; files?: Record<string, string> } = {}): Promise<TestCluster> {
  const { url: redisUrl } = await testRedis();
  const prefix = freshPrefix();
  const dataDir = mkdtempSync(join(tmpdir(), 'gantry-e2e-'));
  const repo = await createRepo();
  await repo.commitFiles(opts.files ?? { 'README.md': 'empty' }, 'initial');
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const reconcilerArgs = ['reconciler', '--redis', redisUrl, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, ...(opts.reconcilerFlags ?? [])];
  const procs: GantryProcess[] = [];
  const agents = new Map<string, GantryProcess>();
  const get = async <T>(path: string): Promise<T> => (await (await apiFetch(api + path)).json()) as T;

  const cluster: TestCluster = {
    repo,
    api,
    redisUrl,
    prefix,
    dataDir,
    reconcilerArgs,
    reconciler: spawnGantry(reconcilerArgs),
    agents,
    get,
    instances: async () => (await get<{ items: InstanceView[] }>('/api/v1/instances')).items,
    startAgent(node, extra = []) {
      const a = spawnGantry(['agent', '--node', node, '--redis', redisUrl, '--prefix', prefix, '--data-dir', dataDir, '--heartbeat', '1s', '--stop-instances-on-exit', ...(opts.agentFlags ?? []), ...extra]);
      agents.set(node, a);
      procs.push(a);
      return a;
    },
    async restartReconciler(signal = 'SIGTERM') {
      await cluster.reconciler.stop(signal);
      cluster.reconciler = spawnGantry(reconcilerArgs);
      procs.push(cluster.reconciler);
    },
    async stop() {
      await Promise.all(procs.map((p) => p.stop()));
      await repo.cleanup();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  procs.push(cluster.reconciler);
  const nodes = opts.nodes ?? ['node-1', 'node-2'];
  for (const n of nodes) cluster.startAgent(n);
  // Every node ready first: replicas committed while only one node is up would all (rightly) go there.
  await waitFor(async () => {
    const items = await get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === nodes.length && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: `${nodes.length} ready nodes` });
  return cluster;
}
