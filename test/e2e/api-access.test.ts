import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import { TEST_ADMIN_TOKEN, TEST_READ_TOKEN } from '../helpers/api-auth.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { runGantry, spawnGantry, type GantryProcess } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Who may use the API, against a real `gantry reconciler` process started as an operator would,
 * with no token in its environment: it makes its own admin token in the data dir; `gantry token
 * create` adds a read token; requests without one, with an unknown one, or with a read token on an
 * admin route are refused; browsers' cross-site bodies are refused; webhooks have their own
 * listener that serves nothing else; no token ever shows in the output.
 */

const SECRET = 'webhook-secret-for-api-access-test';
// None of the tests' own tokens: this reconciler must stand on its data dir's.
const noTokens = { GANTRY_API_ADMIN_TOKEN: '', GANTRY_API_READ_TOKEN: '', GANTRY_TOKEN: '' };

let repo: TestRepo;
let dataDir: string;
let reconciler: GantryProcess;
let api: string;
let hooks: string;
let admin: string;
let read: string;

const call = (path: string, init: RequestInit & { token?: string } = {}) => {
  const { token, headers, ...rest } = init;
  return fetch(api + path, { ...rest, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(headers as Record<string, string> | undefined) } });
};

before(async () => {
  const { url } = await testRedis();
  dataDir = mkdtempSync(join(tmpdir(), 'gantry-access-'));
  repo = await createRepo();
  await repo.commitFiles({ 'README.md': 'empty' }, 'initial');
  const [port, hookPort] = [await freePort(), await freePort()];
  api = `http://127.0.0.1:${port}`;
  hooks = `http://127.0.0.1:${hookPort}`;
  reconciler = spawnGantry(['reconciler', '--redis', url, '--prefix', freshPrefix(), '--repo', repo.dir, '--port', String(port), '--webhook-port', String(hookPort), '--data-dir', dataDir, '--webhook-secret-env', 'ACCESS_TEST_SECRET'], {
    env: { ...noTokens, ACCESS_TEST_SECRET: SECRET },
  });
  await waitFor(() => fetch(`${api}/healthz`).then((r) => r.ok, () => false), { timeoutMs: 30_000, what: 'the API' });
  admin = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  const created = await runGantry(['token', 'create', '--role', 'read', '--name', 'ci-reader', '--data-dir', dataDir], { env: noTokens });
  assert.equal(created.code, 0, created.stderr);
  read = created.stdout.trim();
  assert.match(read, /^gantry_[A-Za-z0-9_-]{40,}$/);
});

after(async () => {
  await reconciler?.stop();
  await repo?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
});

const READ_ROUTES = ['/api/v1/status', '/api/v1/deployments', '/api/v1/nodes', '/api/v1/instances', '/api/v1/events', '/api/v1/services', '/api/v1/previews', '/api/v1/diff'];
const ADMIN_ROUTES: [string, string][] = [
  ['POST', '/api/v1/sync'],
  ['POST', '/api/v1/nodes/node-1/cordon'],
  ['POST', '/api/v1/nodes/node-1/drain'],
  ['POST', '/api/v1/deployments/default/web/rollout/restart'],
  // A GET, but it makes the reconciler fetch a ref from the remote.
  ['GET', '/api/v1/plan?ref=main'],
];

test('the reconciler makes one admin token for its data dir, owner-only, and never prints it', () => {
  for (const f of ['admin-token', 'api-tokens']) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, `${f} is 0600`);
  assert.match(admin, /^gantry_/);
  // The tokens file holds hashes, not tokens.
  const file = readFileSync(join(dataDir, 'api-tokens'), 'utf8');
  assert.ok(!file.includes(admin) && !file.includes(read));
  assert.match(file, /^admin admin sha256:[0-9a-f]{64}$/m);
  assert.match(file, /^ci-reader read sha256:[0-9a-f]{64}$/m);
  assert.match(reconciler.output(), /created an admin API token in \S+admin-token/);
});

test('/healthz is open; every /api/v1 route needs a token: none or an unknown one is 401', async () => {
  assert.equal((await call('/healthz')).status, 200);
  for (const path of READ_ROUTES) {
    const res = await call(path);
    assert.equal(res.status, 401, `GET ${path}`);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="gantry"');
    assert.equal(((await res.json()) as { code: string }).code, 'UNAUTHORIZED');
    assert.equal((await call(path, { token: 'gantry_not-a-token' })).status, 401, `GET ${path} with an unknown token`);
  }
  for (const [method, path] of ADMIN_ROUTES) assert.equal((await call(path, { method })).status, 401, `${method} ${path}`);
  // An unknown route under /api/v1 says nothing without a token either.
  assert.equal((await call('/api/v1/nope')).status, 401);
  assert.equal((await call('/api/v1/status', { headers: { authorization: `Basic ${Buffer.from(`x:${admin}`).toString('base64')}` } })).status, 401, 'only bearer tokens');
});

test('a read token may GET everything and act on nothing (403); an admin token may act', async () => {
  for (const path of READ_ROUTES) assert.equal((await call(path, { token: read })).status, 200, `GET ${path} with the read token`);
  for (const [method, path] of ADMIN_ROUTES) {
    const res = await call(path, { method, token: read });
    assert.equal(res.status, 403, `${method} ${path} with the read token`);
    assert.deepEqual(await res.json(), { error: 'token ci-reader has the read role; this needs admin', code: 'FORBIDDEN' });
  }
  const sync = await call('/api/v1/sync', { method: 'POST', token: admin });
  assert.equal(sync.status, 200);
  assert.ok(['applied', 'unchanged'].includes(((await sync.json()) as { outcome: string }).outcome));
  assert.equal((await call('/api/v1/nodes/node-1/cordon', { method: 'POST', token: admin })).status, 404, 'past auth: the node does not exist');
});

test('mutating routes take JSON or no body: a text/plain or form POST (what a web page can send cross-site) is 415', async () => {
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const res = await call('/api/v1/sync', { method: 'POST', token: admin, headers: { 'content-type': type }, body: 'x=1' });
    assert.equal(res.status, 415, type);
  }
  assert.equal((await call('/api/v1/sync', { method: 'POST', token: admin, headers: { 'content-type': 'application/json' }, body: '{}' })).status, 200);
  assert.equal((await call('/api/v1/sync', { method: 'POST', token: admin })).status, 200, 'no body');
});

test('gantry token list and revoke: a revoked token stops working at once, without a restart', async () => {
  const list = await runGantry(['token', 'list', '--data-dir', dataDir], { env: noTokens });
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^admin\s+admin$/m);
  assert.match(list.stdout, /^ci-reader\s+read$/m);
  assert.ok(!list.stdout.includes(read) && !list.stdout.includes(admin));
  const extra = (await runGantry(['token', 'create', '--role', 'read', '--name', 'temp', '--data-dir', dataDir], { env: noTokens })).stdout.trim();
  await waitFor(async () => (await call('/api/v1/status', { token: extra })).status === 200, { what: 'a new token accepted without a restart' });
  const revoked = await runGantry(['token', 'revoke', 'temp', '--data-dir', dataDir], { env: noTokens });
  assert.equal(revoked.code, 0, revoked.stderr);
  await waitFor(async () => (await call('/api/v1/status', { token: extra })).status === 401, { what: 'the revoked token refused' });
  assert.equal((await call('/api/v1/status', { token: read })).status, 200, 'the others still work');
  assert.equal(statSync(join(dataDir, 'api-tokens')).mode & 0o777, 0o600, 'still 0600 after the rewrite');

  const bad = await runGantry(['token', 'create', '--role', 'root', '--data-dir', dataDir], { env: noTokens });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  const dup = await runGantry(['token', 'create', '--role', 'read', '--name', 'ci-reader', '--data-dir', dataDir], { env: noTokens });
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /a token named ci-reader exists already/);
  const missing = await runGantry(['token', 'revoke', 'nobody', '--data-dir', dataDir], { env: noTokens });
  assert.equal(missing.code, 2);
});

test('the CLI finds its token in a file, in the environment or in .gantry/ above it; without one it says how', async () => {
  const env = { ...noTokens, GANTRY_API: api };
  const viaFile = await runGantry(['get', 'nodes', '--token-file', join(dataDir, 'admin-token')], { env });
  assert.equal(viaFile.code, 0, viaFile.stderr);
  const viaEnv = await runGantry(['get', 'nodes'], { env: { ...env, GANTRY_TOKEN: read } });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  const viaDataDir = await runGantry(['get', 'nodes'], { env: { ...env, GANTRY_DATA_DIR: dataDir } });
  assert.equal(viaDataDir.code, 0, viaDataDir.stderr);
  const none = await runGantry(['get', 'nodes'], { env, cwd: tmpdir() });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /a bearer token is required.*GANTRY_TOKEN/);
  const readOnly = await runGantry(['sync'], { env: { ...env, GANTRY_TOKEN: read } });
  assert.equal(readOnly.code, 1);
  assert.match(readOnly.stderr, /read role; this needs admin/);
});

test('webhooks have their own listener, serving only POST /webhooks/*; the API port serves no webhooks', async () => {
  const body = JSON.stringify({ zen: 'hello' });
  const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  const ping = await fetch(`${hooks}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'access-1', 'x-hub-signature-256': signature }, body });
  assert.equal(ping.status, 200);
  assert.deepEqual(await ping.json(), { ok: true, pong: true });
  const unsigned = await fetch(`${hooks}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body });
  assert.equal(unsigned.status, 401);
  for (const path of ['/api/v1/status', '/healthz', '/']) {
    assert.equal((await fetch(hooks + path, { headers: { authorization: `Bearer ${admin}` } })).status, 404, `webhook port: GET ${path}`);
  }
  assert.equal((await fetch(`${hooks}/api/v1/sync`, { method: 'POST', headers: { authorization: `Bearer ${admin}` } })).status, 404);
  assert.equal((await call('/webhooks/github', { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-hub-signature-256': signature }, body })).status, 404, 'API port: no webhooks');
  assert.match(reconciler.output(), new RegExp(`webhooks on ${hooks.replace(/[.]/g, '\\.')}/webhooks/`));
});

test('no token, the webhook secret included, appears in the output or on any command line', async () => {
  const out = reconciler.output();
  for (const secret of [admin, read, SECRET, TEST_ADMIN_TOKEN, TEST_READ_TOKEN]) {
    assert.ok(!out.includes(secret), 'a secret in the reconciler output');
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      assert.ok(!cmdline.includes(secret), `a secret on the command line of pid ${pid}`);
    }
  }
});
