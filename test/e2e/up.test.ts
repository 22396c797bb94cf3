import assert from 'node:assert/strict';
import { test } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../cli/redis-server.ts';
import type { InstanceView } from '../../reconciler/api/views.ts';
import { spawnGantry } from '../helpers/gantry-process.ts';
import { waitFor } from '../helpers/wait.ts';
import { httpGet, pidAlive } from '../helpers/agent-fixtures.ts';

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
  const dataDir = mkdtempSync(join(tmpdir(), 'gantry-up-'));
  const port = await freePort();
  const up = spawnGantry(['up', '--port', String(port), '--data-dir', dataDir]);
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
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/instances`);
    const { items } = (await res.json()) as { items: InstanceView[] };
    const pids = items.map((i) => i.pid!).filter(Boolean);
    assert.equal(pids.length, 4); // web x3 + worker
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
    rmSync(dataDir, { recursive: true, force: true });
  }
});
