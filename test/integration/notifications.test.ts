import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { connectRedis } from '../../state/connection.ts';
import { EventLog, type NewEvent } from '../../state/events.ts';
import { createKeys } from '../../state/keys.ts';
import { Notifier, type NotificationResult } from '../../reconciler/notifications/notifier.ts';
import { parseNotificationConfig } from '../../reconciler/notifications/notification-config.ts';
import { createLogger } from '../../reconciler/log.ts';
import { freePort } from '../../cli/redis-server.ts';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { runGantry, spawnGantry } from '../helpers/gantry-process.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Notifications from the events stream in a real Redis to real HTTP receivers on 127.0.0.1:
 * filters, the Slack format, retries with backoff, no retry on 4xx, the rate limit, the cursor
 * across restarts, no history replayed, and no secret URL in any log line. Then the reconciler
 * binary with a notifications file, sending a rejected commit, and a bad file refused in one line.
 */

interface Received {
  path: string;
  body: Record<string, unknown>;
}

let redisUrl: string;
let redis: Redis;
let receiver: Server;
let base: string;
const received: Received[] = [];
/** Answers for a path, used in order; then 200. */
const scripted = new Map<string, number[]>();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let b = '';
    req.on('data', (d) => (b += d));
    req.on('end', () => resolve(b));
  });
}

before(async () => {
  redisUrl = (await testRedis()).url;
  redis = connectRedis(redisUrl, 'notifications-test');
  receiver = createServer(async (req, res) => {
    const path = req.url ?? '';
    const body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    const status = scripted.get(path)?.shift() ?? 200;
    received.push({ path, body });
    res.writeHead(status, status === 429 ? { 'retry-after': '0' } : {}).end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
});

after(async () => {
  redis?.disconnect();
  await new Promise<void>((r) => receiver.close(() => r()));
});

const at = (path: string) => received.filter((r) => r.path === path);
const reasonsAt = (path: string) => at(path).map((r) => ((r.body.event ?? {}) as { reason?: string }).reason ?? (r.body.text as string));

test('filters, Slack, retries, no retry on 4xx, the rate limit, the cursor across restarts, and no history', async () => {
  const keys = createKeys(freshPrefix());
  const events = new EventLog(redis, keys);
  const ev = (reason: string, object: string, type: 'Normal' | 'Warning' = 'Warning'): NewEvent => ({ type, reason, object, message: `${reason} of ${object}` });
  // History: recorded before the notifier ever ran, never sent.
  await events.recordAll([ev('RolledBack', 'deployment/shop/old')]);

  const secretPath = '/slack/T000/B000/s3cr3t-slack-token';
  const config = parseNotificationConfig(`
receivers:
  - name: shop-rollbacks
    webhook: { url: '${base}/shop' }
    events: [RolledBack]
    namespaces: [shop]
  - name: chat
    slack: { urlEnv: TEST_SLACK_URL }
    events: [NodeNotReady]
  - name: flaky
    webhook: { url: '${base}/flaky' }
    events: [CommitRejected]
    maxAttempts: 4
  - name: wrong
    webhook: { url: '${base}/wrong' }
    events: [CommitRejected]
  - name: limited
    webhook: { url: '${base}/limited' }
    events: [CrashLoopBackOff]
    maxPerMinute: 2
`);
  scripted.set('/flaky', [500, 429, 503]);
  scripted.set('/wrong', [400]);
  const logs: string[] = [];
  const results: [string, NotificationResult][] = [];
  const make = () =>
    new Notifier({
      events,
      config,
      env: { TEST_SLACK_URL: `${base}${secretPath}` },
      version: '9.9.9',
      log: createLogger('notify-test', (s) => logs.push(s)),
      pollMs: 50,
      onResult: (r, _reason, result) => results.push([r, result]),
    });
  let notifier = make();
  notifier.start();
  await waitFor(async () => (await events.notifiedUpTo()) !== undefined, { what: 'the cursor set at the newest event' });

  await events.recordAll([
    ev('RolledBack', 'deployment/shop/web'),
    ev('RolledBack', 'deployment/other/web'),
    ev('RolloutComplete', 'deployment/shop/web', 'Normal'),
    ev('NodeNotReady', 'node/node-1'),
    ev('CommitRejected', 'source'),
    ...Array.from({ length: 5 }, (_, i) => ev('CrashLoopBackOff', `instance/shop.web-abc-${i}`)),
  ]);
  await waitFor(() => results.filter(([r]) => r === 'flaky' || r === 'wrong').length === 2 && results.filter(([r]) => r === 'limited').length === 5, { timeoutMs: 20_000, what: 'every receiver done' });

  assert.deepEqual(reasonsAt('/shop'), ['RolledBack'], 'only shop rollbacks, and not the one from before the start');
  assert.deepEqual((at('/shop')[0]!.body.event as { object: string }).object, 'deployment/shop/web');
  assert.equal(at('/shop')[0]!.body.version, '9.9.9');
  assert.equal(at(secretPath).length, 1);
  assert.match(String(at(secretPath)[0]!.body.text), /^:warning: \*NodeNotReady\* `node\/node-1`/);
  // 500, 429, 503, then 200: four attempts, one delivery.
  assert.equal(at('/flaky').length, 4);
  assert.deepEqual(results.filter(([r]) => r === 'flaky'), [['flaky', 'sent']]);
  // A 400 is not retried.
  assert.equal(at('/wrong').length, 1);
  assert.deepEqual(results.filter(([r]) => r === 'wrong'), [['wrong', 'failed']]);
  // Two per minute: two sent, three dropped.
  assert.equal(at('/limited').length, 2);
  assert.deepEqual(results.filter(([r]) => r === 'limited').map(([, x]) => x).sort(), ['dropped', 'dropped', 'dropped', 'sent', 'sent']);
  assert.ok(logs.some((l) => l.includes('receiver wrong failed: HTTP 400')));
  assert.ok(logs.some((l) => l.includes('limited is over its 2 per minute')));

  // A restart goes on from the cursor: what came meanwhile is sent, nothing twice.
  await waitFor(async () => (await events.notifiedUpTo()) === (await events.lastId()), { what: 'the cursor at the last event' });
  await notifier.stop();
  await events.recordAll([ev('RolledBack', 'deployment/shop/api')]);
  notifier = make();
  notifier.start();
  await waitFor(() => at('/shop').length === 2, { what: 'the event recorded while stopped' });
  assert.deepEqual(at('/shop').map((r) => (r.body.event as { object: string }).object), ['deployment/shop/web', 'deployment/shop/api']);
  await notifier.stop();
  assert.equal(at(secretPath).length, 1, 'nothing sent twice');

  for (const line of logs) assert.ok(!line.includes('s3cr3t'), `a log line holds the Slack URL: ${line}`);
});

test('the reconciler binary: a notifications file sends a rejected commit; a bad file is one line and exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-notify-'));
  let repo: TestRepo | undefined;
  try {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'receivers: [{ name: x, webhook: { url: "ftp://nope" } }]\n');
    const refused = await runGantry(['reconciler', '--repo', dir, '--notifications-file', bad]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /receivers\[0\]\.webhook\.url must be an http\(s\) URL/);

    const file = join(dir, 'notifications.yaml');
    writeFileSync(file, `receivers:\n  - name: ci\n    webhook: { url: '${base}/binary' }\n    events: [CommitRejected, CommitApplied]\n`);
    repo = await createRepo();
    await repo.commitFiles({ 'README.md': 'empty' }, 'initial');
    const port = await freePort();
    const rec = spawnGantry(['reconciler', '--redis', redisUrl, '--prefix', freshPrefix(), '--repo', repo.dir, '--port', String(port), '--data-dir', join(dir, 'data'), '--notifications-file', file]);
    try {
      await waitFor(() => rec.output().includes('API on'), { timeoutMs: 20_000, what: 'the reconciler up' });
      await repo.commitFiles({ 'broken.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: b }\nspec: { replicas: many }\n' }, 'broken');
      const got = await waitFor(() => at('/binary').find((r) => (r.body.event as { reason: string }).reason === 'CommitRejected'), { timeoutMs: 20_000, what: 'CommitRejected delivered' });
      assert.match((got.body.event as { message: string }).message, /broken\.yaml:4/);
    } finally {
      await rec.stop();
    }
  } finally {
    await repo?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
