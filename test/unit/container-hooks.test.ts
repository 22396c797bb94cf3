import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { describeHook, runHook, type HookTarget } from '../../agents/container-hooks.ts';

/** Lifecycle hook actions: httpGet against a real server, sleep capped by the time left, exec through the runtime. */

function target(port: number, execs: string[][] = []): HookTarget {
  return {
    address: '127.0.0.1',
    hostPort: (p) => (p === 8080 ? port : p),
    exec: async (command) => {
      execs.push(command);
      return command[0] === 'true' ? { ok: true } : { ok: false, detail: 'exit 1' };
    },
  };
}

test('httpGet hooks: 2xx passes, 5xx fails; the containerPort maps to the host port', async () => {
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/drain' ? 200 : 500;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    assert.equal((await runHook({ httpGet: { path: '/drain', port: 8080 } }, target(port), 2_000)).ok, true);
    const bad = await runHook({ httpGet: { path: '/broken', port: 8080 } }, target(port), 2_000);
    assert.equal(bad.ok, false);
    assert.match(bad.detail ?? '', /500/);
  } finally {
    server.close();
  }
});

test('sleep hooks end at their seconds or when the time left runs out, whichever is first', async () => {
  assert.deepEqual(await runHook({ sleep: { seconds: 0 } }, target(1), 1_000), { ok: true });
  // 1 hour asked, 20 ms left: returns (the grace period bounds a preStop).
  assert.deepEqual(await runHook({ sleep: { seconds: 3600 } }, target(1), 20), { ok: true });
  const aborted = new AbortController();
  const pending = runHook({ sleep: { seconds: 3600 } }, target(1), 3_600_000, aborted.signal);
  aborted.abort();
  assert.deepEqual(await pending, { ok: true });
});

test('exec hooks run through the runtime; events name the action', async () => {
  const execs: string[][] = [];
  assert.equal((await runHook({ exec: { command: ['true'] } }, target(1, execs), 1_000)).ok, true);
  assert.equal((await runHook({ exec: { command: ['false'] } }, target(1, execs), 1_000)).ok, false);
  assert.deepEqual(execs, [['true'], ['false']]);
  const cases: [Parameters<typeof describeHook>[0], string][] = [
    [{ exec: { command: ['sh', '-c', 'x'] } }, 'exec sh -c x'],
    [{ httpGet: { path: '/drain', port: 8080 } }, 'httpGet /drain on port 8080'],
    [{ sleep: { seconds: 5 } }, 'sleep 5s'],
  ];
  for (const [hook, text] of cases) assert.equal(describeHook(hook), text);
});
