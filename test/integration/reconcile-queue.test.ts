import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { ReconcileQueue } from '../../reconciler/controller/reconcile-queue.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/** Deployment reconciles as BullMQ jobs against a real Redis: one in flight per key, none lost. */

let url: string;
let redis: Redis;
before(async () => {
  url = (await testRedis()).url;
  redis = connectRedis(url);
});
after(() => redis.disconnect());

test('one run in flight per deployment, and a trigger during a run gets a run after it', async () => {
  const keys = createKeys(freshPrefix());
  let inFlight = 0;
  let maxInFlight = 0;
  const runs: string[] = [];
  let release!: () => void;
  const firstRunBlocked = new Promise<void>((r) => (release = r));
  const q = new ReconcileQueue(redis, url, keys, async (key) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    runs.push(key);
    if (runs.length === 1) await firstRunBlocked;
    inFlight--;
  }, { concurrency: 4 });
  try {
    q.add('default/web');
    await waitFor(() => runs.length === 1, { what: 'first run' });
    // Triggers while the first run is still going: they must not run beside it, nor be lost.
    for (let i = 0; i < 5; i++) q.add('default/web');
    await waitFor(async () => (await redis.exists(keys.reconcileDirty('default/web'))) === 1, { what: 'dirty mark' });
    release();
    await waitFor(() => runs.length === 2, { what: 'the run after the triggers' });
    await q.idle();
    assert.equal(maxInFlight, 1);
    assert.equal(runs.length, 2, 'the five triggers coalesce into one run');
  } finally {
    await q.stop();
  }
});

test('a requeue (rollout deadline, canary pause) is a delayed job in Redis that a new reconciler runs', async () => {
  const keys = createKeys(freshPrefix());
  const first = new ReconcileQueue(redis, url, keys, async () => ({ requeueAfterMs: 1_500 }));
  first.add('shop/web');
  const { Queue } = await import('bullmq');
  const probe = new Queue('reconcile', { connection: redis, prefix: keys.bullPrefix });
  try {
    await waitFor(async () => (await probe.getDelayedCount()) === 1, { what: 'delayed follow-up' });
    await first.stop(); // the reconciler goes away
    const ran: string[] = [];
    const second = new ReconcileQueue(redis, url, keys, async (key) => {
      ran.push(key);
    });
    try {
      await waitFor(() => ran.length === 1, { timeoutMs: 10_000, what: 'delayed job run by the new reconciler' });
      assert.deepEqual(ran, ['shop/web']);
    } finally {
      await second.stop();
    }
  } finally {
    await probe.close();
  }
});

test('a failing reconcile is retried with backoff until it succeeds', async () => {
  const keys = createKeys(freshPrefix());
  let calls = 0;
  const errors: number[] = [];
  const q = new ReconcileQueue(redis, url, keys, async () => {
    calls++;
    if (calls < 3) throw new Error('transient');
  }, { onError: (_k, _e, retryIn) => errors.push(retryIn) });
  try {
    q.add('default/api');
    await waitFor(() => calls === 3, { what: 'third attempt' });
    assert.deepEqual(errors, [100, 200]);
  } finally {
    await q.stop();
  }
});
