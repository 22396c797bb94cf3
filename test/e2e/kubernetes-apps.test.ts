import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { freePort } from '../../cli/redis-server.ts';
import type { DeploymentView, InstanceView, NodeView } from '../../reconciler/api/views.ts';
import type { ServiceView } from '../../reconciler/services/service-views.ts';
import type { SourceStatus } from '../../state/records/status.ts';
import { apiFetch } from '../helpers/api-auth.ts';
import { startCluster, type TestCluster } from '../helpers/cluster.ts';
import { docker, dockerTest, dockerUnavailable, gantryContainers, podSandboxes, removeContainersWithLabels } from '../helpers/docker.ts';
import { runGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The acceptance test of "Kubernetes manifests as they are": a folder of manifests written for
 * Kubernetes (test/fixtures/kubernetes-apps: Namespace, ConfigMaps, a Secret, a ServiceAccount,
 * Deployments with selectors, strategies, probes, requests/limits, securityContext, affinity,
 * tolerations..., ClusterIP Services) validates with warnings for what Gantry ignores, and a
 * commit of it runs: every deployment ready, every Service answering through the agents' proxies
 * with the values the ConfigMaps and the Secret gave the servers. The Docker folder runs the
 * servers in containers of the test image, each listening on its own containerPort; the
 * processes folder (kubernetes-apps-processes) runs the same applications as `node -e` processes
 * listening on $PORT_<NAME>. Then the errors: a misspelled field and a custom resource reject a
 * commit, and a .gantryignore makes the custom resource a skipped file.
 */

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const DOCKER_DIR = join(FIXTURES, 'kubernetes-apps');
const PROCESS_DIR = join(FIXTURES, 'kubernetes-apps-processes');
const NS = 'storefront';

/** Every file of a fixture folder, by path relative to it, as committed. */
function readFolder(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

// What the servers are expected to answer, from the fixture's own ConfigMaps and Secret.
const [sharedConfig, frontendEnv] = readFileSync(join(PROCESS_DIR, 'configmaps.yaml'), 'utf8').split(/^---$/m).map((d) => parse(d) as { data: Record<string, string> });
const secret = parse(readFileSync(join(PROCESS_DIR, 'secret.yaml'), 'utf8')) as { data: Record<string, string>; stringData: Record<string, string> };
const DB_PASSWORD = Buffer.from(secret.data['db-password']!, 'base64').toString('utf8');
const API_TOKEN = secret.stringData['api-token']!;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const EXPECTED_API = {
  service: 'api',
  release: sharedConfig!.data.release,
  logLevel: sharedConfig!.data['log.level'],
  dbPasswordSha256: sha256(DB_PASSWORD),
  apiTokenSha256: sha256(API_TOKEN),
};
const SECRET_TEXTS = [DB_PASSWORD, API_TOKEN, secret.data['db-password']!];
const REPLICAS: Record<string, number> = { api: 2, frontend: 2, store: 1, worker: 1 };
/** The containerPort each server listens on, and the port name a Service may target. */
const CONTAINER_PORTS: Record<string, { name: string; containerPort: number }> = {
  frontend: { name: 'http', containerPort: 8080 },
  api: { name: 'http', containerPort: 3000 },
  store: { name: 'redis', containerPort: 6379 },
};

// `gantry validate`'s warnings, exactly: the ServiceAccount, and every field Gantry ignores at its key.
const field = (file: string, line: number, column: number, name: string, pointer: string) =>
  `warning: ${file}:${line}:${column} Deployment ${NS}/${name} ${pointer}: ignored: Gantry does not implement ${pointer}`;
const POD = '/spec/template/spec';
const SERVICE_ACCOUNT = `warning: serviceaccount.yaml:1:1 ServiceAccount ${NS}/api: ignored: Gantry does not run ServiceAccount (v1); the object is listed, not applied`;
function expectedWarnings(containerLines: { api: number; frontend: number; worker: number }): string[] {
  return [
    field('api.yaml', 28, 7, 'api', `${POD}/serviceAccountName`),
    field('api.yaml', 29, 7, 'api', `${POD}/securityContext`),
    field('api.yaml', 33, 7, 'api', `${POD}/tolerations`),
    field('api.yaml', containerLines.api, 11, 'api', `${POD}/containers/0/securityContext`),
    field('frontend.yaml', 28, 7, 'frontend', `${POD}/securityContext`),
    field('frontend.yaml', 31, 7, 'frontend', `${POD}/affinity`),
    field('frontend.yaml', containerLines.frontend, 11, 'frontend', `${POD}/containers/0/securityContext`),
    SERVICE_ACCOUNT,
    field('store.yaml', 29, 7, 'store', `${POD}/securityContext`),
    field('store.yaml', 32, 7, 'store', `${POD}/affinity`),
    field('worker.yaml', 31, 7, 'worker', `${POD}/tolerations`),
    field('worker.yaml', containerLines.worker, 11, 'worker', `${POD}/containers/0/securityContext`),
  ];
}
const VALID = 'valid: 1 Namespace, 2 ConfigMaps, 1 Secret, 4 Deployments, 3 Services (1 ignored, 11 ignored fields)\n';

/**
 * The folder with each Service's `port` replaced by a free one (only the Service documents; targetPorts
 * stay): the fixture says 80, 8080 and 6379, which other suites' proxies or the host may hold.
 */
function withServicePorts(files: Record<string, string>, ports: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [path, text] of Object.entries(files)) {
    out[path] = text
      .split(/^---$/m)
      .map((doc) => {
        const name = /^kind: Service$/m.test(doc) ? /^metadata:\n(?:\s.*\n)*?\s+name: (\S+)$/m.exec(doc)?.[1] : undefined;
        if (!name) return doc;
        assert.ok(ports[name], `a free port for Service ${name}`);
        return doc.replace(/^(\s+(?:- )?)port: \d+$/gm, `$1port: ${ports[name]}`);
      })
      .join('---');
  }
  return out;
}

/** One GET on a fresh connection. */
function httpGet(host: string, port: number, path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error(`timeout calling ${host}:${port}${path}`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Talks the store's line protocol: sends the lines and reads one answer line per line, then
 * closes, as a Redis client does. `halfClose`: sends the lines and FIN at once and reads until the
 * server closes, as `printf 'PING\r\n' | nc -N store 6379` does.
 */
function storeCall(host: string, port: number, lines: string[], opts: { halfClose?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const payload = lines.map((l) => `${l}\r\n`).join('');
    const s = connect({ host, port }, () => (opts.halfClose ? s.end(payload) : s.write(payload)));
    let out = '';
    s.setTimeout(5_000, () => s.destroy(new Error(`timeout talking to ${host}:${port}: got ${JSON.stringify(out)}`)));
    s.on('data', (d) => {
      out += d;
      if (!opts.halfClose && out.split('\n').length > lines.length) s.end();
    });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

/** A Gantry cluster of two agents, each on its own loopback address (two hosts' proxies), for one variant. */
interface Variant {
  c: TestCluster;
  addresses: string[];
  ports: Record<string, number>;
}

async function startVariant(nodes: Record<string, string>): Promise<Variant> {
  const c = await startCluster({ nodes: [], reconcilerFlags: ['--resync', '2s'] });
  for (const [node, address] of Object.entries(nodes)) c.startAgent(node, ['--address', address]);
  await waitFor(async () => {
    const items = await c.get<{ items: NodeView[] }>('/api/v1/nodes').then((r) => r.items, () => []);
    return items.length === Object.keys(nodes).length && items.every((n) => n.ready);
  }, { timeoutMs: 30_000, what: 'two ready nodes' });
  return { c, addresses: Object.values(nodes), ports: { frontend: await freePort(), api: await freePort(), store: await freePort() } };
}

const sourceStatus = async (c: TestCluster) => (await c.get<{ source: SourceStatus | null }>('/api/v1/status')).source;

/** Commits and waits until the reconciler has looked at that commit: applied, or rejected with its errors. */
async function commit(c: TestCluster, files: Record<string, string | null>, message: string): Promise<{ sha: string; source: SourceStatus }> {
  const sha = await c.repo.commitFiles(files, message);
  const source = await waitFor(async () => {
    const s = await sourceStatus(c);
    return s && (s.lastAppliedCommit === sha || s.rejectedCommit === sha) ? s : undefined;
  }, { timeoutMs: 30_000, what: `commit ${sha.slice(0, 7)} (${message}) applied or rejected` });
  return { sha, source };
}

const SERVED = ['api', 'frontend', 'store'];

/**
 * The deployments behind the Services with all their replicas ready. 60 s: a loaded machine starts
 * things slowly. The worker is waited for on its own (workerReady), so that a worker that cannot be
 * placed fails that check, not every other one.
 */
async function servedReady(c: TestCluster): Promise<DeploymentView[]> {
  return waitFor(async () => {
    const ds = (await c.get<{ items: DeploymentView[] }>(`/api/v1/deployments?namespace=${NS}`)).items;
    const ok = ds.length === 4 && ds.every((d) => d.replicas === REPLICAS[d.name]) && ds.filter((d) => SERVED.includes(d.name)).every((d) => d.ready === d.replicas);
    return ok ? ds : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200, what: `api 2/2, frontend 2/2, store 1/1 ready in ${NS}` }).catch(async (err) => {
    // Say what is in the way: the instances' phases and reasons.
    const insts = await c.instances().catch(() => [] as InstanceView[]);
    throw new Error(`${(err as Error).message}; instances: ${insts.map((i) => `${i.id} ${i.node ?? '-'} ${i.phase} ready=${i.ready} ${i.reason ?? ''} ${i.message ?? ''}`).join(' | ')}`);
  });
}

/**
 * The worker (1 replica, no ports) placed and ready. It selects `kubernetes.io/os: linux`, as
 * sock-shop and many charts do: a label the kubelet sets on every node. Fails as soon as the
 * scheduler has said it fits nowhere, rather than after the whole wait.
 */
async function workerReady(c: TestCluster): Promise<InstanceView> {
  const w = await waitFor(async () => {
    const [i] = await instancesOf(c, 'worker');
    return i && ((i.phase === 'Running' && i.ready) || i.reason === 'Unschedulable') ? i : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200, what: 'the worker running or unschedulable' });
  assert.equal(w.reason === 'Unschedulable' ? `${w.reason}: ${w.message}` : w.phase, 'Running', 'the worker selects kubernetes.io/os: linux, a label every Kubernetes node has');
  const [d] = (await c.get<{ items: DeploymentView[] }>(`/api/v1/deployments?namespace=${NS}`)).items.filter((x) => x.name === 'worker');
  assert.equal(d?.ready, 1);
  return w;
}

const instancesOf = async (c: TestCluster, deployment: string) => (await c.get<{ items: InstanceView[] }>(`/api/v1/instances?namespace=${NS}&deployment=${deployment}`)).items;

/** Each Service, through each agent's proxy: the page, the api's JSON, the store's answers. */
async function assertServicesAnswer(v: Variant): Promise<void> {
  for (const address of v.addresses) {
    // Ready is not yet listening through every proxy: wait for the first good answer, then check it.
    const page = await waitFor(async () => {
      const r = await httpGet(address, v.ports.frontend!);
      return r.status === 200 ? r.body : undefined;
    }, { timeoutMs: 30_000, what: `frontend through ${address}:${v.ports.frontend}` });
    const { SITE_TITLE, WELCOME_MESSAGE, THEME } = frontendEnv!.data;
    assert.match(page, new RegExp(`<title>${SITE_TITLE}</title>`));
    assert.ok(page.includes(`<h1>${SITE_TITLE}</h1><p>${WELCOME_MESSAGE}</p><p>theme: ${THEME}</p>`), page);

    const api = await waitFor(async () => {
      const r = await httpGet(address, v.ports.api!);
      return r.status === 200 ? r.body : undefined;
    }, { timeoutMs: 30_000, what: `api through ${address}:${v.ports.api}` });
    assert.deepEqual(JSON.parse(api), EXPECTED_API);
    for (const s of SECRET_TEXTS) assert.ok(!api.includes(s), 'the api shows a hash of the secret, never the secret');

    const store = await waitFor(async () => {
      const r = await storeCall(address, v.ports.store!, ['PING', 'GET motd', 'GET nothing']);
      return r.includes('+PONG') ? r : undefined;
    }, { timeoutMs: 30_000, what: `store through ${address}:${v.ports.store}` });
    assert.equal(store, `+PONG\n+${sharedConfig!.data['store.motd']}\n-ERR no such key\n`);
  }
  // The endpoints reached the ready instances on the port each targetPort names (by name or number).
  const services = (await v.c.get<{ items: ServiceView[] }>(`/api/v1/services?namespace=${NS}`)).items;
  assert.deepEqual(services.map((s) => s.name).sort(), ['api', 'frontend', 'store']);
  for (const s of services) {
    assert.deepEqual(s.listen, [v.ports[s.name]], `${s.name} listens on its port`);
    assert.equal(s.endpoints.length, REPLICAS[s.name], `${s.name} endpoints`);
    assert.deepEqual(s.conditions.filter((x) => x.status === 'True' && x.type !== 'EndpointsReady'), [], `${s.name} conditions`);
  }
}

/** The worker logs its queue (a ConfigMap key) under its pod name and node ($(VAR) from fieldRefs). */
async function assertWorkerLogs(v: Variant): Promise<void> {
  const w = await workerReady(v.c);
  const want = `worker ${w.id.slice(NS.length + 1)} on ${w.node}: polling queue ${sharedConfig!.data['worker.queue']}`;
  const logs = await waitFor(async () => {
    const res = await apiFetch(`${v.c.api}/api/v1/instances/${w.id}/logs?tail=5`);
    const text = res.status === 200 ? await res.text() : '';
    return text.includes(want) ? text : undefined;
  }, { timeoutMs: 20_000, what: `worker logs "${want}"` });
  assert.ok(logs.split('\n').filter(Boolean).every((l) => l === want), logs);
}

/**
 * Half-closing clients (`echo PING | nc -N`, ZooKeeper's `echo ruok | nc`...) get their answers
 * through a Kubernetes Service: kube-proxy's NAT keeps TCP's half-close. First directly to an
 * instance's host port (the server is fine), then through each agent's proxy.
 */
async function assertHalfClose(v: Variant): Promise<void> {
  const want = `+PONG\n+${sharedConfig!.data['store.motd']}\n`;
  const [i] = await instancesOf(v.c, 'store');
  assert.equal(await storeCall(i!.hostIP!, i!.ports[0]!.hostPort, ['PING', 'GET motd'], { halfClose: true }), want, 'directly to the instance');
  for (const address of v.addresses) assert.equal(await storeCall(address, v.ports.store!, ['PING', 'GET motd'], { halfClose: true }), want, `through ${address}:${v.ports.store}`);
}

/** Nothing the API says holds a secret value. */
async function assertNoSecretInApi(c: TestCluster): Promise<void> {
  for (const path of ['/api/v1/status', `/api/v1/deployments?namespace=${NS}`, `/api/v1/instances?namespace=${NS}`, '/api/v1/events?limit=1000']) {
    const text = await (await apiFetch(c.api + path)).text();
    for (const s of SECRET_TEXTS) assert.ok(!text.includes(s), `${path} shows a secret value`);
  }
}

/** The commit applied (not rejected), with the ServiceAccount listed among its warnings. */
function assertApplied(source: SourceStatus, sha: string): void {
  assert.equal(source.rejectedCommit, undefined, `rejected: ${source.errors?.join('\n')}`);
  assert.equal(source.lastAppliedCommit, sha);
  assert.ok(source.warnings?.includes(SERVICE_ACCOUNT.slice('warning: '.length)), JSON.stringify(source.warnings));
  assert.equal(source.warningCount, 12);
}

test('gantry validate accepts both folders: the counts on stdout; the ServiceAccount and the ignored fields, at their file:line, on stderr', async () => {
  for (const [dir, lines] of [
    [DOCKER_DIR, { api: 96, frontend: 81, worker: 69 }],
    [PROCESS_DIR, { api: 98, frontend: 83, worker: 66 }],
  ] as const) {
    const r = await runGantry(['validate', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, VALID);
    assert.deepEqual(r.stderr.trimEnd().split('\n'), expectedWarnings(lines), dir);
  }
});

describe('the processes folder on two agents', () => {
  let v: Variant;
  let applied: string;

  before(async () => {
    v = await startVariant({ 'node-1': '127.0.0.31', 'node-2': '127.0.0.32' });
  });
  after(async () => {
    if (process.env.GANTRY_TEST_VERBOSE) console.log([v?.c.reconciler, ...(v?.c.agents.values() ?? [])].map((p) => p?.output()).join('\n'));
    await v?.c.stop();
  });

  test('a commit of the folder runs: all deployments ready, each Service answers through either agent with its ConfigMap values, the api proves the Secret without showing it', async () => {
    const { sha, source } = await commit(v.c, withServicePorts(readFolder(PROCESS_DIR), v.ports), 'storefront, as written for Kubernetes');
    assertApplied(source, sha);
    applied = sha;
    await servedReady(v.c);
    // Two replicas each of frontend and api: spread over both nodes.
    for (const d of ['frontend', 'api']) assert.equal(new Set((await instancesOf(v.c, d)).map((i) => i.node)).size, 2, `${d} on both nodes`);
    await assertServicesAnswer(v);
    await assertNoSecretInApi(v.c);
  });

  test('the worker, which selects kubernetes.io/os: linux, runs and logs its queue (a ConfigMap key) under its pod and node names', async () => {
    await assertWorkerLogs(v);
  });

  test('a store client that half-closes (printf PING | nc -N) gets its answers through the proxy', async () => {
    await assertHalfClose(v);
  });

  test('a misspelled field rejects the commit with file:line and "did you mean"; what runs stays as it was', async () => {
    const before = (await v.c.instances()).map((i) => i.id).sort();
    const files = readFolder(PROCESS_DIR);
    const typo = files['api.yaml']!.replace(/^ {2}replicas: 2$/m, '  replcias: 2');
    assert.notEqual(typo, files['api.yaml']);
    const { sha, source } = await commit(v.c, { 'api.yaml': typo }, 'api: typo');
    assert.equal(source.rejectedCommit, sha);
    assert.equal(source.lastAppliedCommit, applied);
    assert.deepEqual(source.errors, [`api.yaml:11:3 Deployment ${NS}/api /spec: unknown field "replcias": Kubernetes does not define it here (did you mean "replicas"?)`]);
    assert.equal(source.errorCount, 1);
    await servedReady(v.c);
    assert.deepEqual((await v.c.instances()).map((i) => i.id).sort(), before);
  });

  test('a custom resource (an Argo Rollout) rejects the commit; listed in .gantryignore it is skipped and the commit applies', async () => {
    const before = (await v.c.instances()).map((i) => i.id).sort();
    const rollout = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: frontend
  namespace: ${NS}
spec:
  replicas: 2
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app.kubernetes.io/name: frontend
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: frontend
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: { duration: 1h }
`;
    // The typo fixed in the same commit: the custom resource is its only error.
    const files = readFolder(PROCESS_DIR);
    const rejected = await commit(v.c, { 'api.yaml': withServicePorts(files, v.ports)['api.yaml']!, 'argo/frontend-rollout.yaml': rollout }, 'an Argo Rollout');
    assert.equal(rejected.source.rejectedCommit, rejected.sha);
    assert.equal(rejected.source.lastAppliedCommit, applied);
    assert.deepEqual(rejected.source.errors, [
      `argo/frontend-rollout.yaml:2:7 Rollout ${NS}/frontend /kind: Rollout (argoproj.io/v1alpha1) is not a kind Kubernetes defines (a typo, or a custom resource Gantry cannot run); list its file in .gantryignore, or annotate the object gantry.dev/skip: "true", to have Gantry skip it`,
    ]);

    const ok = await commit(v.c, { '.gantryignore': '# Argo Rollouts: applied by Argo CD, not by Gantry\nargo/\n' }, 'ignore argo/');
    assert.equal(ok.source.rejectedCommit, undefined, `rejected: ${ok.source.errors?.join('\n')}`);
    assert.equal(ok.source.lastAppliedCommit, ok.sha);
    const status = await v.c.get<{ source: SourceStatus }>('/api/v1/status');
    assert.ok(status.source.warnings?.includes('argo/frontend-rollout.yaml:1:1: skipped: matches "argo/" in .gantryignore'), JSON.stringify(status.source.warnings));
    assert.ok(status.source.warnings?.includes(SERVICE_ACCOUNT.slice('warning: '.length)));
    assert.equal(status.source.warningCount, 13);
    // Nothing that runs changed: the same instances, all ready, still answering.
    await servedReady(v.c);
    assert.deepEqual((await v.c.instances()).map((i) => i.id).sort(), before);
    assert.deepEqual(JSON.parse((await httpGet(v.addresses[0]!, v.ports.api!)).body), EXPECTED_API);
  });
});

// Node names of their own: other suites' agents share the engine, and containers are found by node.
const tag = randomUUID().slice(0, 6);
const DOCKER_NODES = { [`k8s-${tag}-a`]: '127.0.0.33', [`k8s-${tag}-b`]: '127.0.0.34' };

describe('the Docker folder on two agents with an engine', () => {
  let v: Variant | undefined;

  before(async () => {
    if (dockerUnavailable) return;
    v = await startVariant(DOCKER_NODES);
  });
  after(async () => {
    if (process.env.GANTRY_TEST_VERBOSE) console.log([v?.c.reconciler, ...(v?.c.agents.values() ?? [])].map((p) => p?.output()).join('\n'));
    // Agents stop their containers on the way out; the label sweep catches anything a failure left.
    await v?.c.stop();
    for (const node of Object.keys(DOCKER_NODES)) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
  });

  dockerTest('a commit of the folder runs in containers: all deployments ready, each Service answers through either agent, the api proves the Secret without showing it', async () => {
    const { sha, source } = await commit(v!.c, withServicePorts(readFolder(DOCKER_DIR), v!.ports), 'storefront in containers');
    assertApplied(source, sha);
    await servedReady(v!.c);
    const nodes = (await v!.c.get<{ items: NodeView[] }>('/api/v1/nodes')).items;
    assert.ok(nodes.every((n) => n.runtimes.includes('docker')), 'both nodes offer docker');
    await assertServicesAnswer(v!);
    await assertNoSecretInApi(v!.c);
  });

  dockerTest('the worker, which selects kubernetes.io/os: linux, runs and logs its queue (a ConfigMap key) under its pod and node names', async () => {
    await assertWorkerLogs(v!);
  });

  dockerTest('a store client that half-closes (printf PING | nc -N) gets its answers through the proxy', async () => {
    await assertHalfClose(v!);
  });

  dockerTest('a container reaches another Service at the $API_SERVICE_HOST:$API_SERVICE_PORT it is given, as a pod does', async () => {
    const [i] = await instancesOf(v!.c, 'frontend');
    const [c] = await gantryContainers(i!.node!, i!.id);
    const env = await run('docker', ['exec', c!.Id, 'env']);
    assert.match(env, new RegExp(`^API_SERVICE_PORT=${v!.ports.api}$`, 'm'));
    // The frontend calling the api through its Service, from inside its container.
    const inside = (script: string) => run('docker', ['exec', c!.Id, 'sh', '-c', script]);
    // busybox's wget crashes when it cannot connect: nc says why.
    const answer = await inside('wget -qO- "http://$API_SERVICE_HOST:$API_SERVICE_PORT/"').catch(async () =>
      inside('echo "cannot reach $API_SERVICE_HOST:$API_SERVICE_PORT from inside the container:"; nc -w 3 "$API_SERVICE_HOST" "$API_SERVICE_PORT" </dev/null 2>&1; true'),
    );
    assert.deepEqual(answer.startsWith('{') ? JSON.parse(answer) : answer, EXPECTED_API);
  });

  dockerTest('each server listens on its own containerPort inside its container; Docker maps the reported host port to it', async () => {
    for (const [deployment, { name, containerPort }] of Object.entries(CONTAINER_PORTS)) {
      for (const i of await instancesOf(v!.c, deployment)) {
        assert.deepEqual(i.ports, [{ name, containerPort, hostPort: i.ports[0]!.hostPort }], `${i.id} ports`);
        const [c] = await gantryContainers(i.node!, i.id);
        assert.ok(c, `a container for ${i.id}`);
        // The pod's ports are published once, on its sandbox, whose network the container joins.
        const [sandbox] = await podSandboxes(i.node!, i.id);
        assert.ok(sandbox, `a sandbox for ${i.id}`);
        assert.equal((await docker.getContainer(c.Id).inspect()).HostConfig.NetworkMode, `container:${sandbox.Id}`);
        const info = await docker.getContainer(sandbox.Id).inspect();
        assert.deepEqual(Object.keys(info.Config.ExposedPorts ?? {}), [`${containerPort}/tcp`]);
        assert.deepEqual(info.HostConfig.PortBindings, { [`${containerPort}/tcp`]: [{ HostIp: DOCKER_NODES[i.node!], HostPort: String(i.ports[0]!.hostPort) }] });
        assert.deepEqual(info.NetworkSettings.Ports[`${containerPort}/tcp`]?.map((p) => p.HostPort), [String(i.ports[0]!.hostPort)]);
        // And inside, the server really listens there (not on the host port, not on $PORT by chance).
        const listening = await run('docker', ['exec', c.Id, 'busybox', 'netstat', '-ltn']);
        assert.match(listening, new RegExp(`^tcp\\s+\\d+\\s+\\d+\\s+\\S*:${containerPort}\\s+\\S+\\s+LISTEN`, 'm'), `${i.id}: ${listening}`);
        if (deployment !== 'store') {
          const inside = await run('docker', ['exec', c.Id, 'wget', '-qO-', `http://127.0.0.1:${containerPort}/`]);
          assert.equal(inside, (await httpGet(DOCKER_NODES[i.node!]!, i.ports[0]!.hostPort)).body);
        }
      }
    }
  });
});
