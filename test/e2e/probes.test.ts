import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { GantryEvent } from '../../state/events.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/**
 * Probes and restarts end to end: a reconciler and two agents as separate processes. The server
 * answers /ready with 200 only once a file `ready` exists in its dir (its cwd), and /healthz with
 * 500 once a file `sick` exists, so the test decides when probes pass.
 */

const SERVER_JS =
  "const fs = require('fs'); require('http').createServer((q, s) => { if (q.url === '/ready') { s.statusCode = fs.existsSync('ready') ? 200 : 503; return s.end(); } if (q.url === '/healthz') { s.statusCode = fs.existsSync('sick') ? 500 : 200; return s.end(); } s.end(process.env.GANTRY_INSTANCE_ID); }).listen(+process.env.PORT)";

const web = (greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 1
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e", "${SERVER_JS}"]
          env: [{ name: GREETING, value: ${greeting} }]
          ports: [{ name: http, containerPort: 8080 }]
          readinessProbe: { httpGet: { path: /ready, port: http }, periodSeconds: 1 }
          livenessProbe: { httpGet: { path: /healthz, port: http }, periodSeconds: 1, failureThreshold: 2 }
`;

const crasher = `apiVersion: apps/v1
kind: Deployment
metadata: { name: crasher }
spec:
  template:
    metadata: { labels: { app: crasher } }
    spec:
      containers:
        - name: main
          command: ["sh", "-c", "exit 1"]
`;

let repo: TestRepo;
let dataDir: string;
let api: string;
const procs: GantryProcess[] = [];

async function get<T>(path: string): Promise<T> {
  return (await (await apiFetch(api + path)).json()) as T;
}
const instances = async (deployment: string) => (await get<{ items: InstanceView[] }>(`/api/v1/instances?deployment=${deployment}`)).items;
const events = async () => (await get<{ items: GantryEvent[] }>('/api/v1/events?limit=1000')).items;
const dirOf = (i: InstanceView) => join(dataDir, 'agents', i.node!, 'instances', i.id);

before(async () => {
  const { url } = await testRedis();
  const prefix = freshPrefix();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-probes-'));
  repo = await createRepo();
  await repo.commitFiles({ 'README.md': 'empty' }, 'empty');
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  procs.push(spawnGantry(['reconciler', '--redis', url, '--prefix', prefix, '--repo', repo.dir, '--port', String(port), '--data-dir', dataDir]));
  for (const node of ['node-1', 'node-2']) {
    procs.push(spawnGantry(['agent', '--node', node, '--redis', url, '--prefix', prefix, '--data-dir', dataDir, '--heartbeat', '500ms', '--stop-instances-on-exit', '--restart-backoff', '300ms', '--restart-backoff-max', '1200ms']));
  }
  await waitFor(async () => {
    const items = await get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === 2 && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a readiness probe keeps an instance unready until it answers 200, and paces a rolling update', async () => {
  await repo.commitFiles({ 'web.yaml': web('hi') }, 'web');
  const first = await waitFor(async () => (await instances('web')).find((i) => i.phase === 'Running'), { what: 'web running' });
  assert.equal(first.ready, false, 'running but not ready while /ready answers 503');
  writeFileSync(join(dirOf(first), 'ready'), '');
  await waitFor(async () => (await instances('web')).find((i) => i.id === first.id && i.ready), { what: 'ready once /ready answers 200' });

  // A new template: the new instance runs but is not ready, so the old one must stay (maxUnavailable 0 of 1).
  await repo.commitFiles({ 'web.yaml': web('hello') }, 'new greeting');
  const fresh = await waitFor(async () => (await instances('web')).find((i) => i.id !== first.id && i.phase === 'Running'), { what: 'new instance running' });
  assert.equal(fresh.ready, false);
  const during = await instances('web');
  assert.ok(during.some((i) => i.id === first.id && i.ready), 'the old instance keeps serving while the new one is not ready');
  writeFileSync(join(dirOf(fresh), 'ready'), '');
  await waitFor(async () => {
    const now = await instances('web');
    return now.length === 1 && now[0]!.id === fresh.id && now[0]!.ready;
  }, { what: 'rollout finished once the new instance is ready' });
});

test('a liveness probe that starts failing restarts the container, with an event', async () => {
  const inst = await waitFor(async () => (await instances('web')).find((i) => i.ready), { what: 'a ready web instance' });
  writeFileSync(join(dirOf(inst), 'sick'), '');
  const restarted = await waitFor(async () => (await instances('web')).find((i) => i.id === inst.id && i.restarts === 1 && i.phase === 'Running'), { what: 'restart after liveness failure' });
  assert.notEqual(restarted.pid, inst.pid);
  const ev = (await events()).find((e) => e.reason === 'LivenessProbeFailed' && e.object === `instance/${inst.id}`);
  assert.ok(ev, 'LivenessProbeFailed event');
  assert.match(ev.message, /Liveness probe of container server failed 2 times: HTTP GET http:\/\/127\.0\.0\.1:\d+\/healthz: status 500/);
});

test('a process that exits non-zero is restarted with growing delays and shows CrashLoopBackOff', async () => {
  await repo.commitFiles({ 'crasher.yaml': crasher }, 'crasher');
  const looping = await waitFor(async () => (await instances('crasher')).find((i) => i.reason === 'CrashLoopBackOff' && i.restarts >= 3), { what: 'CrashLoopBackOff after 3 restarts' });
  assert.equal(looping.phase, 'Failed');
  assert.match(looping.message!, /^back-off \d+(\.\d+)?m?s restarting failed container main \(exit code 1, \d+ restarts\)$/);
  const restarts = (await events()).filter((e) => e.reason === 'Restarted' && e.object === `instance/${looping.id}`).sort((a, b) => a.time - b.time);
  const backoffs = (await events()).filter((e) => e.reason === 'BackOff' && e.object === `instance/${looping.id}`);
  assert.ok(restarts.length >= 3 && backoffs.length >= 2, `${restarts.length} Restarted, ${backoffs.length} BackOff events`);
  // 0 s, 300 ms, 600 ms, 1200 ms: each gap between restarts at least the previous back-off.
  const gaps = restarts.slice(1).map((e, i) => e.time - restarts[i]!.time);
  assert.ok(gaps[0]! >= 250 && gaps[1]! >= 550, `gaps ${gaps.join(', ')} ms`);
  assert.ok(gaps[1]! > gaps[0]!, `delays grow: ${gaps.join(', ')} ms`);
});
