import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import type { DeploymentView, InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { GantryEvent } from '../../state/events.ts';
import { apiFetch } from '../helpers/api-auth.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { GANTRY_BIN, spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Agents whose clocks are 2 minutes behind and 2 minutes ahead (faketime, as a VM with a drifting
 * clock): heartbeats, NotReady, eviction and minReadySeconds are judged on Redis's clock, so no
 * healthy node is evicted, a dead one still is on time, and minReadySeconds is as long as it says.
 */

const SKEW = { behind: '-120s', ahead: '+120s' } as const;
type Skewed = keyof typeof SKEW;

const deployment = (clock: Skewed) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: on-${clock} }
spec:
  replicas: 1
  minReadySeconds: 3
  template:
    metadata: { labels: { app: on-${clock} } }
    spec:
      nodeSelector: { clock: ${clock} }
      terminationGracePeriodSeconds: 1
      containers:
        - name: sleeper
          command: ["sleep", "600"]
`;

let repo: TestRepo;
let dataDir: string;
let api: string;
let reconciler: GantryProcess;
const agents = new Map<Skewed, { pid: number; stop: () => void; output: () => string }>();

const get = async <T>(path: string): Promise<T> => (await (await apiFetch(api + path)).json()) as T;
const nodes = async () => (await get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => [] as NodeView[]));
const nodeOf = async (clock: Skewed) => (await nodes()).find((n) => n.name === `node-${clock}`);

/**
 * libfaketime, as the `faketime` command sets it up (Debian package faketime), but preloaded into
 * the agent itself: `faketime` forks, and the test must be able to kill the agent's own process.
 */
function libfaketime(): string {
  const dir = readdirSync('/usr/lib', { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join('/usr/lib', d.name, 'faketime', 'libfaketime.so.1')).find((p) => existsSync(p));
  if (!dir) throw new Error('libfaketime not found: apt-get install faketime (.ci/run does)');
  return dir;
}

function startSkewedAgent(clock: Skewed, url: string, prefix: string): void {
  // Only wall-clock time is shifted: timers run at the normal pace, as on a machine whose clock is off.
  const child = spawn(process.execPath, [GANTRY_BIN, 'agent', '--node', `node-${clock}`, '--labels', `clock=${clock}`, '--redis', url, '--prefix', prefix, '--data-dir', dataDir, '--heartbeat', '500ms', '--stop-instances-on-exit', '--no-docker'], {
    env: { ...process.env, LD_PRELOAD: libfaketime(), FAKETIME: SKEW[clock], FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  agents.set(clock, { pid: child.pid!, stop: () => child.kill('SIGTERM'), output: () => out });
}

before(async () => {
  const { url } = await testRedis();
  const prefix = freshPrefix();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-skew-'));
  repo = await createRepo();
  await repo.commitFiles({ 'behind.yaml': deployment('behind'), 'ahead.yaml': deployment('ahead') }, 'one deployment per skewed node');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  reconciler = spawnGantry(['reconciler', '--redis', url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir, '--node-ready-timeout', '2s', '--eviction-timeout', '2s']);
  startSkewedAgent('behind', url, prefix);
  startSkewedAgent('ahead', url, prefix);
  await waitFor(async () => (await nodes()).filter((n) => n.ready).length === 2, { timeoutMs: 30_000, what: 'both skewed nodes ready' }).catch((err: Error) => {
    throw new Error(`${err.message}\n${[...agents.values()].map((a) => a.output().slice(-2000)).join('\n---\n')}`);
  });
});

after(async () => {
  for (const a of agents.values()) a.stop();
  await reconciler?.stop();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('the agents really run on skewed clocks, and their heartbeats are on Redis\'s clock', async () => {
  // What the agent's process itself reads as the time: 2 minutes off.
  for (const clock of ['behind', 'ahead'] as const) {
    const seen = await new Promise<number>((resolve, reject) => {
      const probe = spawn(process.execPath, ['-e', 'console.log(Date.now())'], { env: { ...process.env, LD_PRELOAD: libfaketime(), FAKETIME: SKEW[clock] }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      probe.stdout.on('data', (d) => (out += d));
      probe.once('exit', () => resolve(Number(out.trim())));
      probe.once('error', reject);
    });
    const off = seen - Date.now();
    assert.ok(clock === 'behind' ? off < -100_000 : off > 100_000, `a process under FAKETIME=${SKEW[clock]} sees ${off} ms`);
  }
  // Their node records say when they registered, by their own clocks moved onto Redis's.
  for (const clock of ['behind', 'ahead'] as const) {
    const n = await nodeOf(clock);
    assert.ok(n && Math.abs(n.lastHeartbeat - Date.now()) < 10_000, `node-${clock}'s heartbeat is on Redis's clock, not 2 minutes off`);
  }
});

test('skewed but healthy nodes stay Ready through many heartbeats: no false NotReady, no eviction', async () => {
  const beats = new Map<string, Set<number>>();
  await waitFor(async () => {
    const all = await nodes();
    for (const n of all) {
      assert.equal(n.state, 'Ready', `node ${n.name} went ${n.state} while healthy`);
      beats.set(n.name, (beats.get(n.name) ?? new Set()).add(n.lastHeartbeat));
    }
    return all.length === 2 && [...beats.values()].every((s) => s.size >= 12);
  }, { timeoutMs: 30_000, intervalMs: 100, what: '12 heartbeats of each skewed node' });
  const events = (await get<{ items: GantryEvent[] }>('/api/v1/events?limit=1000')).items;
  assert.deepEqual(events.filter((e) => ['NodeNotReady', 'NodeLost', 'Evicted'].includes(e.reason)).map((e) => e.message), []);
});

test('minReadySeconds on a node 2 minutes behind lasts its 3 seconds', async () => {
  const running = await waitFor(async () => {
    const [inst] = (await get<{ items: InstanceView[] }>('/api/v1/instances?deployment=on-behind')).items;
    return inst?.phase === 'Running' ? inst : undefined;
  }, { what: 'the instance on node-behind Running' });
  const available = await waitFor(async () => {
    const d = (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items.find((x) => x.name === 'on-behind');
    return d && d.available === 1 ? Date.now() : undefined;
  }, { intervalMs: 50, what: 'on-behind available' });
  // startedAt is on Redis's clock; a status stamped with the agent's own would be 2 minutes old,
  // and available at once.
  assert.ok(Math.abs(running.startedAt! - Date.now()) < 20_000, 'startedAt on Redis\'s clock');
  assert.ok(available - running.startedAt! >= 2_500, `available ${available - running.startedAt!} ms after it started, minReadySeconds is 3`);
});

test('a dead node with a clock 2 minutes ahead is still NotReady and evicted on time', async () => {
  const agent = agents.get('ahead')!;
  const killedAt = Date.now();
  process.kill(agent.pid, 'SIGKILL');
  await waitFor(async () => (await nodeOf('ahead'))?.state === 'NotReady', { timeoutMs: 15_000, intervalMs: 50, what: 'node-ahead NotReady' });
  const notReadyAfter = Date.now() - killedAt;
  await waitFor(async () => (await nodeOf('ahead'))?.state === 'Evicted', { timeoutMs: 20_000, intervalMs: 50, what: 'node-ahead Evicted' });
  const evictedAfter = Date.now() - killedAt;
  assert.ok(notReadyAfter >= 1_000 && notReadyAfter <= 8_000, `NotReady ${notReadyAfter} ms after death (grace 2 s)`);
  assert.ok(evictedAfter >= 3_000 && evictedAfter <= 14_000, `evicted ${evictedAfter} ms after death (grace 2 s + eviction 2 s)`);
  // The one behind is alive and was never doubted.
  assert.equal((await nodeOf('behind'))?.state, 'Ready');
});
