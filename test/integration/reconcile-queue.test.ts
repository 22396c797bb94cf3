import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { ReconcileQueue } from '../../reconciler/controller/reconcile-queue.ts';
import type { ReconcileDecision } from '../../reconciler/controller/reconcile-outcome.ts';
import { StalledError, WaitingError } from '../../lib/errors/index.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
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
  const q = new ReconcileQueue(redis, url, new Store(redis, keys), async (key) => {
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
  const first = new ReconcileQueue(redis, url, new Store(redis, keys), async () => ({ requeueAfterMs: 1_500 }));
  first.add('shop/web');
  const { Queue } = await import('bullmq');
  const probe = new Queue('reconcile', { connection: redis, prefix: keys.bullPrefix });
  try {
    await waitFor(async () => (await probe.getDelayedCount()) === 1, { what: 'delayed follow-up' });
    await first.stop(); // the reconciler goes away
    const ran: string[] = [];
    const second = new ReconcileQueue(redis, url, new Store(redis, keys), async (key) => {
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

test('a failing reconcile is retried with backoff until it succeeds; waiting is no failure', async () => {
  const keys = createKeys(freshPrefix());
  let calls = 0;
  const decisions: ReconcileDecision[] = [];
  const q = new ReconcileQueue(
    redis,
    url,
    new Store(redis, keys),
    async () => {
      calls++;
      if (calls === 1 || calls === 2 || calls === 4) throw new Error('transient');
      if (calls === 3) throw new WaitingError('NOT_PLACED', 'not there yet', 50);
    },
    // The jitter's midpoint: the delays are the bare exponential ones.
    { onError: (_k, _e, d) => decisions.push(d), random: () => 0.5 },
  );
  try {
    q.add('default/api');
    await waitFor(() => calls === 5, { what: 'fifth attempt' });
    assert.deepEqual(decisions, [
      { action: 'backoff', afterMs: 100, failures: 1 },
      { action: 'backoff', afterMs: 200, failures: 2 },
      { action: 'requeue', afterMs: 50, reason: 'waiting' },
      // The wait ended the run of failures: counting starts again.
      { action: 'backoff', afterMs: 100, failures: 1 },
    ]);
  } finally {
    await q.stop();
  }
});

test('a stalled reconcile is not retried, and the next trigger runs it again', async () => {
  const keys = createKeys(freshPrefix());
  let calls = 0;
  const decisions: ReconcileDecision[] = [];
  const q = new ReconcileQueue(
    redis,
    url,
    new Store(redis, keys),
    async () => {
      calls++;
      if (calls === 1) throw new StalledError('SCHEMA', 'needs a new commit');
    },
    { onError: (_k, _e, d) => decisions.push(d) },
  );
  const { Queue } = await import('bullmq');
  const probe = new Queue('reconcile', { connection: redis, prefix: keys.bullPrefix });
  try {
    q.add('default/api');
    await waitFor(() => decisions.length === 1, { what: 'first run stalled' });
    assert.deepEqual(decisions, [{ action: 'terminal' }]);
    // No job is left for the key (none delayed, none waiting): nothing will run it again by itself.
    await waitFor(async () => Object.values(await probe.getJobCounts()).every((n) => n === 0), { what: 'queue empty' });
    assert.equal(calls, 1);
    q.add('default/api');
    await waitFor(() => calls === 2, { what: 'run after a new trigger' });
  } finally {
    await probe.close();
    await q.stop();
  }
});
