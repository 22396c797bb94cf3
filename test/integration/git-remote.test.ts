import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { createGitSource, GitSourceError, type GitSource, type SourceConfig } from '../../reconciler/git/source.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { startGitHttpServer, type GitHttpServer } from '../helpers/git-http-server.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = 'tok-3f9a1c7e5b2d4068a1b2c3d4';

/** Every way an error can leak: message, stack, JSON, String and util.inspect. */
function renderings(err: GitSourceError): string[] {
  return [err.message, err.stack ?? '', JSON.stringify(err), String(err), inspect(err, { depth: 10 })];
}

function assertNoSecret(err: unknown, secrets: string[]): asserts err is GitSourceError {
  assert.ok(err instanceof GitSourceError, `expected GitSourceError, got ${inspect(err)}`);
  for (const text of renderings(err)) {
    for (const secret of secrets) assert.ok(!text.includes(secret), `secret leaked in: ${text}`);
  }
}

describe('remote git source over smart HTTP', () => {
  let dataDir: string;
  let repo: TestRepo;
  let open: GitHttpServer;
  let locked: GitHttpServer;
  const sources: GitSource[] = [];
  let envSeq = 0;

  function source(url: string, extra: Partial<SourceConfig> = {}): GitSource {
    const s = createGitSource({ repo: url, branch: 'main', subPath: '.', dataDir, ...extra });
    sources.push(s);
    return s;
  }
  /** A unique token env var per test, so tests never see each other's tokens. */
  function tokenEnv(value: string | undefined): string {
    const name = `GANTRY_TEST_TOKEN_${process.pid}_${++envSeq}`;
    if (value !== undefined) process.env[name] = value;
    return name;
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gantry-data-'));
    repo = await createRepo({ bare: true });
    await repo.commitFiles({ 'apps/web.yaml': 'name: web\n', 'README.md': 'hi\n' }, 'initial');
    open = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
    locked = await startGitHttpServer({ projectRoot: dirname(repo.dir), token: TOKEN });
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await Promise.all([open.close(), locked.close()]);
    await repo.cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('first resolve clones into the cache, later resolves fetch new commits', async () => {
    const url = `${open.url}/${basename(repo.dir)}`;
    const s = source(url, { subPath: 'apps' });
    assert.equal(s.kind, 'remote');
    assert.equal(s.describe(), `${url}@main:apps`);

    const first = await s.resolve();
    assert.equal(first, await repoHead(repo));
    const caches = await readdir(join(dataDir, 'git-cache'));
    assert.equal(caches.filter((d) => !d.endsWith('.partial')).length, 1);
    // Clone without checkout: a bare object store, no working files.
    assert.equal(existsSync(join(dataDir, 'git-cache', caches[0]!, 'apps')), false);
    assert.deepEqual((await s.read(first)).files.map((f) => f.path), ['apps/web.yaml']);

    const second = await repo.commitFiles({ 'apps/api.yaml': 'name: api\n' }, 'add api');
    assert.notEqual(second, first);
    assert.equal(await s.resolve(), second);
    const read = await s.read(second);
    assert.equal(read.message.trim(), 'add api');
    assert.deepEqual(read.files.map((f) => f.path), ['apps/api.yaml', 'apps/web.yaml']);
    // The old commit stays readable from the cache.
    assert.deepEqual((await s.read(first)).files.map((f) => f.path), ['apps/web.yaml']);
  });

  test('concurrent resolves share one fetch', async () => {
    const s = source(`${open.url}/${basename(repo.dir)}`);
    await s.resolve();
    let before = open.requests;
    await s.resolve();
    const oneFetch = open.requests - before;
    assert.ok(oneFetch >= 1);

    const sha = await repo.commitFiles({ 'apps/web.yaml': 'name: web\nreplicas: 2\n' });
    before = open.requests;
    const results = await Promise.all([s.resolve(), s.resolve(), s.resolve()]);
    assert.deepEqual(results, [sha, sha, sha]);
    assert.equal(open.requests - before, oneFetch);
  });

  test('token auth via the env var works; no token is AUTH_FAILED', async () => {
    const url = `${locked.url}/${basename(repo.dir)}`;
    const s = source(url, { tokenEnv: tokenEnv(TOKEN) });
    assert.equal(await s.resolve(), await repoHead(repo));

    await assert.rejects(source(url, { tokenEnv: tokenEnv(undefined), dataDir: join(dataDir, 'none') }).resolve(), (err) => {
      assertNoSecret(err, [TOKEN]);
      assert.equal(err.code, 'AUTH_FAILED');
      assert.match(err.message, /no credentials/);
      return true;
    });
  });

  test('the default token env var is GANTRY_GIT_TOKEN', async () => {
    const saved = process.env.GANTRY_GIT_TOKEN;
    process.env.GANTRY_GIT_TOKEN = TOKEN;
    try {
      const s = source(`${locked.url}/${basename(repo.dir)}`, { dataDir: join(dataDir, 'default-env') });
      assert.equal(await s.resolve(), await repoHead(repo));
    } finally {
      if (saved === undefined) delete process.env.GANTRY_GIT_TOKEN;
      else process.env.GANTRY_GIT_TOKEN = saved;
    }
  });

  test('a wrong token is AUTH_FAILED and never appears in the error', async () => {
    const wrong = 'wrong-9d8c7b6a5f4e3d2c1b0a';
    // A fresh cache (clone path) and a warm one (fetch path) must both scrub the token.
    const warmDir = join(dataDir, 'warm');
    const name = tokenEnv(TOKEN);
    await source(`${locked.url}/${basename(repo.dir)}`, { dataDir: warmDir, tokenEnv: name }).resolve();
    process.env[name] = wrong;
    for (const dir of [join(dataDir, 'cold'), warmDir]) {
      const s = source(`${locked.url}/${basename(repo.dir)}`, { dataDir: dir, tokenEnv: name });
      await assert.rejects(s.resolve(), (err) => {
        assertNoSecret(err, [wrong, TOKEN, Buffer.from(`x-access-token:${wrong}`).toString('base64')]);
        assert.equal(err.code, 'AUTH_FAILED');
        assert.equal(err.toJSON().code, 'AUTH_FAILED');
        assert.match(err.message, /credentials were rejected/);
        return true;
      });
    }
  });

  test('credentials in the URL are used for auth and redacted everywhere', async () => {
    const password = 'pw-0c1d2e3f4a5b6c7d';
    assert.notEqual(password, TOKEN);
    const good = `${locked.url.replace('http://', `http://deployer:${TOKEN}@`)}/${basename(repo.dir)}`;
    const s = source(good, { tokenEnv: tokenEnv(undefined) });
    assert.equal(s.describe(), `${locked.url.replace('http://', 'http://***@')}/${basename(repo.dir)}@main`);
    assert.ok(!s.describe().includes(TOKEN));
    assert.equal(await s.resolve(), await repoHead(repo));
    // The credential-free URL is what lands in the cache's git config.
    for (const dir of await readdir(join(dataDir, 'git-cache'))) {
      const config = await readFile(join(dataDir, 'git-cache', dir, 'config'), 'utf8').catch(() => '');
      assert.ok(!config.includes(TOKEN), 'token written to the cache config');
    }

    const bad = `${locked.url.replace('http://', `http://deployer:${password}@`)}/${basename(repo.dir)}`;
    const b = source(bad, { tokenEnv: tokenEnv(undefined), dataDir: join(dataDir, 'bad-url') });
    assert.ok(!b.describe().includes(password));
    await assert.rejects(b.resolve(), (err) => {
      assertNoSecret(err, [password, encodeURIComponent(password)]);
      assert.equal(err.code, 'AUTH_FAILED');
      assert.ok(err.message.includes('http://***@127.0.0.1'), err.message);
      return true;
    });

    // A token as the bare username (https://<token>@host/...) is sent as the password.
    const asUser = `${locked.url.replace('http://', `http://${TOKEN}@`)}/${basename(repo.dir)}`;
    const u = source(asUser, { tokenEnv: tokenEnv(undefined), dataDir: join(dataDir, 'user-token') });
    assert.ok(!u.describe().includes(TOKEN));
    assert.equal(await u.resolve(), await repoHead(repo));
  });

  test('unknown branch, missing repository and unreachable server have distinct codes', async () => {
    const url = `${open.url}/${basename(repo.dir)}`;
    await assert.rejects(source(url, { branch: 'nope', dataDir: join(dataDir, 'nb') }).resolve(), (err) => {
      return err instanceof GitSourceError && err.code === 'BRANCH_NOT_FOUND';
    });
    // Warm cache, then ask for a branch the remote does not have.
    const warm = join(dataDir, 'nb-warm');
    await source(url, { dataDir: warm }).resolve();
    await assert.rejects(source(url, { branch: 'nope', dataDir: warm }).resolve(), (err) => {
      return err instanceof GitSourceError && err.code === 'BRANCH_NOT_FOUND';
    });
    await assert.rejects(source(`${open.url}/missing.git`, { dataDir: join(dataDir, 'nr') }).resolve(), (err) => {
      return err instanceof GitSourceError && err.code === 'NOT_A_REPOSITORY';
    });
    // Port 1 on loopback: nothing listens there.
    const secret = 'sec-77aa88bb99cc';
    await assert.rejects(source(`http://u:${secret}@127.0.0.1:1/x.git`, { dataDir: join(dataDir, 'down') }).resolve(), (err) => {
      assertNoSecret(err, [secret]);
      assert.equal(err.code, 'FETCH_FAILED');
      return true;
    });
  });

  test('watch() hints on the poll interval until close()', async () => {
    const s = source(`${open.url}/${basename(repo.dir)}`, { pollIntervalMs: 20 });
    let hints = 0;
    s.watch(() => hints++);
    await waitFor(() => hints >= 3, { what: 'poll hints' });
    await s.close();
  });
});

function repoHead(r: TestRepo): Promise<string> {
  return gitAsync(['rev-parse', `refs/heads/${r.branch}`], r.dir);
}
