import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { DeploymentView, InstanceView } from '../../reconciler/api/views.ts';
import type { DeploymentStatus } from '../../state/records/status.ts';
import type { GantryEvent } from '../../state/events.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet } from '../helpers/agent-fixtures.ts';

/** Rollouts on real processes: pacing, automatic rollback, canary, undo, and a reconciler crash. */

interface Spec {
  replicas: number;
  greeting: string;
  strategy?: string;
  extra?: string;
}
const web = ({ replicas, greeting, strategy = 'rollingUpdate: { maxSurge: 1, maxUnavailable: 1 }', extra = '' }: Spec) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  progressDeadlineSeconds: 3
  strategy: { ${strategy.startsWith('type') ? strategy : `type: RollingUpdate, ${strategy}`} }
  template:
    metadata:
      labels: { app: web }
    spec:
      terminationGracePeriodSeconds: 1${extra}
      containers:
        - name: server
          command: ["node", "-e", "require('http').createServer((q, s) => s.end(process.env.GREETING)).listen(+process.env.PORT)"]
          env: [{ name: GREETING, value: "${greeting}" }]
          ports: [{ name: http, containerPort: 8080 }]
`;

let c: TestCluster;
let api: string;
const get = <T>(path: string) => c.get<T>(path);
const instances = () => c.instances();
const rollout = async () => get<{ status: DeploymentStatus | null; history: { revision: number; current: boolean; stable: boolean; failed: boolean; commit: string }[] }>('/api/v1/deployments/default/web/rollout');
const gantry = (...args: string[]) => runGantry([...args, '--api', api]);

/** Waits until every replica runs and answers with `greeting`, and nothing else runs. */
async function converged(greeting: string, replicas: number, timeoutMs = 30_000): Promise<InstanceView[]> {
  return waitFor(async () => {
    const all = await instances();
    if (all.length !== replicas || !all.every((i) => i.phase === 'Running')) return undefined;
    const bodies = await Promise.all(all.map((i) => httpGet(i.ports[0]!.hostPort)));
    return bodies.every((b) => b === greeting) ? all : undefined;
  }, { timeoutMs, what: `${replicas} replicas answering ${greeting}` });
}

before(async () => {
  c = await startCluster({ reconcilerFlags: ['--resync', '2s'] });
  api = c.api;
});
after(() => c?.stop());

test('a rolling update never exceeds replicas + maxSurge instances nor drops below replicas - maxUnavailable ready', async () => {
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'v1' }) }, 'v1');
  await converged('v1', 4);
  const samples: { total: number; ready: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const all = await instances();
      samples.push({ total: all.length, ready: all.filter((i) => i.phase === 'Running').length });
    }
  })();
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'v2' }) }, 'v2');
  await converged('v2', 4);
  sampling = false;
  await sampler;
  assert.ok(samples.length > 10, `only ${samples.length} samples`);
  assert.ok(samples.every((s) => s.total <= 5), `more than 5 instances: ${JSON.stringify(samples.filter((s) => s.total > 5)[0])}`);
  assert.ok(samples.every((s) => s.ready >= 3), `fewer than 3 ready: ${JSON.stringify(samples.filter((s) => s.ready < 3)[0])}`);
  const r = await waitFor(async () => ((await rollout()).status?.rollout?.phase === 'Complete' ? rollout() : undefined), { what: 'rollout complete' });
  assert.deepEqual(r.history.map((h) => [h.revision, h.current, h.stable]), [[1, false, false], [2, true, true]]);
  const status = await gantry('rollout', 'status', 'deployment/web');
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /deployment\/web successfully rolled out/);
});

test('a commit that never becomes ready is rolled back after its deadline, the old revision serving throughout', async () => {
  const bad = await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'v3', extra: '\n      nodeSelector: { disk: none-has-this }' }) }, 'v3: unschedulable');
  let serving = true;
  const watcher = (async () => {
    const live = await instances();
    while (serving) {
      const bodies = await Promise.all(live.map((i) => httpGet(i.ports[0]!.hostPort)));
      assert.ok(bodies.filter((b) => b === 'v2').length >= 3, `v2 stopped serving: ${bodies}`);
    }
  })();
  const pinned = await waitFor(async () => {
    const r = await rollout();
    return r.status?.rollout?.pinned ? r : undefined;
  }, { timeoutMs: 20_000, what: 'rollback pin' });
  assert.deepEqual(pinned.status!.rollout!.pinned, { revision: 2, reason: 'rollback', failedCommit: bad });
  await converged('v2', 4);
  serving = false;
  await watcher;
  const events = (await get<{ items: GantryEvent[] }>('/api/v1/events?limit=500')).items;
  const rolledBack = events.find((e) => e.reason === 'RolledBack');
  assert.ok(rolledBack, 'RolledBack event');
  assert.match(rolledBack.message, new RegExp(`commit ${bad.slice(0, 7)} \\(revision 3\\) failed: ProgressDeadlineExceeded; returning to revision 2`));
  const deps = (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items;
  assert.ok(deps[0]!.conditions.some((c) => c.type === 'Pinned' && c.status === 'True' && c.reason === 'RolledBack'));
  const status = await gantry('rollout', 'status', 'deployment/web', '--no-follow');
  assert.equal(status.code, 1);

  // A later good commit rolls out normally.
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'v4' }) }, 'v4');
  await converged('v4', 4);
  const after = await waitFor(async () => ((await rollout()).status?.rollout?.phase === 'Complete' ? rollout() : undefined), { what: 'v4 complete' });
  assert.equal(after.status!.rollout!.pinned, null);
  assert.ok(after.history.find((h) => h.revision === 3)?.failed === false);
});

test('history, undo pins an earlier revision until resume', async () => {
  const history = await gantry('rollout', 'history', 'deployment/web');
  assert.equal(history.code, 0, history.stderr);
  assert.match(history.stdout, /^REVISION\s+TEMPLATE\s+COMMIT/);
  assert.match(history.stdout, /\n4\s+[0-9a-f]{10}\s+[0-9a-f]{7}\s+\S+\s+current,stable\s+v4/);
  const undo = await gantry('rollout', 'undo', 'deployment/web', '--to-revision', '2');
  assert.equal(undo.code, 0, undo.stderr);
  await converged('v2', 4);
  const deps = (await get<{ items: DeploymentView[] }>('/api/v1/deployments')).items;
  assert.ok(deps[0]!.conditions.some((c) => c.type === 'Pinned' && c.reason === 'Undone'));
  const resume = await gantry('rollout', 'resume', 'deployment/web');
  assert.equal(resume.code, 0, resume.stderr);
  await converged('v4', 4);
  const bad = await gantry('rollout', 'undo', 'deployment/web', '--to-revision', '99');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /revision 99 is not in the history/);
});

test('pause holds a rollout until resume; restart rolls every instance without a spec change', async () => {
  const before = await converged('v4', 4);
  const pause = await gantry('rollout', 'pause', 'deployment/web');
  assert.equal(pause.code, 0, pause.stderr);
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'p1' }) }, 'p1 while paused');
  // The commit is applied (the deployment's generation moves) but no instance changes.
  await waitFor(async () => {
    const r = await rollout();
    return r.status?.rollout?.paused === true && r.status.observedGeneration === (await get<{ generation: number }>('/api/v1/deployments/default/web/rollout')).generation;
  }, { what: 'paused status of the new generation' });
  const held = await instances();
  assert.deepEqual(held.map((i) => i.id).sort(), before.map((i) => i.id).sort());
  const resume = await gantry('rollout', 'resume', 'deployment/web');
  assert.equal(resume.code, 0, resume.stderr);
  const resumed = await converged('p1', 4);

  const restart = await gantry('rollout', 'restart', 'deployment/web');
  assert.equal(restart.code, 0, restart.stderr);
  const restarted = await waitFor(async () => {
    const all = await instances();
    return all.length === 4 && all.every((i) => i.phase === 'Running' && !resumed.some((r) => r.id === i.id)) ? all : undefined;
  }, { timeoutMs: 30_000, what: 'every instance replaced by the restart' });
  assert.equal(new Set(restarted.map((i) => i.revision)).size, 1);
  await converged('p1', 4);
});

test('canary: pauses at its step, promote finishes it; abort returns to stable', async () => {
  const canary = 'type: Canary, steps: [ { setWeight: 50 }, { pause: {} } ]';
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'c1', strategy: canary }) }, 'canary c1');
  const paused = await waitFor(async () => {
    const r = await rollout();
    return r.status?.rollout?.reason === 'CanaryPaused' ? r : undefined;
  }, { what: 'canary paused' });
  assert.equal(paused.status!.rollout!.canaryReplicas, 2);
  const split = await waitFor(async () => {
    const all = await instances();
    const bodies = await Promise.all(all.map((i) => httpGet(i.ports[0]!.hostPort)));
    return all.length === 4 && bodies.filter((b) => b === 'c1').length === 2 && bodies.filter((b) => b === 'p1').length === 2 ? bodies : undefined;
  }, { what: '2 canary + 2 stable' });
  assert.equal(split.length, 4);
  const promote = await gantry('rollout', 'promote', 'deployment/web');
  assert.equal(promote.code, 0, promote.stderr);
  await converged('c1', 4);

  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 4, greeting: 'c2', strategy: canary }) }, 'canary c2');
  await waitFor(async () => (await rollout()).status?.rollout?.reason === 'CanaryPaused', { what: 'second canary paused' });
  const abort = await gantry('rollout', 'abort', 'deployment/web');
  assert.equal(abort.code, 0, abort.stderr);
  await converged('c1', 4);
});

test('a reconciler killed with SIGKILL mid-rollout finishes it after restart, with no duplicate or lost instance', async () => {
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 6, greeting: 'k1' }) }, 'k1 x6');
  await converged('k1', 6);
  await c.repo.commitFiles({ 'web.yaml': web({ replicas: 6, greeting: 'k2' }) }, 'k2');
  // Kill it once the rollout is under way: some new instances exist, some old ones remain.
  const before = (await instances()).map((i) => i.revision);
  await waitFor(async () => {
    const revs = new Set((await instances()).map((i) => i.revision));
    return revs.size > 1 && [...revs].some((r) => !before.includes(r));
  }, { what: 'rollout under way' });
  await c.restartReconciler('SIGKILL');
  // A new reconciler process starts cold (tsx, Redis, the first sync) under whatever load the suite puts on the machine.
  const done = await converged('k2', 6, 60_000);
  assert.equal(new Set(done.map((i) => i.id)).size, 6);
  assert.equal(new Set(done.map((i) => i.pid)).size, 6);
});

/** Revisions (template hashes) of the live processes of a deployment, read from /proc. */
function liveRevisions(deployment: string): Set<string> {
  const revs = new Set<string>();
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (!env.includes(`GANTRY_DEPLOYMENT=${deployment}`) || !env.includes(`GANTRY_PREFIX_TAG=${c.prefix}`)) continue;
      const id = env.find((e) => e.startsWith('GANTRY_INSTANCE_ID='))!.split('=')[1]!;
      const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z') revs.add(id.split('-').at(-2)!);
    } catch {
      // gone meanwhile
    }
  }
  return revs;
}

test('Recreate stops every old process before any new one starts', async () => {
  const rec = (greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: rec
spec:
  replicas: 2
  strategy: { type: Recreate }
  template:
    metadata:
      labels: { app: rec }
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: main
          # Takes a second to shut down, as real servers do: a new copy must not start meanwhile.
          command: ["node", "-e", "setInterval(() => {}, 1000); process.on('SIGTERM', () => setTimeout(() => process.exit(0), 1000))"]
          env: [{ name: GREETING, value: "${greeting}" }, { name: GANTRY_PREFIX_TAG, value: "${c.prefix}" }]
`;
  await c.repo.commitFiles({ 'rec.yaml': rec('r1') }, 'rec r1');
  await waitFor(() => liveRevisions('rec').size === 1 && (async () => (await instances()).filter((i) => i.deployment === 'rec' && i.phase === 'Running').length === 2)(), { what: 'rec r1 running' });
  const [oldRev] = [...liveRevisions('rec')];
  const seen: string[][] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      seen.push([...liveRevisions('rec')]);
      await new Promise((r) => setImmediate(r));
    }
  })();
  await c.repo.commitFiles({ 'rec.yaml': rec('r2') }, 'rec r2');
  await waitFor(async () => {
    const live = (await instances()).filter((i) => i.deployment === 'rec');
    const revs = liveRevisions('rec');
    return live.length === 2 && live.every((i) => i.phase === 'Running') && revs.size === 1 && !revs.has(oldRev!);
  }, { timeoutMs: 30_000, what: 'rec r2 running' });
  sampling = false;
  await sampler;
  assert.ok(seen.some((s) => s.length === 0), 'a moment with no process at all (all old stopped, none new yet)');
  assert.ok(seen.every((s) => s.length <= 1), `old and new processes alive together: ${JSON.stringify(seen.find((s) => s.length > 1))}`);
});
