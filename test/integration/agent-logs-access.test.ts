import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { ensureClusterSecret } from '../../state/cluster-secret.ts';
import { waitFor } from '../helpers/wait.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';

/**
 * An agent's log server serves the reconciler only (the cluster's logs credential, in Redis),
 * caps its followers, and does not buffer for a follower that does not read.
 */

function agentTest(name: string, body: (w: AgentWorld) => Promise<void>): void {
  test(name, async () => {
    const world = await AgentWorld.create();
    try {
      await body(world);
    } finally {
      await world.cleanup();
    }
  });
}

async function logsPort(w: AgentWorld): Promise<number> {
  return waitFor(async () => (await w.nodeRecord())?.logsPort, { what: 'the logs port' });
}

async function startChatty(w: AgentWorld, script: string) {
  const record = instanceRecord(w.node, { containers: [container({ command: [process.execPath, '-e', script], ports: [] })] });
  await w.bind(record);
  await w.nudge(record.id);
  await waitFor(async () => (await w.status(record.id))?.phase === 'Running', { what: `${record.id} Running` });
  return record;
}

agentTest('without the cluster credential, or with another, the log server answers 401 and serves nothing', async (w) => {
  await w.startAgent({ docker: false });
  const port = await logsPort(w);
  const record = await startChatty(w, "setInterval(() => console.log('secret-output'), 50)");
  const url = `http://127.0.0.1:${port}/logs/${record.id}?tail=5`;
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic eDp5' }] as Record<string, string>[]) {
    const res = await fetch(url, { headers });
    assert.equal(res.status, 401, JSON.stringify(headers));
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="gantry-agent"');
    assert.ok(!(await res.text()).includes('secret-output'));
  }
  const credential = await ensureClusterSecret(w.redis, w.keys.logsSecret);
  const ok = await waitFor(async () => {
    const res = await fetch(url, { headers: { authorization: `Bearer ${credential}` } });
    const text = await res.text();
    return res.status === 200 && text.includes('secret-output') ? text : undefined;
  }, { what: 'logs with the credential' });
  assert.match(ok, /secret-output/);
  // A credential re-created in Redis (it lost its data) is picked up by the agent.
  await w.redis.del(w.keys.logsSecret);
  const renewed = await ensureClusterSecret(w.redis, w.keys.logsSecret);
  assert.notEqual(renewed, credential);
  assert.equal((await fetch(url, { headers: { authorization: `Bearer ${renewed}` } })).status, 200);
  assert.equal((await fetch(url, { headers: { authorization: `Bearer ${credential}` } })).status, 401, 'the old one no longer works');
});

agentTest('followers are capped: beyond the cap 429, and a freed place is taken again', async (w) => {
  await w.startAgent({ docker: false, logsMaxFollowers: 2 });
  const port = await logsPort(w);
  const record = await startChatty(w, "setInterval(() => console.log('tick'), 50)");
  const auth = { authorization: `Bearer ${await ensureClusterSecret(w.redis, w.keys.logsSecret)}` };
  const url = `http://127.0.0.1:${port}/logs/${record.id}?follow=1&tail=0`;
  const first = new AbortController();
  const second = new AbortController();
  const a = await fetch(url, { headers: auth, signal: first.signal });
  const b = await fetch(url, { headers: auth, signal: second.signal });
  assert.deepEqual([a.status, b.status], [200, 200]);
  const third = await fetch(url, { headers: auth });
  assert.equal(third.status, 429);
  assert.match(((await third.json()) as { error: string }).error, /2 followers already/);
  assert.equal((await fetch(`http://127.0.0.1:${port}/logs/${record.id}?tail=1`, { headers: auth })).status, 200, 'a plain read is not a follower');
  first.abort();
  const again = await waitFor(async () => {
    const res = await fetch(url, { headers: auth });
    if (res.status === 200) return res;
    await res.body?.cancel();
    return undefined;
  }, { what: 'a place freed by the follower that left' });
  await again.body?.cancel();
  second.abort();
});

agentTest('a follower that does not read is not fed: the agent buffers at most the cap for it', async (w) => {
  const cap = 256 * 1024;
  await w.startAgent({ docker: false, logsMaxBufferedBytes: cap });
  const port = await logsPort(w);
  // 64 MiB of output in a few seconds, then quiet.
  const record = await startChatty(w, "const line = 'x'.repeat(1023) + '\\n'; let n = 0; const t = setInterval(() => { for (let i = 0; i < 1024; i++) process.stdout.write(line); if (++n === 64) clearInterval(t); }, 20); setInterval(() => {}, 1e6)");
  const auth = { authorization: `Bearer ${await ensureClusterSecret(w.redis, w.keys.logsSecret)}` };
  const before = process.memoryUsage().arrayBuffers;
  let received = 0;
  const req = request({ host: '127.0.0.1', port, path: `/logs/${record.id}?follow=1&tail=0`, headers: auth });
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
  assert.equal(res.statusCode, 200);
  res.on('data', (chunk: Buffer) => {
    received += chunk.length;
    res.pause(); // read one chunk, then stop reading
  });
  // Wait until the writer is done: its log holds all 64 MiB.
  await waitFor(async () => {
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(`${w.instanceDir(record.id)}/${record.containers[0]!.name}.log`)).catch(() => ({ size: 0 }));
    return size >= 64 * 1024 * 1024;
  }, { what: '64 MiB written', timeoutMs: 60_000 });
  // Without the cap, every poll of the server would have read (and buffered) all new output by now.
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 16 * 1024 * 1024, `the agent buffered ${Math.round(grown / 1024 / 1024)} MiB for a follower that does not read`);
  assert.ok(received < 8 * 1024 * 1024, `the follower got ${received} bytes while not reading`);
  req.destroy();
});
