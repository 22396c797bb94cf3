import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { startReconciler, type ReconcilerHandle } from '../../reconciler/reconciler.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { startGitHttpServer, type GitHttpServer } from '../helpers/git-http-server.ts';
import { runGantry, spawnGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { apiFetch } from '../helpers/api-auth.ts';

/**
 * The `gantry` client commands against a reconciler that follows a remote repository over real
 * smart HTTP (git http-backend), with a token that must never show.
 */

const TOKEN = 's3cret-token-value';
const web = (replicas: number) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: main
          command: ["sleep", "1000"]
`;

let repo: TestRepo;
let server: GitHttpServer;
let rec: ReconcilerHandle;
let dataDir: string;
let redisUrl: string;
const prefix = freshPrefix();
const logs: string[] = [];

before(async () => {
  const { url } = await testRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-cli-'));
  repo = await createRepo({ bare: true });
  await repo.commitFiles({ 'web.yaml': web(1) }, 'web');
  server = await startGitHttpServer({ projectRoot: dirname(repo.dir), token: TOKEN });
  process.env.CLI_TEST_GIT_TOKEN = TOKEN;
  redisUrl = url;
  rec = await startReconciler({
    redisUrl: url,
    prefix,
    // An hour between polls: only `gantry sync` (or the API) fetches in this test.
    source: { repo: `${server.url}/${basename(repo.dir)}`, branch: 'main', subPath: '.', dataDir, pollIntervalMs: 3_600_000, tokenEnv: 'CLI_TEST_GIT_TOKEN' },
    apiPort: 0,
    resyncMs: 60_000,
    log: (l) => logs.push(l),
  });
});

after(async () => {
  await rec?.stop();
  await server?.close();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const gantry = (...args: string[]) => runGantry([...args, '--api', rec.url]);

test('get prints tables, JSON and YAML from the API', async () => {
  const table = await gantry('get', 'deployments');
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAMESPACE\s+NAME\s+READY/);
  assert.match(table.stdout, /\ndefault\s+web\s+0\/1/);
  const json = await gantry('get', 'deployments', '-o', 'json');
  const parsed = JSON.parse(json.stdout) as { items: { name: string; replicas: number }[] };
  assert.deepEqual(parsed.items.map((d) => [d.name, d.replicas]), [['web', 1]]);
  const yaml = await gantry('get', 'instances', '-o', 'yaml');
  assert.match(yaml.stdout, /id: default\.web-[0-9a-f]{10}-0/);
  const none = await gantry('get', 'nodes');
  assert.equal(none.stdout.trim(), 'No nodes found.');
  const other = await gantry('get', 'instances', '-n', 'elsewhere');
  assert.equal(other.stdout.trim(), 'No instances found.');
});

test('diff shows what the branch head would change; sync applies it; the token never shows', async () => {
  await repo.commitFiles({ 'web.yaml': web(2) }, 'scale web');
  const diff = await gantry('diff');
  // Exit codes as gantry plan's: 2 means there are changes.
  assert.equal(diff.code, 2, diff.stderr);
  assert.match(diff.stdout, /: \+0 ~1 -0\n~ Deployment default\/web: 1 instance\(s\) created, replicas: 1 -> 2\n$/);
  const sync = await gantry('sync');
  assert.equal(sync.code, 0, sync.stderr);
  assert.match(sync.stdout, /applied \(\+0 ~1 -0\)/);
  const again = await gantry('diff');
  assert.match(again.stdout, /no changes/);
  const status = await (await apiFetch(`${rec.url}/api/v1/status`)).text();
  for (const text of [status, diff.stdout, sync.stdout, logs.join('\n')]) assert.ok(!text.includes(TOKEN), 'token leaked');
});

test('sync of an invalid commit exits 1 with file:line errors', async () => {
  await repo.commitFiles({ 'web.yaml': web(2).replace('replicas: 2', 'replicas: -1') }, 'bad');
  const sync = await gantry('sync');
  assert.equal(sync.code, 1);
  assert.match(sync.stderr, /web\.yaml:6:13 Deployment default\/web \/spec\/replicas: must be >= 0/);
  // Asked again (the README's walkthrough, where the watcher has looked first): still rejected, same errors.
  const again = await gantry('sync');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /rejected:\n  web\.yaml:6:13 Deployment default\/web \/spec\/replicas: must be >= 0/);
  const diff = await gantry('diff');
  assert.equal(diff.code, 1);
});

test('validate: exit 0 on examples-repo, 1 with file:line on errors', async () => {
  const ok = await runGantry(['validate', 'examples-repo']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'valid: 1 Namespace, 2 ConfigMaps, 3 Deployments, 2 Services');
  const dir = join(dataDir, 'bad');
  mkdirSync(join(dir, 'apps'), { recursive: true });
  writeFileSync(join(dir, 'apps', 'web.yaml'), web(1).replace('replicas: 1', 'replicaz: 1'));
  const bad = await runGantry(['validate', dir]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^apps\/web\.yaml:6:3 Deployment default\/web \/spec: unknown field "replicaz": Kubernetes does not define it here \(did you mean "replicas"\?\)\n/);
});

test('usage errors exit 2 with a one-line message; failures exit 1', async () => {
  for (const args of [['frob'], ['get', 'frobs'], ['agent', '--node', 'BAD_NAME'], ['agent', '--node', 'n1', '--cpu', 'lots'], ['agent', '--node', 'n1', '--labels', 'novalue'], ['reconciler'], ['get', 'nodes', '-o', 'xml'], ['--log-format', 'xml', 'version'], ['--log-level', 'loud', 'version']]) {
    const r = await runGantry(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')} printed more than one line: ${r.stderr}`);
    assert.match(r.stderr, /^error: /);
  }
  const down = await runGantry(['get', 'nodes', '--api', 'http://127.0.0.1:1']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error: cannot reach the Gantry API at http:\/\/127\.0\.0\.1:1/);
  const version = await runGantry(['version']);
  assert.match(version.stdout, /^gantry \d+\.\d+\.\d+/);
});

test('--log-format json: every line of a component is one JSON object with level, time, component and msg; --log-level drops what is below', async () => {
  const agentDir = mkdtempSync(join(tmpdir(), 'gantry-cli-agent-'));
  const nodes = async () => ((await (await apiFetch(`${rec.url}/api/v1/nodes`)).json()) as { items: { name: string }[] }).items.map((n) => n.name);
  try {
    const json = spawnGantry(['--log-format', 'json', 'agent', '--node', 'json-node', '--redis', redisUrl, '--prefix', prefix, '--data-dir', agentDir, '--heartbeat', '1s']);
    await waitFor(() => json.output().includes('registered'), { what: 'the agent registered', timeoutMs: 20_000 });
    await json.stop();
    const lines = json.output().trim().split('\n');
    assert.ok(lines.length >= 2, json.output());
    for (const line of lines) {
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.ok(['debug', 'info', 'warn', 'error'].includes(String(o.level)), line);
      assert.match(String(o.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
      assert.equal(o.component, 'agent/json-node', line);
      assert.equal(typeof o.msg, 'string', line);
    }
    assert.ok(lines.some((l) => (JSON.parse(l) as { msg: string }).msg.includes('registered at')));

    const quiet = spawnGantry(['--log-level', 'warn', 'agent', '--node', 'quiet-node', '--redis', redisUrl, '--prefix', prefix, '--data-dir', agentDir, '--heartbeat', '1s'], { env: { GANTRY_LOG_FORMAT: 'text' } });
    await waitFor(async () => (await nodes()).includes('quiet-node'), { what: 'quiet-node registered', timeoutMs: 20_000 });
    await quiet.stop();
    assert.equal(quiet.output(), '', 'info lines were logged at --log-level warn');
  } finally {
    rmSync(agentDir, { recursive: true, force: true });
  }
});

test('get -w prints the list, then each object again when it changes, with the header once', async () => {
  const watch = spawnGantry(['get', 'deployments', '-w', '--api', rec.url]);
  try {
    await waitFor(() => /\ndefault +web /.test(`\n${watch.output()}`), { what: 'the first list', timeoutMs: 15_000 });
    const before = watch.output();
    await repo.commitFiles({ 'web.yaml': web(3) }, 'web: 3 replicas');
    const sync = await gantry('sync');
    assert.equal(sync.code, 0, sync.stderr);
    const out = await waitFor(() => (watch.output().length > before.length && /\ndefault +web +\S*3/.test(watch.output().slice(before.length - 1)) ? watch.output() : undefined), { what: 'the changed row', timeoutMs: 15_000 });
    assert.equal(out.split('\n').filter((l) => l.startsWith('NAMESPACE')).length, 1, out);
  } finally {
    await watch.stop();
  }
});
