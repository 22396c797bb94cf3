import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Redis } from 'ioredis';
import type { InstanceView } from '../../reconciler/api/views.ts';
import type { PreviewView } from '../../reconciler/preview/preview-manager.ts';
import { connectRedis } from '../../state/connection.ts';
import { freePort } from '../../cli/redis-server.ts';
import { httpGet, pidAlive } from '../helpers/agent-fixtures.ts';
import { startFakeGitHostWithPulls, type FakeGitHostWithPulls } from '../helpers/fake-git-host-prs.ts';
import { runGantry, spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { startGitHttpServer, type GitHttpServer } from '../helpers/git-http-server.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';
import { apiFetch, TEST_READ_TOKEN } from '../helpers/api-auth.ts';
import { parseExposition } from '../helpers/prometheus-text.ts';

/**
 * Webhooks end to end on real parts: a bare repository served over smart HTTP, the reconciler and
 * an agent as processes, deliveries signed here as GitHub signs them, and a fake GitHub API that
 * records the commit statuses and the comment. The reconciler polls once an hour, so every fetch
 * in these tests is caused by a webhook.
 */

const SECRET = 'wh-s3cret-Value-4711';
const HOST_TOKEN = 'gh-t0ken-Value-0815';
/** A Secret the pull request adds: its value must reach no comment, status, event or log. */
const PR_SECRET = 'pr-s3cret-Value-2342';
const PR_SECRET_YAML = `apiVersion: v1\nkind: Secret\nmetadata: { name: api-token, namespace: shop }\nstringData:\n  token: ${PR_SECRET}\n`;

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;
const deployment = (name: string, replicas: number | string, greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: shop
spec:
  replicas: ${replicas}
  template:
    metadata:
      labels:
        app: ${name}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: server
          command: ["node", "-e"]
          args:
            - "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE_ID + ' ' + process.env.GREETING)).listen(+process.env.PORT, '127.0.0.1')"
          env:
            - name: GREETING
              value: "${greeting}"
          ports:
            - name: http
              containerPort: 8080
          # Ready means answering: a preview is reported ready only once its endpoints listen.
          readinessProbe: { tcpSocket: { port: http }, periodSeconds: 1 }
          resources:
            cpu: 50m
            memory: 16Mi
`;

let repo: TestRepo;
let server: GitHttpServer;
let host: FakeGitHostWithPulls;
let redis: Redis;
let prefix: string;
let api: string;
/** The webhook listener: its own port, serving only POST /webhooks/*. */
let hooks: string;
let repoUrl: string;
let dataDir: string;
let reconciler: GantryProcess;
const procs: GantryProcess[] = [];

interface Delivery {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
}

const sign = (body: Buffer, secret = SECRET) => createHmac('sha256', secret).update(body).digest('hex');

function githubDelivery(event: string, payload: object | string, opts: { id?: string; secret?: string | null } = {}): Delivery {
  const body = Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': opts.id ?? randomUUID() };
  if (opts.secret !== null) headers['x-hub-signature-256'] = `sha256=${sign(body, opts.secret ?? SECRET)}`;
  return { path: '/webhooks/github', headers, body };
}

async function send(d: Delivery): Promise<{ status: number; json: Record<string, unknown> }> {
  // The webhook listener, as a Git host reaches it: no API token, only the signature.
  const res = await fetch(hooks + d.path, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function get<T>(path: string): Promise<T> {
  const res = await apiFetch(api + path);
  assert.equal(res.status, 200, `GET ${path}`);
  return (await res.json()) as T;
}

const repository = () => ({ full_name: 'acme/shop', clone_url: repoUrl, html_url: repoUrl.replace(/\.git$/, '') });
const pushPayload = (after: string, ref = 'refs/heads/main') => ({ ref, before: '0'.repeat(40), after, repository: repository() });
const prPayload = (n: number, action: string, sha: string, merged = false) => ({
  action,
  number: n,
  // Branches of the repository itself (head.repo = base.repo): trusted, whoever wrote them.
  pull_request: { number: n, user: { login: 'dev' }, author_association: 'NONE', head: { ref: `feature-${n}`, sha, repo: { full_name: 'acme/shop' } }, base: { ref: 'main', repo: { full_name: 'acme/shop' } }, merged },
  repository: repository(),
});

const status = async () => (await get<{ source: { lastAppliedCommit?: string; lastAttemptedCommit?: string } }>('/api/v1/status')).source;
const instances = async (namespace: string, name: string) => (await get<{ items: InstanceView[] }>(`/api/v1/instances?namespace=${namespace}&deployment=${name}`)).items;

/** Every one of `count` instances Running and answering `<id> <greeting>` on its host port. */
function serving(namespace: string, name: string, greeting: string, count: number): Promise<InstanceView[]> {
  return waitFor(async () => {
    const items = await instances(namespace, name);
    if (items.length !== count) return undefined;
    for (const i of items) {
      if (i.phase !== 'Running' || !i.ports[0]) return undefined;
      if ((await httpGet(i.ports[0].hostPort)) !== `${i.id} ${greeting}`) return undefined;
    }
    return items;
  }, { timeoutMs: 30_000, what: `${count} ${namespace}/${name} answering "${greeting}"` });
}

/** Commits on branch feature-<n> (never main) and pushes it as refs/pull/<n>/head, as GitHub does. */
async function pushPullRequest(n: number, files: Record<string, string>, message: string): Promise<string> {
  const wd = repo.workDir;
  const branch = `feature-${n}`;
  const exists = await gitAsync(['rev-parse', '--verify', '-q', `refs/heads/${branch}`], wd).then(() => true, () => false);
  await gitAsync(exists ? ['checkout', '-q', branch] : ['checkout', '-q', '-b', branch, 'main'], wd);
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(wd, path)), { recursive: true });
      await writeFile(join(wd, path), content);
    }
    await gitAsync(['add', '--all'], wd);
    await gitAsync(['commit', '-q', '-m', message], wd);
    await gitAsync(['push', '-q', '-f', 'origin', `HEAD:refs/pull/${n}/head`, `HEAD:refs/heads/${branch}`], wd);
    const sha = await gitAsync(['rev-parse', 'HEAD'], wd);
    // The host's API says the same (Gantry checks it before deploying).
    host.setPull({ repo: 'acme/shop', number: n, state: 'open', headSha: sha, headRef: branch, headRepo: 'acme/shop', baseRepo: 'acme/shop', author: 'dev', authorAssociation: 'NONE', labels: [] });
    return sha;
  } finally {
    await gitAsync(['checkout', '-q', 'main'], wd);
  }
}

async function scanKeys(pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:${pattern}`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

const previews = async () => (await get<{ items: PreviewView[] }>('/api/v1/previews')).items;
const statusesOf = (sha: string, context: string) => host.statuses.filter((s) => s.sha === sha && s.context === context);
const commentPosts = () => host.calls.filter((c) => c.method === 'POST' && /\/issues\/\d+\/comments$/.test(c.path));

before(async () => {
  const r = await testRedis();
  prefix = freshPrefix();
  redis = connectRedis(r.url, 'webhook-test');
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-webhook-'));
  repo = await createRepo({ bare: true });
  await repo.commitFiles({ 'namespaces.yaml': NAMESPACE, 'apps/web.yaml': deployment('web', 2, 'v1') }, 'web v1');
  server = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
  repoUrl = `${server.url}/${basename(repo.dir)}`;
  host = await startFakeGitHostWithPulls({ kind: 'github', token: HOST_TOKEN });
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const hookPort = await freePort();
  hooks = `http://127.0.0.1:${hookPort}`;
  reconciler = spawnGantry(
    ['reconciler', '--redis', r.url, '--prefix', prefix, '--repo', repoUrl, '--port', String(port), '--webhook-port', String(hookPort), '--data-dir', dataDir, '--resync', '2s', '--poll-interval', '1h',
      '--webhook-secret-env', 'TEST_WEBHOOK_SECRET', '--git-host', 'github', '--git-host-api', host.url, '--git-host-token-env', 'TEST_HOST_TOKEN', '--max-previews', '1', '--preview-ready-timeout', '60s', '--preview-comment-urls'],
    { env: { TEST_WEBHOOK_SECRET: SECRET, TEST_HOST_TOKEN: HOST_TOKEN } },
  );
  procs.push(reconciler);
  procs.push(spawnGantry(['agent', '--node', 'node-1', '--redis', r.url, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '4', '--memory', '2Gi', '--heartbeat', '1s', '--stop-instances-on-exit']));
  await serving('shop', 'web', 'v1', 2).catch((err: Error) => {
    throw new Error(`${err.message}\n${procs.map((p) => p.output().slice(-3000)).join('\n---\n')}`);
  });
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  if (process.env.GANTRY_TEST_VERBOSE) console.log(procs.map((p) => p.output()).join('\n---\n'));
  redis?.disconnect();
  await server?.close();
  await host?.close();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

let firstPush: Delivery;

test('a signed push to the tracked branch deploys the new commit at once (no poll)', async () => {
  const sha = await repo.commitFiles({ 'apps/web.yaml': deployment('web', 2, 'v2') }, 'web v2');
  firstPush = githubDelivery('push', pushPayload(sha));
  const res = await send(firstPush);
  assert.equal(res.status, 202);
  assert.deepEqual(res.json, { accepted: true, action: 'sync' });
  const live = await serving('shop', 'web', 'v2', 2);
  assert.ok(live.every((i) => i.commit === sha));
  assert.equal((await status()).lastAppliedCommit, sha);
});

test('bad, missing and replayed signatures change nothing', async () => {
  const sha = await repo.commitFiles({ 'apps/web.yaml': deployment('web', 2, 'v3') }, 'web v3');
  const requests = server.requests;
  const before = await status();
  const deliveriesBefore = await scanKeys('webhook-delivery:*');
  const payload = pushPayload(sha);
  const bad: Delivery[] = [
    githubDelivery('push', payload, { secret: null }),
    githubDelivery('push', payload, { secret: 'not-the-secret' }),
    { ...githubDelivery('push', payload), headers: { ...githubDelivery('push', payload).headers, 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) } },
    // Signed, then the body changed: the signature covers the exact bytes.
    (() => {
      const d = githubDelivery('push', payload);
      return { ...d, body: Buffer.from(d.body.toString().replace('refs/heads/main', 'refs/heads/main2')) };
    })(),
    { path: '/webhooks/gitlab', headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 'wrong' }, body: Buffer.from('{}') },
    { path: '/webhooks/gitea', headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-signature': sign(Buffer.from('{}'), 'x') }, body: Buffer.from('{}') },
    { path: '/webhooks/bitbucket', headers: { 'content-type': 'application/json', 'x-event-key': 'repo:push' }, body: Buffer.from('{}') },
  ];
  for (const d of bad) {
    const res = await send(d);
    assert.equal(res.status, 401, `${d.path} ${JSON.stringify(d.headers)}`);
    assert.deepEqual(res.json, { error: 'missing or invalid webhook signature', code: 'UNAUTHORIZED' });
  }
  // A replay of the first push, byte for byte: same delivery id, valid signature.
  const replay = await send(firstPush);
  assert.equal(replay.status, 200);
  assert.equal(replay.json.duplicate, true);
  // Answers are given before any work is started, so this is the whole effect: none.
  assert.equal(server.requests, requests, 'no fetch');
  assert.deepEqual(await status(), before);
  assert.deepEqual(await scanKeys('webhook-delivery:*'), deliveriesBefore);
  // That body was only ever rejected (unsigned, wrongly signed), never claimed: signed, it is acted on.
  // (A replay of a handled body under a new delivery id is a duplicate: test/e2e/pr-trust.test.ts.)
  assert.equal((await send(githubDelivery('push', payload))).status, 202);
  await waitFor(async () => (await status()).lastAppliedCommit === sha, { what: 'v3 applied' });
  assert.ok(server.requests > requests);
});

test('oversized, malformed, unknown and unrelated deliveries get their codes', async () => {
  const head = (await status()).lastAppliedCommit!;
  const requests = server.requests;
  const big = githubDelivery('push', { ...pushPayload(head), padding: 'x'.repeat(1024 * 1024) });
  assert.equal((await send(big)).status, 413);
  const malformed = await send(githubDelivery('push', '{"ref": "refs/heads/main", '));
  assert.equal(malformed.status, 400);
  assert.equal(malformed.json.code, 'MALFORMED_PAYLOAD');
  const missing = await send(githubDelivery('push', { ref: 'refs/heads/main', repository: repository() }));
  assert.equal(missing.status, 400);
  assert.match(String(missing.json.error), /after must be a non-empty string/);
  const unknown = await send(githubDelivery('issues', { action: 'opened' }));
  assert.deepEqual([unknown.status, unknown.json.ignored], [202, true]);
  assert.equal((await send(githubDelivery('ping', { zen: 'Keep it logically awesome.' }))).status, 200);
  const otherBranch = await send(githubDelivery('push', pushPayload(head, 'refs/heads/dev')));
  assert.equal(otherBranch.status, 202);
  assert.match(String(otherBranch.json.reason), /not to the tracked branch main/);
  const otherRepo = await send(githubDelivery('push', { ...pushPayload(head), repository: { full_name: 'acme/other', clone_url: `${server.url}/other.git` } }));
  assert.match(String(otherRepo.json.reason), /other is not the tracked one/);
  // GitHub's form encoding is signed over the encoded body.
  const form = Buffer.from(`payload=${encodeURIComponent(JSON.stringify(pushPayload(head, 'refs/heads/dev')))}`);
  const formRes = await send({ path: '/webhooks/github', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${sign(form)}` }, body: form });
  assert.match(String(formRes.json.reason), /not to the tracked branch/);
  // The other hosts' authentication, accepted, on pushes to another branch.
  const gl = Buffer.from(JSON.stringify({ ref: 'refs/heads/dev', after: head, project: { id: 1, git_http_url: repoUrl } }));
  const gitlab = await send({ path: '/webhooks/gitlab', headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET, 'x-gitlab-event-uuid': randomUUID() }, body: gl });
  assert.equal(gitlab.status, 202);
  assert.match(String(gitlab.json.reason), /refs\/heads\/dev/);
  const gt = Buffer.from(JSON.stringify(pushPayload(head, 'refs/heads/dev')));
  const gitea = await send({ path: '/webhooks/gitea', headers: { 'content-type': 'application/json', 'x-gitea-event': 'push', 'x-gitea-delivery': randomUUID(), 'x-gitea-signature': sign(gt) }, body: gt });
  assert.match(String(gitea.json.reason), /refs\/heads\/dev/);
  const bb = Buffer.from(JSON.stringify({ repository: { full_name: 'acme/shop', links: { html: { href: repoUrl } } }, push: { changes: [{ new: { type: 'branch', name: 'dev', target: { hash: head } } }] } }));
  const bitbucket = await send({ path: '/webhooks/bitbucket', headers: { 'content-type': 'application/json', 'x-event-key': 'repo:push', 'x-request-uuid': `{${randomUUID()}}`, 'x-hub-signature': `sha256=${sign(bb)}` }, body: bb });
  assert.match(String(bitbucket.json.reason), /refs\/heads\/dev/);
  assert.equal(server.requests, requests, 'none of them fetched');
  // Every delivery is counted by host and the code it got (onResponse runs once the answer is out).
  const delivered = await waitFor(async () => {
    const m = parseExposition(await (await apiFetch(`${api}/metrics`, { token: TEST_READ_TOKEN })).text());
    return m.sum('gantry_webhook_deliveries_total', { host: 'github', code: '413' }) >= 1 ? m : undefined;
  }, { what: 'the deliveries in /metrics' });
  assert.ok(delivered.sum('gantry_webhook_deliveries_total', { host: 'github', code: '401' }) >= 4);
  assert.ok(delivered.sum('gantry_webhook_deliveries_total', { host: 'github', code: '400' }) >= 2);
  for (const h of ['gitlab', 'gitea', 'bitbucket']) assert.ok(delivered.sum('gantry_webhook_deliveries_total', { host: h, code: '202' }) >= 1, h);
});

let prHead: string;

test('a pull request gets a plan status, one comment and a preview whose instances answer HTTP', async () => {
  prHead = await pushPullRequest(7, { 'apps/web.yaml': deployment('web', 2, 'preview-1'), 'apps/api.yaml': deployment('api', 3, 'preview-1'), 'apps/api-token.yaml': PR_SECRET_YAML }, 'web preview-1, add api and its token');
  const res = await send(githubDelivery('pull_request', prPayload(7, 'opened', prHead)));
  assert.deepEqual([res.status, res.json.action], [202, 'preview']);
  const [preview] = await waitFor(async () => {
    const items = await previews();
    // Endpoints are the ready instances at the time of asking: one per deployment once all answer.
    return items[0]?.state === 'ready' && items[0].commit === prHead && items[0].endpoints.length === 2 ? items : undefined;
  }, { timeoutMs: 30_000, what: 'preview #7 ready with 2 endpoints' });
  assert.deepEqual(preview!.namespaces, ['pr-7-shop']);
  assert.deepEqual(preview!.deployments, ['pr-7-shop/api', 'pr-7-shop/web']);
  // Replicas capped at 1 per deployment; each endpoint is a preview instance answering with the PR's greeting.
  assert.deepEqual(preview!.endpoints.map((e) => e.deployment).sort(), ['pr-7-shop/api', 'pr-7-shop/web']);
  for (const e of preview!.endpoints) {
    const body = await (await fetch(e.url)).text();
    assert.equal(body, `${e.instance} preview-1`);
  }
  // What runs from main is untouched.
  await serving('shop', 'web', 'v3', 2);
  assert.equal((await instances('shop', 'api')).length, 0);

  const base = (await status()).lastAppliedCommit!;
  await waitFor(() => statusesOf(prHead, 'gantry/preview').some((s) => s.state === 'success'), { what: 'gantry/preview success' });
  assert.deepEqual(statusesOf(prHead, 'gantry/plan').map((s) => [s.state, s.description]), [['success', `+2 ~1 -0 against ${base.slice(0, 7)}`]]);
  assert.deepEqual(statusesOf(prHead, 'gantry/preview').map((s) => s.state), ['pending', 'success']);
  // The comment is edited after the status is set: wait for its ready version.
  const comment = await waitFor(() => [...host.comments.values()].find((c) => c.pr === 7 && c.body.includes('✅ ready')), { what: 'the comment says ready' });
  assert.equal(commentPosts().length, 1);
  assert.match(comment.body, /\*\*Plan\*\* for `[0-9a-f]{7}` against `[0-9a-f]{7}` \(what runs now\): \*\*\+2 ~1 -0\*\*/);
  assert.match(comment.body, /\| `\+` \| Secret `shop\/api-token` \| 1 key\(s\) \|/);
  assert.match(comment.body, /\| `\+` \| Deployment `shop\/api` \| 3 instance\(s\) created/);
  assert.match(comment.body, /\| `~` \| Deployment `shop\/web` \|/);
  assert.match(comment.body, /\*\*Preview\*\* ✅ ready/);
  assert.match(comment.body, /\| `pr-7-shop\/web` \| http:\/\/127\.0\.0\.1:\d+ \|/);

  // The same plan for CI, through the API, from the ref over smart HTTP.
  const plan = await runGantry(['plan', '--ref', 'refs/pull/7/head', '-o', 'markdown', '--api', api]);
  assert.equal(plan.code, 2, plan.stderr);
  assert.match(plan.stdout, /\*\*\+2 ~1 -0\*\*/);
  // A sha the reconciler never fetched: found by fetching the branches.
  const unseen = await pushPullRequest(10, { 'apps/web.yaml': deployment('web', 1, 'unseen') }, 'only on a branch');
  const bySha = await runGantry(['plan', '--ref', unseen, '-o', 'json', '--api', api]);
  assert.equal(bySha.code, 2, bySha.stderr);
  assert.equal((JSON.parse(bySha.stdout) as { commit: string }).commit, unseen);
});

test('a push to the pull request updates its preview and the same comment; a push to main leaves the preview alone', async () => {
  const next = await pushPullRequest(7, { 'apps/web.yaml': deployment('web', 2, 'preview-2'), 'apps/api.yaml': deployment('api', 3, 'preview-2') }, 'preview-2');
  assert.equal((await send(githubDelivery('pull_request', prPayload(7, 'synchronize', next)))).status, 202);
  const [preview] = await waitFor(async () => {
    const items = await previews();
    return items[0]?.state === 'ready' && items[0].commit === next && items[0].endpoints.length === 2 ? items : undefined;
  }, { timeoutMs: 30_000, what: 'preview #7 ready at the new head' });
  for (const e of preview!.endpoints) assert.equal(await (await fetch(e.url)).text(), `${e.instance} preview-2`);
  await waitFor(() => statusesOf(next, 'gantry/preview').some((s) => s.state === 'success'), { what: 'gantry/preview success on the new head' });
  assert.equal(statusesOf(next, 'gantry/plan')[0]!.state, 'success');
  const comment = await waitFor(() => [...host.comments.values()].find((c) => c.pr === 7 && c.body.includes('✅ ready') && c.body.includes(`\`${next.slice(0, 7)}\``)), { what: 'the comment says ready at the new head' });
  assert.equal(commentPosts().length, 1, 'the comment is edited, not posted again');
  assert.ok(comment.versions.length >= 4, `versions: ${comment.versions.length}`);

  // main moves on: its sync replaces main's records only.
  const mainSha = await repo.commitFiles({ 'apps/web.yaml': deployment('web', 2, 'v4') }, 'web v4');
  assert.equal((await send(githubDelivery('push', pushPayload(mainSha)))).status, 202);
  await serving('shop', 'web', 'v4', 2);
  const deployments = (await get<{ items: { namespace: string; name: string }[] }>('/api/v1/deployments')).items.map((d) => `${d.namespace}/${d.name}`);
  assert.deepEqual(deployments, ['pr-7-shop/api', 'pr-7-shop/web', 'shop/web']);
  for (const e of (await previews())[0]!.endpoints) assert.equal(await (await fetch(e.url)).text(), `${e.instance} preview-2`);
});

test('invalid manifests and the preview cap are reported as failed statuses, and deploy nothing', async () => {
  const invalid = await pushPullRequest(8, { 'apps/web.yaml': deployment('web', '"two"', 'x') }, 'broken');
  const capped = await pushPullRequest(9, { 'apps/web.yaml': deployment('web', 1, 'pr-9') }, 'fine, but one preview too many');
  assert.equal((await send(githubDelivery('pull_request', prPayload(8, 'opened', invalid)))).status, 202);
  assert.equal((await send(githubDelivery('pull_request', prPayload(9, 'opened', capped)))).status, 202);
  await waitFor(() => statusesOf(invalid, 'gantry/preview').length > 0 && statusesOf(capped, 'gantry/preview').length > 0, { what: 'statuses of #8 and #9' });
  const plan8 = statusesOf(invalid, 'gantry/plan')[0]!;
  assert.equal(plan8.state, 'failure');
  assert.match(plan8.description, /^invalid: 1 error\(s\): apps\/web\.yaml:\d+:\d+ Deployment shop\/web \/spec\/replicas: must be integer/);
  assert.deepEqual(statusesOf(invalid, 'gantry/preview').map((s) => [s.state, s.description]), [['failure', `not deployed: the manifests at ${invalid.slice(0, 7)} are invalid`]]);
  assert.equal(statusesOf(capped, 'gantry/plan')[0]!.state, 'success');
  assert.deepEqual(statusesOf(capped, 'gantry/preview').map((s) => s.state), ['failure']);
  assert.match(statusesOf(capped, 'gantry/preview')[0]!.description, /1 previews already run \(#7\), the limit is 1/);
  assert.deepEqual((await previews()).map((p) => p.number), [7]);
  assert.equal((await get<{ items: unknown[] }>('/api/v1/instances?namespace=pr-9-shop')).items.length, 0);
  const body8 = (await waitFor(() => [...host.comments.values()].find((c) => c.pr === 8), { what: 'comment on #8' })).body;
  assert.match(body8, /\*\*Invalid manifests\*\*/);
  assert.match(body8, /apps\/web\.yaml:\d+:\d+ Deployment shop\/web/);
});

test('closing the pull request removes every preview instance and key; secrets never show', async () => {
  const running = (await get<{ items: InstanceView[] }>('/api/v1/instances')).items.filter((i) => i.namespace === 'pr-7-shop');
  assert.equal(running.length, 2);
  assert.ok((await scanKeys('*pr-7*')).length > 0);
  for (const n of [7, 8, 9]) {
    host.pull('acme/shop', n)!.state = 'closed';
    const res = await send(githubDelivery('pull_request', prPayload(n, 'closed', prHead)));
    assert.deepEqual([res.status, res.json.action], [202, 'close-preview']);
  }
  await waitFor(async () => (await scanKeys('*pr-7*')).length === 0 && (await scanKeys('*pr-comment*')).length === 0, { timeoutMs: 20_000, what: 'no pr-7 key left' }).catch(async (err) => {
    throw new Error(`${err.message}: ${JSON.stringify([...(await scanKeys('*pr-7*')), ...(await scanKeys('*pr-comment*'))])}`);
  });
  assert.deepEqual(await scanKeys('preview*'), []);
  assert.deepEqual(await previews(), []);
  await waitFor(() => running.every((i) => !pidAlive(i.pid!)), { what: 'preview processes gone' });
  assert.equal((await get<{ items: InstanceView[] }>('/api/v1/instances')).items.filter((i) => i.namespace.startsWith('pr-')).length, 0);
  await serving('shop', 'web', 'v4', 2);
  await waitFor(() => [...host.comments.values()].find((c) => c.pr === 7)?.body.includes('🗑️ closed: pull request closed: the preview was removed'), { what: 'the comment says closed' });
  assert.equal(commentPosts().filter((c) => c.path.endsWith('/issues/7/comments')).length, 1);

  assert.ok(host.calls.length > 0 && host.calls.every((c) => c.authorized));
  const seen = [reconciler.output(), JSON.stringify(host.calls), JSON.stringify(await get('/api/v1/events?limit=1000')), JSON.stringify(await get('/api/v1/status'))].join('\n');
  // The pull request's own Secret too, in any encoding, in every comment the host received.
  const prSecretForms = [PR_SECRET, Buffer.from(PR_SECRET).toString('base64')];
  for (const secret of [SECRET, HOST_TOKEN, ...prSecretForms]) assert.ok(!seen.includes(secret), 'a secret leaked');
  for (const c of host.comments.values()) for (const form of prSecretForms) assert.ok(!c.body.includes(form), 'a pull request comment shows the Secret');
});
