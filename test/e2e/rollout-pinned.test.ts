import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { DeploymentView, InstanceView } from '../../reconciler/api/views.ts';
import type { DeploymentStatus } from '../../state/records/status.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet } from '../helpers/agent-fixtures.ts';

/**
 * A deployment pinned by an automatic rollback, on real processes: its status describes the pinned
 * revision that runs, and `gantry rollout restart` rolls every instance of it within the strategy's
 * bounds, without retrying the failed commit.
 */

const REPLICAS = 4;
const web = (greeting: string, extra = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS}
  progressDeadlineSeconds: 3
  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }
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

interface RolloutView {
  status: DeploymentStatus | null;
  history: { revision: number; templateHash: string; current: boolean; stable: boolean; failed: boolean; commit: string }[];
}

let c: TestCluster;
const rollout = () => c.get<RolloutView>('/api/v1/deployments/default/web/rollout');
const gantry = (...args: string[]) => runGantry([...args, '--api', c.api]);

/** Waits until every replica runs and answers with `greeting`, and nothing else runs. */
async function converged(greeting: string, timeoutMs = 30_000): Promise<InstanceView[]> {
  return waitFor(async () => {
    const all = await c.instances();
    if (all.length !== REPLICAS || !all.every((i) => i.phase === 'Running')) return undefined;
    const bodies = await Promise.all(all.map((i) => httpGet(i.ports[0]!.hostPort)));
    return bodies.every((b) => b === greeting) ? all : undefined;
  }, { timeoutMs, what: `${REPLICAS} replicas answering ${greeting}` });
}

before(async () => {
  c = await startCluster({ reconcilerFlags: ['--resync', '2s'] });
});
after(() => c?.stop());

let good: string;
let bad: string;

test('after an automatic rollback, status describes the pinned revision that runs', async () => {
  good = await c.repo.commitFiles({ 'web.yaml': web('v1') }, 'v1');
  await converged('v1');
  const v1 = await waitFor(async () => ((await rollout()).status?.rollout?.phase === 'Complete' ? rollout() : undefined), { what: 'v1 complete' });
  const v1Hash = v1.history.find((h) => h.revision === 1)!.templateHash;

  bad = await c.repo.commitFiles({ 'web.yaml': web('v2', '\n      nodeSelector: { disk: none-has-this }') }, 'v2: unschedulable');
  const pinned = await waitFor(async () => {
    const r = await rollout();
    return r.status?.rollout?.pinned && r.status.rollout.phase === 'Complete' && r.status.updatedReplicas === REPLICAS ? r : undefined;
  }, { timeoutMs: 30_000, what: 'rolled back, pinned and complete' });
  await converged('v1');
  const s = pinned.status!;
  assert.equal(s.observedCommit, bad, 'Git asks for the failed commit');
  assert.equal(s.templateHash, v1Hash);
  assert.deepEqual([s.rollout!.revision, s.rollout!.commit, s.rollout!.reason], [1, good, 'RolledBack']);
  assert.deepEqual(s.rollout!.pinned, { revision: 1, reason: 'rollback', failedCommit: bad });
  const progressing = s.conditions.find((x) => x.type === 'Progressing')!;
  assert.deepEqual([progressing.status, progressing.reason, progressing.message], ['True', 'NewReplicaSetAvailable', `revision 1 (${v1Hash}) of commit ${good.slice(0, 7)} is available`]);
  const pin = s.conditions.find((x) => x.type === 'Pinned')!;
  assert.deepEqual([pin.status, pin.reason], ['True', 'RolledBack']);
  assert.match(pin.message, new RegExp(`^running revision 1 \\(commit ${good.slice(0, 7)}\\): revision 2 \\(commit ${bad.slice(0, 7)}\\) failed \\(ProgressDeadlineExceeded\\) and was rolled back`));

  const dep = (await c.get<{ items: DeploymentView[] }>('/api/v1/deployments')).items[0]!;
  assert.deepEqual([dep.updated, dep.commit, dep.running], [REPLICAS, bad, { revision: 1, templateHash: v1Hash, commit: good, pinned: true }]);
  const table = await gantry('get', 'deployments');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`\\ndefault\\s+web\\s+4/4\\s+4\\s+4\\s+${good.slice(0, 7)}\\s+${v1Hash}\\s+\\S*Pinned=RolledBack`));
  const status = await gantry('rollout', 'status', 'deployment/web', '--no-follow');
  assert.equal(status.code, 1, 'Git\'s commit failed');
  assert.match(status.stdout, /^revision 1 Complete: 4 updated, 4\/4 ready, 0 old/);
  assert.match(status.stdout, new RegExp(`deployment/web pinned \\(RolledBack\\): running revision 1 \\(commit ${good.slice(0, 7)}\\): revision 2 \\(commit ${bad.slice(0, 7)}\\) failed`));
});

test('rollout restart while pinned rolls every instance of the pinned revision within maxSurge/maxUnavailable', async () => {
  const before = await converged('v1');
  const samples: { total: number; ready: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const all = await c.instances();
      samples.push({ total: all.length, ready: all.filter((i) => i.phase === 'Running').length });
    }
  })();
  let restarted: InstanceView[];
  try {
    const restart = await gantry('rollout', 'restart', 'deployment/web');
    assert.equal(restart.code, 0, restart.stderr);
    restarted = await waitFor(async () => {
      const all = await c.instances();
      return all.length === REPLICAS && all.every((i) => i.phase === 'Running' && !before.some((b) => b.id === i.id)) ? all : undefined;
    }, { timeoutMs: 30_000, what: 'every instance replaced by the restart' });
  } finally {
    sampling = false;
    await sampler;
  }
  assert.ok(samples.length > 10, `only ${samples.length} samples`);
  assert.ok(samples.every((x) => x.total <= REPLICAS + 1), `more than ${REPLICAS + 1} instances: ${JSON.stringify(samples.find((x) => x.total > REPLICAS + 1))}`);
  assert.ok(samples.every((x) => x.ready >= REPLICAS - 1), `fewer than ${REPLICAS - 1} ready: ${JSON.stringify(samples.find((x) => x.ready < REPLICAS - 1))}`);
  assert.equal(new Set(restarted.map((i) => i.revision)).size, 1);
  assert.ok(restarted.every((i) => i.commit === good), 'the restarted instances run the pinned commit');
  await converged('v1');

  const r = await waitFor(async () => {
    const v = await rollout();
    return v.status?.rollout?.phase === 'Complete' && v.status.rollout.revision === 3 && v.status.updatedReplicas === REPLICAS ? v : undefined;
  }, { what: 'the restart complete' });
  assert.equal(r.status!.templateHash, restarted[0]!.revision);
  assert.deepEqual(r.status!.rollout!.pinned, { revision: 3, reason: 'rollback', failedCommit: bad }, 'still pinned: the failed commit is not retried');
  assert.deepEqual(r.history.map((h) => [h.revision, h.commit, h.current, h.stable, h.failed]), [[1, good, false, false, false], [2, bad, false, false, true], [3, good, true, true, false]]);
  const pin = r.status!.conditions.find((x) => x.type === 'Pinned')!;
  assert.match(pin.message, new RegExp(`^running revision 3 \\(commit ${good.slice(0, 7)}\\): revision 2 \\(commit ${bad.slice(0, 7)}\\) failed`));

  // A newer commit releases the pin and rolls out normally.
  await c.repo.commitFiles({ 'web.yaml': web('v3') }, 'v3');
  await converged('v3');
  const released = await waitFor(async () => ((await rollout()).status?.rollout?.phase === 'Complete' ? rollout() : undefined), { what: 'v3 complete' });
  assert.equal(released.status!.rollout!.pinned, null);
  assert.equal(released.status!.conditions.some((x) => x.type === 'Pinned'), false);
  const status = await gantry('rollout', 'status', 'deployment/web');
  assert.equal(status.code, 0, status.stdout + status.stderr);
  assert.match(status.stdout, /deployment\/web successfully rolled out/);
});
