import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView } from '../../reconciler/api/views.ts';
import { runGantry, spawnGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet, pidAlive } from '../helpers/agent-fixtures.ts';
import { apiFetch } from '../helpers/api-auth.ts';
import { connectRedis } from '../../state/connection.ts';

function processesMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text) && pidAlive(Number(e));
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** README's run command, as a newcomer runs it: everything from nothing, then Ctrl-C. */
test('gantry up brings up examples-repo answering HTTP, and Ctrl-C leaves no process behind', async () => {
  // A project folder with gantry up's default data dir in it, and none of the tests' API tokens in
  // the environment: up must make its own admin token, and the CLI find it.
  const project = mkdtempSync(join(tmpdir(), 'gantry-up-'));
  const dataDir = join(project, '.gantry');
  const port = await freePort();
  const noTokens = { GANTRY_API_ADMIN_TOKEN: '', GANTRY_API_READ_TOKEN: '', GANTRY_TOKEN: '' };
  const up = spawnGantry(['up', '--port', String(port), '--data-dir', dataDir], { env: noTokens, cwd: project });
  try {
    const line = await waitFor(() => /shop\/web: 3\/3 ready: (.*)/.exec(up.output())?.[1], { timeoutMs: 60_000, what: 'web ready line' });
    assert.ok(existsSync(join(dataDir, 'repo', '.git')), 'a working repository was created under the data dir');
    assert.match(up.output(), /try: cd .*repo && sed -i/);
    const urls = line.trim().split(' ');
    assert.equal(urls.length, 3);
    for (const u of urls) {
      const body = await waitFor(() => httpGet(Number(new URL(u).port)), { what: `answer from ${u}` });
      assert.match(body ?? '', /^hello from shop\.web-[0-9a-f]{10}-\d \(Gantry says hi\)/);
    }
    // The README's `curl http://127.0.0.1:8000/`: the shop/web Service, through node-1's proxy.
    const svc = await waitFor(() => /service shop\/web: http:\/\/127\.0\.0\.1:(\d+)\/ -> /.exec(up.output())?.[1], { what: 'service line' });
    assert.equal(svc, '8000');
    const viaService = await waitFor(() => httpGet(8000), { what: 'answer through the service' });
    assert.match(viaService, /^hello from shop\.web-[0-9a-f]{10}-\d \(Gantry says hi\)/);
    // The catalog pod: an init container seeded the shared volume, the renderer sidecar rendered the
    // ConfigMap file into it after reaching the server over the pod's ports, the server serves it.
    assert.match(up.output(), /shop\/catalog: 1\/1 ready/);
    const catalog = await waitFor(async () => {
      const body = await httpGet(8001);
      return body?.startsWith('catalog (server ok)') ? body : undefined;
    }, { what: 'the catalog page through its service' });
    assert.equal(catalog.trim(), 'catalog (server ok): kettle, teapot, mugs');
    // The admin token up made: owner-only files, accepted by the API, found by the CLI from the
    // project folder and from inside .gantry/repo (where the README's walkthrough commits).
    for (const f of ['admin-token', 'api-tokens']) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, `${f} is 0600`);
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    assert.equal((await fetch(`http://127.0.0.1:${port}/api/v1/instances`)).status, 401, 'no token, no API');
    for (const cwd of [project, join(dataDir, 'repo')]) {
      const got = await runGantry(['get', 'deployments'], { cwd, env: { ...noTokens, GANTRY_API: `http://127.0.0.1:${port}` } });
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.stdout, /shop\s+web\s+3\/3/);
    }
    assert.ok(!up.output().includes(token), 'the token is never printed');
    // Its private Redis has a password of its own (0600 in the data dir) and the append-only file on.
    assert.equal(statSync(join(dataDir, 'redis-password')).mode & 0o777, 0o600);
    const password = readFileSync(join(dataDir, 'redis-password'), 'utf8').trim();
    const redisPort = Number(/started redis-server on redis:\/\/\*\*\*@127\.0\.0\.1:(\d+)/.exec(up.output())?.[1]);
    assert.ok(redisPort > 0, 'the redacted Redis URL is printed');
    const anonymous = connectRedis(`redis://127.0.0.1:${redisPort}`, 'up-test-anonymous');
    const authed = connectRedis(`redis://:${encodeURIComponent(password)}@127.0.0.1:${redisPort}`, 'up-test');
    try {
      await assert.rejects(anonymous.get('gantry:nodes'), /NOAUTH/);
      assert.deepEqual(await authed.config('GET', 'appendonly'), ['appendonly', 'yes']);
    } finally {
      anonymous.disconnect();
      authed.disconnect();
    }
    assert.ok(!up.output().includes(password), 'the Redis password is never printed');
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      assert.ok(!cmdline.includes(password) && !cmdline.includes(token), `a secret on the command line of pid ${pid}`);
    }
    const res = await apiFetch(`http://127.0.0.1:${port}/api/v1/instances`, { token });
    const { items } = (await res.json()) as { items: InstanceView[] };
    // Every container's process: web x3, worker, and the catalog pod's server and renderer.
    const pids = items.flatMap((i) => i.containers.map((c) => c.pid!)).filter(Boolean);
    assert.equal(pids.length, 6);
    // Redis, the reconciler and both agents carry the data dir on their command lines.
    const system = processesMentioning(dataDir);
    assert.ok(system.length >= 4, `expected redis, reconciler and 2 agents, found ${system.length}`);

    const code = await up.stop('SIGINT');
    assert.equal(code, 0);
    for (const pid of pids) assert.equal(pidAlive(pid), false, `instance process ${pid} still running after Ctrl-C`);
    assert.deepEqual(processesMentioning(dataDir), [], 'no gantry process left behind');
    assert.equal(up.child.exitCode, 0);
  } finally {
    await up.stop('SIGKILL');
    rmSync(project, { recursive: true, force: true });
  }
});
