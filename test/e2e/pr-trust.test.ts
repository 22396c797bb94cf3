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
import { httpGet } from '../helpers/agent-fixtures.ts';
import { apiFetch } from '../helpers/api-auth.ts';
import { startFakeGitHostWithPulls, type FakeGitHostWithPulls } from '../helpers/fake-git-host-prs.ts';
import { spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { startGitHttpServer, type GitHttpServer } from '../helpers/git-http-server.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Pull requests from outside, end to end: a fork's pull request by a stranger (GitHub's payload
 * shapes: head.repo differing from base.repo, author_association NONE) gets its plan as a status
 * and a comment, but no preview and no instance, until a collaborator adds the label, which
 * Gantry checks at the (fake) GitHub API before deploying. Replays, stale closes and commits
 * after the approval run nothing; the comment never names a node's address.
 */

const SECRET = 'trust-wh-s3cret-9931';
const HOST_TOKEN = 'trust-gh-t0ken-7781';
const PR = 5;

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
`;
const deployment = (name: string, greeting: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  namespace: shop
spec:
  replicas: 1
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
let hooks: string;
let repoUrl: string;
let baseSha: string;
let dataDir: string;
let reconciler: GantryProcess;
const procs: GantryProcess[] = [];

interface Delivery {
  headers: Record<string, string>;
  body: Buffer;
}

function githubDelivery(event: string, payload: object, id = randomUUID()): Delivery {
  const body = Buffer.from(JSON.stringify(payload));
  const signature = createHmac('sha256', SECRET).update(body).digest('hex');
  return { headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': id, 'x-hub-signature-256': `sha256=${signature}` }, body };
}

async function send(d: Delivery): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${hooks}/webhooks/github`, { method: 'POST', headers: d.headers, body: new Uint8Array(d.body) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function get<T>(path: string): Promise<T> {
  const res = await apiFetch(api + path);
  assert.equal(res.status, 200, `GET ${path}`);
  return (await res.json()) as T;
}

const repository = () => ({ id: 1001, full_name: 'acme/shop', private: false, owner: { login: 'acme' }, clone_url: repoUrl, html_url: repoUrl.replace(/\.git$/, ''), fork: false });
const users = { mallory: { login: 'mallory', id: 4242, type: 'User' }, alice: { login: 'alice', id: 17, type: 'User' } };

/** A pull_request delivery as GitHub sends it for a fork's pull request (the fields Gantry reads, and some it does not). */
function forkPayload(action: string, sha: string, opts: { labels?: string[]; sender?: keyof typeof users; label?: string; state?: 'open' | 'closed' } = {}) {
  return {
    action,
    number: PR,
    pull_request: {
      id: 90005,
      number: PR,
      state: opts.state ?? 'open',
      title: 'Add an api',
      user: users.mallory,
      author_association: 'NONE',
      labels: (opts.labels ?? []).map((name, i) => ({ id: i + 1, name, color: 'ededed' })),
      head: { label: 'mallory:feature', ref: 'feature', sha, user: users.mallory, repo: { id: 2002, full_name: 'mallory/shop', fork: true, owner: { login: 'mallory' }, clone_url: 'https://github.com/mallory/shop.git' } },
      base: { label: 'acme:main', ref: 'main', sha: baseSha, user: { login: 'acme' }, repo: repository() },
      merged: false,
      updated_at: new Date().toISOString(),
    },
    ...(opts.label ? { label: { id: 77, name: opts.label, color: '0e8a16' } } : {}),
    repository: repository(),
    sender: users[opts.sender ?? 'mallory'],
  };
}

/** A commit on the fork's branch, published by GitHub in the base repository as refs/pull/<n>/head only. */
async function pushForkHead(files: Record<string, string>, message: string): Promise<string> {
  const wd = repo.workDir;
  const exists = await gitAsync(['rev-parse', '--verify', '-q', 'refs/heads/fork-feature'], wd).then(() => true, () => false);
  await gitAsync(exists ? ['checkout', '-q', 'fork-feature'] : ['checkout', '-q', '-b', 'fork-feature', 'main'], wd);
  try {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(wd, path)), { recursive: true });
      await writeFile(join(wd, path), content);
    }
    await gitAsync(['add', '--all'], wd);
    await gitAsync(['commit', '-q', '-m', message], wd);
    await gitAsync(['push', '-q', '-f', 'origin', `HEAD:refs/pull/${PR}/head`], wd);
    return await gitAsync(['rev-parse', 'HEAD'], wd);
  } finally {
    await gitAsync(['checkout', '-q', 'main'], wd);
  }
}

const previews = async () => (await get<{ items: PreviewView[] }>('/api/v1/previews')).items;
const previewInstances = async () => (await get<{ items: InstanceView[] }>('/api/v1/instances')).items.filter((i) => i.namespace.startsWith(`pr-${PR}-`));
const previewDeployments = async () => (await get<{ items: { namespace: string }[] }>('/api/v1/deployments')).items.filter((d) => d.namespace.startsWith(`pr-${PR}-`));
const statusesOf = (sha: string, context: string) => host.statuses.filter((s) => s.sha === sha && s.context === context);
const comment = () => [...host.comments.values()].find((c) => c.pr === PR);
const hostReads = (path: string) => host.calls.filter((c) => c.method === 'GET' && c.path === path).length;

before(async () => {
  const r = await testRedis();
  prefix = freshPrefix();
  redis = connectRedis(r.url, 'pr-trust-e2e');
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-pr-trust-'));
  repo = await createRepo({ bare: true });
  baseSha = await repo.commitFiles({ 'namespaces.yaml': NAMESPACE, 'apps/web.yaml': deployment('web', 'main') }, 'web');
  server = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
  repoUrl = `${server.url}/${basename(repo.dir)}`;
  host = await startFakeGitHostWithPulls({ kind: 'github', token: HOST_TOKEN });
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  const hookPort = await freePort();
  hooks = `http://127.0.0.1:${hookPort}`;
  reconciler = spawnGantry(
    ['reconciler', '--redis', r.url, '--prefix', prefix, '--repo', repoUrl, '--port', String(port), '--webhook-port', String(hookPort), '--data-dir', dataDir, '--resync', '2s', '--poll-interval', '1h',
      '--webhook-secret-env', 'TEST_WEBHOOK_SECRET', '--git-host', 'github', '--git-host-api', host.url, '--git-host-token-env', 'TEST_HOST_TOKEN', '--preview-ready-timeout', '60s'],
    { env: { TEST_WEBHOOK_SECRET: SECRET, TEST_HOST_TOKEN: HOST_TOKEN } },
  );
  procs.push(reconciler);
  procs.push(spawnGantry(['agent', '--node', 'node-1', '--redis', r.url, '--prefix', prefix, '--data-dir', dataDir, '--cpu', '4', '--memory', '2Gi', '--heartbeat', '1s', '--stop-instances-on-exit']));
  await waitFor(async () => {
    const items = (await get<{ items: InstanceView[] }>('/api/v1/instances?namespace=shop')).items;
    return items.length === 1 && items[0]!.phase === 'Running';
  }, { timeoutMs: 30_000, what: 'shop/web running' }).catch((err: Error) => {
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

let head: string;
let approval: Delivery;

test("a fork's pull request by a stranger gets its plan and a comment saying why, but no preview and no instance", async () => {
  head = await pushForkHead({ 'apps/api.yaml': deployment('api', 'from-a-fork') }, 'add api');
  host.setPull({ repo: 'acme/shop', number: PR, state: 'open', headSha: head, headRef: 'feature', headRepo: 'mallory/shop', baseRepo: 'acme/shop', author: 'mallory', authorAssociation: 'NONE', labels: [] });
  const res = await send(githubDelivery('pull_request', forkPayload('opened', head)));
  assert.deepEqual([res.status, res.json.action], [202, 'preview']);
  // The comment is the last thing reported: once it is there, the decision has been carried out.
  const c = await waitFor(() => comment(), { timeoutMs: 20_000, what: 'the comment on the pull request' });
  assert.deepEqual(statusesOf(head, 'gantry/plan').map((s) => [s.state, s.description]), [['success', `+1 ~0 -0 against ${baseSha.slice(0, 7)}`]]);
  assert.deepEqual(statusesOf(head, 'gantry/preview').map((s) => s.state), ['pending']);
  assert.equal(statusesOf(head, 'gantry/preview')[0]!.description, 'awaiting approval: fork mallory/shop by @mallory (NONE); someone with write access adds the label gantry-preview');
  assert.match(c.body, /\*\*Plan\*\* for `[0-9a-f]{7}` against `[0-9a-f]{7}` \(what runs now\): \*\*\+1 ~0 -0\*\*/);
  assert.match(c.body, /\| `\+` \| Deployment `shop\/api` \|/);
  assert.match(c.body, /\*\*Preview\*\* 🔒 awaiting approval: not deployed: its head is in the fork mallory\/shop; @mallory is NONE\. To deploy it, someone with write access \(or more\) adds the label gantry-preview\./);
  assert.deepEqual(await previews(), []);
  assert.deepEqual(await previewDeployments(), []);
  assert.deepEqual(await previewInstances(), []);
  assert.ok(hostReads(`/repos/acme/shop/pulls/${PR}`) >= 1, 'the pull request was read at the host');
  const events = (await get<{ items: { reason: string; message: string }[] }>('/api/v1/events?limit=1000')).items;
  assert.ok(events.some((e) => e.reason === 'PreviewNotTrusted' && e.message.includes('mallory/shop')));
});

test('the label added by the author themself does nothing; added by a collaborator (checked at the host) it deploys the preview', async () => {
  host.setAccess('acme/shop', 'mallory', 'read');
  host.addLabel('acme/shop', PR, 'gantry-preview', 'mallory');
  assert.equal((await send(githubDelivery('pull_request', forkPayload('labeled', head, { labels: ['gantry-preview'], sender: 'mallory', label: 'gantry-preview' })))).status, 202);
  await waitFor(() => statusesOf(head, 'gantry/preview').length === 2, { timeoutMs: 20_000, what: 'a second gantry/preview status' });
  assert.equal(statusesOf(head, 'gantry/preview')[1]!.description, 'awaiting approval: gantry-preview added by @mallory (read access, write needed); someone with write access adds it');
  await waitFor(() => comment()?.body.includes('who has read access'), { what: 'the comment names who added the label' });
  assert.deepEqual(await previewInstances(), []);

  host.setAccess('acme/shop', 'alice', 'write');
  host.removeLabel('acme/shop', PR, 'gantry-preview', 'alice');
  host.addLabel('acme/shop', PR, 'gantry-preview', 'alice');
  approval = githubDelivery('pull_request', forkPayload('labeled', head, { labels: ['gantry-preview'], sender: 'alice', label: 'gantry-preview' }));
  assert.equal((await send(approval)).status, 202);
  const [preview] = await waitFor(async () => {
    const items = await previews();
    return items[0]?.state === 'ready' && items[0].endpoints.length === 2 ? items : undefined;
  }, { timeoutMs: 30_000, what: `preview #${PR} ready` });
  assert.equal(preview!.commit, head);
  assert.deepEqual(preview!.deployments, [`pr-${PR}-shop/api`, `pr-${PR}-shop/web`]);
  // The API's view (authenticated) has the addresses, and they answer with the pull request's code.
  const api5 = await get<PreviewView>(`/api/v1/previews/${PR}`);
  const e = api5.endpoints.find((x) => x.deployment === `pr-${PR}-shop/api`)!;
  assert.match(e.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(await httpGet(Number(new URL(e.url).port)), `${e.instance} from-a-fork`);
  assert.ok(hostReads(`/repos/acme/shop/issues/${PR}/events`) >= 1 && hostReads('/repos/acme/shop/collaborators/alice/permission') >= 1, 'who added the label was checked at the host');

  await waitFor(() => statusesOf(head, 'gantry/preview').some((s) => s.state === 'success'), { what: 'gantry/preview success' });
  const c = await waitFor(() => (comment()?.body.includes('✅ ready') ? comment() : undefined), { what: 'the comment says ready' });
  assert.match(c.body, /\| `pr-5-shop\/api` \| _not published_ \|/);
  assert.match(c.body, /`GET \/api\/v1\/previews\/5` on the Gantry API lists them/);
  for (const v of c.versions) assert.doesNotMatch(v, /https?:\/\/(127\.0\.0\.1|localhost|\d+\.\d+\.\d+\.\d+)/, 'no node address in any version of the comment');
  assert.equal(host.calls.filter((x) => x.method === 'POST' && x.path.endsWith(`/issues/${PR}/comments`)).length, 1, 'one comment, edited in place');
});

test('the approval replayed byte for byte under a new delivery id is a duplicate and acts once', async () => {
  const reads = hostReads(`/repos/acme/shop/pulls/${PR}`);
  const statuses = host.statuses.length;
  const replay = await send({ headers: { ...approval.headers, 'x-github-delivery': randomUUID() }, body: approval.body });
  assert.deepEqual([replay.status, replay.json.duplicate], [200, true]);
  // The duplicate is answered before any work starts: nothing was asked of the host or reported.
  assert.equal(hostReads(`/repos/acme/shop/pulls/${PR}`), reads);
  assert.equal(host.statuses.length, statuses);
});

test('commits pushed after the approval are not deployed and the preview is removed, until the label is added again', async () => {
  const before = await previewInstances();
  assert.equal(before.length, 2);
  const next = await pushForkHead({ 'apps/api.yaml': deployment('api', 'sneaky') }, 'change api after the approval');
  host.pull('acme/shop', PR)!.headSha = next;
  assert.equal((await send(githubDelivery('pull_request', forkPayload('synchronize', next, { labels: ['gantry-preview'] })))).status, 202);
  await waitFor(() => statusesOf(next, 'gantry/preview').length > 0, { timeoutMs: 20_000, what: 'gantry/preview on the new head' });
  assert.deepEqual(statusesOf(next, 'gantry/preview').map((s) => s.state), ['pending']);
  assert.equal(statusesOf(next, 'gantry/preview')[0]!.description, 'awaiting approval: commits after @alice added gantry-preview; remove gantry-preview and add it again');
  assert.equal(statusesOf(next, 'gantry/plan')[0]!.state, 'success', 'the plan is still reported');
  await waitFor(async () => (await previews()).length === 0 && (await previewDeployments()).length === 0 && (await previewInstances()).length === 0, { timeoutMs: 20_000, what: 'the preview removed' });
  await waitFor(() => comment()?.body.includes('its earlier preview was removed'), { what: 'the comment says the preview was removed' });

  host.removeLabel('acme/shop', PR, 'gantry-preview', 'alice');
  host.addLabel('acme/shop', PR, 'gantry-preview', 'alice');
  assert.equal((await send(githubDelivery('pull_request', forkPayload('labeled', next, { labels: ['gantry-preview'], sender: 'alice', label: 'gantry-preview' })))).status, 202);
  const [preview] = await waitFor(async () => {
    const items = await previews();
    return items[0]?.state === 'ready' && items[0].commit === next && items[0].endpoints.length === 2 ? items : undefined;
  }, { timeoutMs: 30_000, what: 'the preview at the newly approved head' });
  const e = (await get<PreviewView>(`/api/v1/previews/${PR}`)).endpoints.find((x) => x.deployment === `pr-${PR}-shop/api`)!;
  assert.equal(await httpGet(Number(new URL(e.url).port)), `${e.instance} sneaky`);
  assert.equal(preview!.number, PR);
});

test('a close while the pull request is open at the host changes nothing; a real close removes the preview', async () => {
  const next = host.pull('acme/shop', PR)!.headSha;
  const stale = await send(githubDelivery('pull_request', forkPayload('closed', next, { state: 'closed', labels: ['gantry-preview'] })));
  assert.deepEqual([stale.status, stale.json.action], [202, 'close-preview']);
  await waitFor(() => reconciler.output().includes(`preview #${PR}: a close, but the pull request is open at the Git host`), { what: 'the stale close noticed' });
  assert.equal((await previews()).length, 1);
  assert.equal((await previewInstances()).length, 2);

  host.pull('acme/shop', PR)!.state = 'closed';
  assert.equal((await send(githubDelivery('pull_request', { ...forkPayload('closed', next, { state: 'closed', labels: ['gantry-preview'] }), closed_at: new Date().toISOString() }))).status, 202);
  await waitFor(async () => (await previews()).length === 0 && (await previewInstances()).length === 0, { timeoutMs: 20_000, what: 'the preview removed on close' });
  await waitFor(() => comment()?.body.includes('🗑️ closed'), { what: 'the comment says closed' });
  // Reopening a closed pull request is checked at the host too: a replayed "opened" runs nothing now.
  const reopened = await send(githubDelivery('pull_request', { ...forkPayload('reopened', next, { labels: ['gantry-preview'] }), replayed: true }));
  assert.equal(reopened.status, 202);
  await waitFor(() => reconciler.output().includes(`preview #${PR}: pull request #${PR} is closed at the Git host; nothing deployed`), { what: 'the replayed reopen refused' });
  assert.deepEqual(await previews(), []);

  const seen = [reconciler.output(), JSON.stringify(host.calls), JSON.stringify(await get('/api/v1/events?limit=1000'))].join('\n');
  for (const secret of [SECRET, HOST_TOKEN]) assert.ok(!seen.includes(secret), 'a secret leaked');
});
