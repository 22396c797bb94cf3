import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { InstanceView } from '../../reconciler/api/views.ts';
import { pidAlive } from '../helpers/agent-fixtures.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * `gantry delete instance` through the real binary against a reconciler and two agent processes:
 * the instance stops (at once with --grace-period 0 --force, although it ignores SIGTERM and its
 * pod gives it 60 s), its deployment replaces it, and misuse is refused. Then `describe node` and
 * `describe service` of the same cluster.
 */

// Ignores SIGTERM: only a kill stops it before its 60 s of grace.
const web = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 2
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 60
      containers:
        - name: server
          command: ["node", "-e", "process.on('SIGTERM', () => {}); require('http').createServer((q, s) => s.end('ok')).listen(+process.env.PORT)"]
          ports: [{ name: http, containerPort: 8080 }]
          resources: { cpu: 50m, memory: 16Mi }
`;

const svc = `apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: NodePort
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: http }]
`;

let c: TestCluster;

before(async () => {
  c = await startCluster({ files: { 'web.yaml': web, 'svc.yaml': svc } });
});

after(async () => {
  await c?.stop();
});

const running = async (): Promise<InstanceView[] | undefined> => {
  const all = await c.instances();
  return all.length === 2 && all.every((i) => i.phase === 'Running' && i.pid) ? all : undefined;
};

test('delete instance --grace-period 0 --force kills it at once and the deployment replaces it', async () => {
  const before = await waitFor(running, { timeoutMs: 30_000, what: '2 running instances' });
  const victim = before[0]!;
  const r = await runGantry(['delete', 'instance', victim.id, '--grace-period', '0', '--force', '--api', c.api]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^instance ${victim.id.replace(/\./g, '\\.')} deleted \\(stopping on node-\\d, grace period 0 s\\)`));
  // Killed, not waited for: well within its 60 s of grace.
  await waitFor(() => !pidAlive(victim.pid!), { timeoutMs: 10_000, what: `pid ${victim.pid} gone` });
  const after = await waitFor(async () => {
    const now = await running();
    // The replacement may take the same id (same revision and ordinal): it is a new process.
    return now && !now.some((i) => i.pid === victim.pid) ? now : undefined;
  }, { timeoutMs: 30_000, what: 'a replacement running' });
  assert.equal(after.length, 2);
  assert.ok(after.some((i) => i.id === before[1]!.id && i.pid === before[1]!.pid), 'the other instance was left alone');
  const events = await runGantry(['events', '--for', 'deployment/web', '--api', c.api]);
  assert.match(events.stdout, new RegExp(`instance ${victim.id.replace(/\./g, '\\.')} deleted on request, grace period 0 s`));
});

test('misuse is refused: --grace-period 0 without --force, a bad value, another kind, an unknown instance', async () => {
  for (const args of [['delete', 'instance', 'x', '--grace-period', '0'], ['delete', 'instance', 'x', '--grace-period', 'soon'], ['delete', 'node', 'x']]) {
    const r = await runGantry([...args, '--api', c.api]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  const missing = await runGantry(['delete', 'instance', 'default.nope-0123456789-0', '--api', c.api]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /not found/);
  // A read token may not delete.
  const read = await runGantry(['delete', 'instance', 'default.nope-0123456789-0', '--api', c.api], { env: { GANTRY_TOKEN: process.env.GANTRY_API_READ_TOKEN } });
  assert.equal(read.code, 1);
  assert.match(read.stderr, /admin/);
});

test('describe node and describe service: fields, allocation, instances, endpoints, conditions, events', async () => {
  const live = await waitFor(running, { timeoutMs: 30_000, what: '2 running instances' });
  const node = live[0]!.node!;
  const n = await runGantry(['describe', 'node', node, '--api', c.api]);
  assert.equal(n.code, 0, n.stderr);
  assert.match(n.stdout, new RegExp(`^Name: +${node}\\nState: +Ready\\n`));
  assert.match(n.stdout, /\nAllocated resources:\n {2}Resource +Requests +Capacity +Percent\n {2}cpu +\d+m +\d+m +\d+%\n {2}memory +/);
  assert.match(n.stdout, new RegExp(`\\n {2}${live[0]!.id.replace(/\./g, '\\.')} +Running +True`));
  assert.match(n.stdout, /\nEvents:/);
  const s = await waitFor(async () => {
    const r = await runGantry(['describe', 'service', 'web', '--api', c.api]);
    return r.code === 0 && (r.stdout.match(/\(default\.web-/g) ?? []).length === 2 ? r : undefined;
  }, { timeoutMs: 15_000, what: 'the service with 2 endpoints' });
  assert.match(s.stdout, /^Name: +web\nNamespace: +default\nType: +NodePort\n/);
  assert.match(s.stdout, /\nPorts: +http 80\/TCP -> http \(nodePort \d+\)\n/);
  assert.match(s.stdout, /\nConditions:/);
  const missing = await runGantry(['describe', 'service', 'nope', '--api', c.api]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /service "default\/nope" not found/);
});
