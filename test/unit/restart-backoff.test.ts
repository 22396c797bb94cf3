import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_BACKOFF, nextBackoffStep, restartDelayMs } from '../../agents/restart-backoff.ts';

test('restart delays: at once, then 10 s doubling to a 5 min cap', () => {
  const delays = [0, 1, 2, 3, 4, 5, 6, 7, 8, 60, 2000].map((step) => restartDelayMs(step, DEFAULT_BACKOFF));
  assert.deepEqual(delays, [0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000, 300_000]);
});

test('configurable start and cap', () => {
  const cfg = { initialMs: 200, maxMs: 1_000, resetMs: 600_000 };
  assert.deepEqual([1, 2, 3, 4, 5].map((s) => restartDelayMs(s, cfg)), [200, 400, 800, 1_000, 1_000]);
});

test('a run of 10 min clean resets the sequence; shorter runs and failed starts continue it', () => {
  const t = 1_000_000_000;
  assert.equal(nextBackoffStep(5, t, t + 600_000, DEFAULT_BACKOFF), 1);
  assert.equal(nextBackoffStep(5, t, t + 599_999, DEFAULT_BACKOFF), 6);
  assert.equal(nextBackoffStep(0, t, t + 1, DEFAULT_BACKOFF), 1);
  assert.equal(nextBackoffStep(2, undefined, t, DEFAULT_BACKOFF), 3);
  // After a reset the next restart is immediate again.
  assert.equal(restartDelayMs(nextBackoffStep(9, t, t + 700_000, DEFAULT_BACKOFF) - 1, DEFAULT_BACKOFF), 0);
});
