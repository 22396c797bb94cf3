import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { startAgent, type AgentHandle } from '../../agents/agent.ts';
import type { InstanceStatus } from '../../state/records/instance.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { startRedisServer, type RedisServerHandle } from '../../cli/redis-server.ts';
import { instanceRecord, pidAlive } from '../helpers/agent-fixtures.ts';
import { freshPrefix } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * An agent cut off from Redis: a redis-server of its own, frozen with SIGSTOP (connections stay
 * open, nothing answers) and thawed with SIGCONT.
 */

let server: RedisServerHandle;
let redisDir: string;
let redis: Redis;

before(async () => {
  redisDir = mkdtempSync(join(tmpdir(), 'gantry-redis-disconnect-'));
  server = await startRedisServer({ dir: redisDir });
  redis = connectRedis(server.url, 'disconnect-test');
});

after(async () => {
  server.process.kill('SIGCONT');
  await redis.quit();
  server.process.kill('SIGKILL');
  rmSync(redisDir, { recursive: true, force: true });
});

async function world(stopAfterDisconnectMs?: number) {
  const prefix = freshPrefix();
  const keys = createKeys(prefix);
  const dataDir = mkdtempSync(join(tmpdir(), 'gantry-agent-disconnect-'));
  const node = `node-${prefix}`;
  const agent: AgentHandle = await startAgent({ redisUrl: server.url, prefix, node, cpuMilli: 4000, memoryBytes: 8 * 1024 ** 3, dataDir, resyncMs: 500, heartbeatMs: 200, adoptPollMs: 100, ...(stopAfterDisconnectMs ? { stopAfterDisconnectMs } : {}) });
  const record = instanceRecord(node, { terminationGracePeriodSeconds: 1 });
  await redis.multi().set(keys.instance(record.id), JSON.stringify(record)).sadd(keys.instances, record.id).sadd(keys.nodeInstances(node), record.id).exec();
  const status = async () => JSON.parse((await redis.get(keys.instanceStatus(record.id))) ?? 'null') as InstanceStatus | null;
  const first = await waitFor(async () => {
    const s = await status();
    return s?.phase === 'Running' ? s : undefined;
  }, { what: 'Running' });
  return {
    pid: first.pid!,
    keys,
    node,
    status,
    async cleanup() {
      await agent.stop({ stopInstances: true });
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

test('by default an agent cut off from Redis keeps its instances running, and restarts none when Redis returns', async () => {
  const w = await world();
  try {
    server.process.kill('SIGSTOP');
    // Longer than a few heartbeats and resyncs: nothing answers, nothing may stop.
    const until = Date.now() + 2_000;
    await waitFor(() => Date.now() > until || !pidAlive(w.pid), { timeoutMs: 5_000 });
    assert.ok(pidAlive(w.pid), 'still running without Redis');
    server.process.kill('SIGCONT');
    const thawed = Date.now();
    await waitFor(async () => Number(await redis.get(w.keys.nodeHeartbeat(w.node))) >= thawed, { what: 'heartbeats again' });
    assert.ok(pidAlive(w.pid));
    const s = await w.status();
    assert.equal(s?.pid, w.pid);
    assert.equal(s?.restarts, 0);
  } finally {
    server.process.kill('SIGCONT');
    await w.cleanup();
  }
});

test('--stop-after-disconnect: instances stop after that long without Redis, and start again when it returns', async () => {
  const w = await world(1_000);
  try {
    const cutAt = Date.now();
    server.process.kill('SIGSTOP');
    await waitFor(() => !pidAlive(w.pid), { timeoutMs: 10_000, what: 'the instance stopped while Redis is away' });
    // Counted from the last answer, which came up to one ping (250 ms) before the freeze.
    assert.ok(Date.now() - cutAt >= 700, `stopped after ${Date.now() - cutAt} ms, before the limit`);
    server.process.kill('SIGCONT');
    const back = await waitFor(async () => {
      const s = await w.status();
      return s?.phase === 'Running' && s.pid !== w.pid ? s : undefined;
    }, { what: 'started again once Redis answers' });
    assert.ok(pidAlive(back.pid!));
  } finally {
    server.process.kill('SIGCONT');
    await w.cleanup();
  }
});
