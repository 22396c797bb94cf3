import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clampDelay, MAX_TIMER_MS } from '../../lib/timer.ts';
import { TokenBucket } from '../../lib/token-bucket.ts';
import { WaitingError } from '../../lib/errors/index.ts';
import { decideNext } from '../../reconciler/controller/reconcile-outcome.ts';
import { selectNode, type NodeCandidate } from '../../reconciler/scheduler/select-node.ts';
import { ContainerProbes, probeDelayMs } from '../../agents/probe-runner.ts';
import type { ContainerSpec, ProbeSpec } from '../../state/records/instance.ts';
import { DEFAULT_MAX_INSTANCES } from '../../state/records/node.ts';
import { firstErrors, joinErrors, MAX_REPORTED_ERRORS } from '../../state/records/status.ts';
import { node } from '../helpers/records.ts';

/** Limits that hold at run time (issue 11, section 4): timers, the instance cap, rate limits, error lists. */

test('clampDelay: what a Node timer can hold, never more, never negative', () => {
  assert.equal(MAX_TIMER_MS, 2_147_483_647);
  assert.equal(clampDelay(1500), 1500);
  assert.equal(clampDelay(3_000_000 * 1000), MAX_TIMER_MS);
  assert.equal(clampDelay(Infinity), MAX_TIMER_MS);
  assert.equal(clampDelay(-5), 0);
  assert.equal(clampDelay(Number.NaN), 0);
});

const probe = (over: Partial<ProbeSpec> = {}): ProbeSpec => ({ tcpSocket: { port: 1 }, initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, ...over });

test('the probe runner never arms a timer beyond 2^31-1 ms, whatever a stored record says', () => {
  assert.equal(probeDelayMs(probe({ periodSeconds: 3_000_000 }), undefined, 0), MAX_TIMER_MS);
  assert.equal(probeDelayMs(probe({ initialDelaySeconds: 3_000_000 }), 1_000, 1_000), MAX_TIMER_MS);
  assert.equal(probeDelayMs(probe({ initialDelaySeconds: 5 }), 1_000, 3_000), 3_000);
  assert.equal(probeDelayMs(probe({ periodSeconds: 10 }), undefined, 0), 10_000);
});

test('a container with absurd probe periods starts without a TimeoutOverflowWarning (which would make a hot loop)', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const spec: ContainerSpec = {
      name: 'main', command: ['x'], args: [], env: [], ports: [], cpuMilli: 0, memoryBytes: 0,
      livenessProbe: probe({ initialDelaySeconds: 3_000_000, periodSeconds: 3_000_000, timeoutSeconds: 3_000_000 }),
      readinessProbe: probe({ initialDelaySeconds: 10_000_000 }),
    };
    let checks = 0;
    const probes = new ContainerProbes(spec, { address: '127.0.0.1', hostPort: (p) => p, exec: async () => ({ ok: (checks++, true) }) }, () => {}, () => {});
    probes.start(Date.now());
    // Warnings are emitted on the next tick after the setTimeout that overflowed.
    await new Promise((r) => setImmediate(r));
    probes.stop();
    assert.deepEqual(warnings.filter((w) => w === 'TimeoutOverflowWarning'), []);
    assert.equal(checks, 0);
  } finally {
    process.off('warning', onWarning);
  }
});

test('decideNext clamps requeue delays that come from manifests (deadlines, pauses)', () => {
  assert.deepEqual(decideNext({ ok: true, outcome: { requeueAfterMs: 1e15 } }, 0), { action: 'requeue', afterMs: MAX_TIMER_MS, reason: 'requested' });
  assert.deepEqual(decideNext({ ok: false, error: new WaitingError('NOT_PLACED', 'later', 1e15) }, 0), { action: 'requeue', afterMs: MAX_TIMER_MS, reason: 'waiting' });
});

const view = (name: string, instances: number, maxInstances?: number): NodeCandidate => ({
  record: node(name, maxInstances === undefined ? {} : { maxInstances }),
  alloc: { cpuMilli: 0, memoryBytes: 0, instances },
  ready: true,
  sameDeployment: 0,
});
const inst = { runtime: 'process' as const, nodeSelector: {}, cpuMilli: 0, memoryBytes: 0 };

test('selectNode: a node takes at most maxInstances (default 110, as maxPods), even when cpu and memory are free', () => {
  assert.equal(DEFAULT_MAX_INSTANCES, 110);
  assert.deepEqual(selectNode(inst, [view('a', 109)]), { node: 'a', ranked: ['a'] });
  assert.deepEqual(selectNode(inst, [view('a', 110)]), { reason: '0/1 nodes available: 1 too many instances' });
  assert.deepEqual(selectNode(inst, [view('a', 3, 3), view('b', 110), view('c', 110, 200)]), { node: 'c', ranked: ['c'] });
  assert.deepEqual(selectNode(inst, [view('a', 3, 3), view('b', 1, 1)]), { reason: '0/2 nodes available: 2 too many instances' });
});

test('TokenBucket: a burst, then one per refill interval; a clock that goes back neither fills nor drains', () => {
  const b = new TokenBucket(3, 6, 0); // one more every 10 s
  assert.deepEqual([b.take(0), b.take(0), b.take(0)], [0, 0, 0]);
  assert.equal(b.take(0), 10_000);
  assert.equal(b.take(4_000), 6_000);
  assert.equal(b.take(10_000), 0);
  assert.equal(b.take(10_000), 10_000);
  assert.equal(b.take(5_000), 10_000);
  assert.deepEqual([b.take(1_000_000), b.take(1_000_000), b.take(1_000_000), b.take(1_000_000) > 0], [0, 0, 0, true]);
  assert.throws(() => new TokenBucket(0, 1), RangeError);
});

test('firstErrors and joinErrors: the first 100 errors and how many more there are', () => {
  const all = Array.from({ length: 100_000 }, (_, i) => `e${i}`);
  const { errors, errorCount } = firstErrors(all);
  assert.equal(MAX_REPORTED_ERRORS, 100);
  assert.equal(errors.length, 100);
  assert.equal(errorCount, 100_000);
  assert.match(joinErrors(errors, errorCount), /^e0; e1; .*; e99; and 99900 more$/);
  assert.equal(joinErrors(['a', 'b']), 'a; b');
  assert.equal(joinErrors(['a'], 3, '\n'), 'a\nand 2 more');
});
