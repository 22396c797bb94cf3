import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nodeState } from '../../reconciler/controller/node-lifecycle.ts';

const t = { graceMs: 20_000, evictionMs: 30_000 };
const cases: [string, number, ReturnType<typeof nodeState>][] = [
  ['fresh heartbeat', 0, 'Ready'],
  ['silent exactly the grace period', 20_000, 'Ready'],
  ['silent past the grace period', 20_001, 'NotReady'],
  ['silent up to grace + eviction', 50_000, 'NotReady'],
  ['silent past grace + eviction', 50_001, 'Evicted'],
  ['a heartbeat from the future (clock skew) is fresh', -5_000, 'Ready'],
];
for (const [name, silentMs, want] of cases) {
  test(`nodeState: ${name}`, () => assert.equal(nodeState(1_000_000 - silentMs, 1_000_000, t), want));
}

import { disruptionsAllowed } from '../../reconciler/controller/node-drain.ts';

const budgets: [string, number, number | string, number, number][] = [
  ['4 replicas, maxUnavailable 1, all ready', 4, 1, 4, 1],
  ['one already down: none more', 4, 1, 3, 0],
  ['25% of 4 = 1', 4, '25%', 4, 1],
  ['25% of 3 rounds down to 0', 3, '25%', 3, 0],
  ['extra ready instances (surge) add budget', 4, 1, 5, 2],
];
for (const [name, replicas, maxUnavailable, ready, want] of budgets) {
  test(`disruptionsAllowed: ${name}`, () => assert.equal(disruptionsAllowed(replicas, maxUnavailable, ready), want));
}
