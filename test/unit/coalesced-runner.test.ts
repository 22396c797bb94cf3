import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoalescedRunner, RunnerStoppedError } from '../../lib/coalesced-runner.ts';

/**
 * A task whose runs are held until the test releases them: `started` counts runs begun, `inFlight`
 * and `maxInFlight` prove there is never more than one, and each run resolves with its number.
 */
function gatedTask(fail: (n: number) => boolean = () => false) {
  const gates: (() => void)[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const state = { started: 0, inFlight: 0, maxInFlight: 0 };
  const task = async (): Promise<number> => {
    const n = ++state.started;
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    for (const w of waiters.filter((w) => w.n <= n)) w.resolve();
    await new Promise<void>((resolve) => gates.push(resolve));
    state.inFlight--;
    if (fail(n)) throw new Error(`run ${n} failed`);
    return n;
  };
  /** Resolves once run `n` has started. */
  const startedRun = (n: number) => (state.started >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })));
  /** Lets the run in progress finish. */
  const release = () => gates.shift()!();
  return { task, state, startedRun, release };
}

test('one run at a time; any number of pokes during a run give exactly one more run', async () => {
  const t = gatedTask();
  const runner = new CoalescedRunner(t.task);
  runner.poke();
  assert.equal(t.state.started, 1, 'an idle runner starts at once');
  assert.equal(runner.busy, true);
  for (let i = 0; i < 10; i++) runner.poke();
  t.release();
  await t.startedRun(2);
  for (let i = 0; i < 5; i++) runner.poke();
  t.release();
  await t.startedRun(3);
  t.release();
  await runner.idle();
  assert.equal(runner.busy, false);
  assert.deepEqual(t.state, { started: 3, inFlight: 0, maxInFlight: 1 });
});

test('run() resolves with a run that began after the call; callers during a run share one follow-up', async () => {
  const t = gatedTask();
  const runner = new CoalescedRunner(t.task);
  const first = runner.run();
  const second = runner.run();
  const third = runner.run();
  runner.poke();
  t.release();
  assert.equal(await first, 1);
  await t.startedRun(2);
  const fourth = runner.run(); // asked during run 2: run 2 may have read the state already
  t.release();
  assert.equal(await second, 2);
  assert.equal(await third, 2);
  await t.startedRun(3);
  t.release();
  assert.equal(await fourth, 3);
  await runner.idle();
  assert.equal(t.state.started, 3);
  assert.equal(t.state.maxInFlight, 1);
  // Idle again: a call starts a run of its own.
  const fifth = runner.run();
  t.release();
  assert.equal(await fifth, 4);
});

test("a poked run's error goes to onError and the next run still happens", async () => {
  const t = gatedTask((n) => n === 1);
  const errors: unknown[] = [];
  const runner = new CoalescedRunner(t.task, { onError: (err) => errors.push(err) });
  runner.poke();
  runner.poke();
  t.release();
  await t.startedRun(2);
  assert.deepEqual(errors.map((e) => (e as Error).message), ['run 1 failed']);
  t.release();
  await runner.idle();
  assert.equal(t.state.started, 2);
  assert.equal(errors.length, 1);
});

test('run() rejects with the error of its run (not reported twice), and later runs still succeed', async () => {
  const t = gatedTask((n) => n === 1);
  const errors: unknown[] = [];
  const runner = new CoalescedRunner(t.task, { onError: (err) => errors.push(err) });
  const failing = runner.run();
  const next = runner.run();
  t.release();
  await assert.rejects(failing, /run 1 failed/);
  await t.startedRun(2);
  t.release();
  assert.equal(await next, 2);
  assert.deepEqual(errors, []);
});

test('a synchronous throw or a throwing onError does not break the runner', async () => {
  let calls = 0;
  const runner = new CoalescedRunner(
    () => {
      calls++;
      if (calls === 1) throw new Error('sync');
      return Promise.resolve(calls);
    },
    {
      onError: () => {
        throw new Error('handler broke');
      },
    },
  );
  runner.poke();
  await runner.idle();
  assert.equal(await runner.run(), 2);
});

test('a task that pokes its own runner gets one follow-up, not a second concurrent run', async () => {
  const t = gatedTask();
  let pokedOnce = false;
  const runner: CoalescedRunner<number> = new CoalescedRunner(() => {
    if (!pokedOnce) {
      pokedOnce = true;
      runner.poke();
    }
    return t.task();
  });
  runner.poke();
  t.release();
  await t.startedRun(2);
  t.release();
  await runner.idle();
  assert.equal(t.state.started, 2);
  assert.equal(t.state.maxInFlight, 1);
});

test('stop() waits for the current run, drops the follow-up and refuses new runs', async () => {
  const t = gatedTask();
  const runner = new CoalescedRunner(t.task);
  const current = runner.run();
  const followUp = runner.run();
  runner.poke();
  let stopped = false;
  const stopping = runner.stop().then(() => (stopped = true));
  await assert.rejects(followUp, RunnerStoppedError);
  assert.equal(stopped, false, 'stop waits while the run is in progress');
  t.release();
  await stopping;
  assert.equal(await current, 1);
  assert.equal(t.state.started, 1);
  await assert.rejects(runner.run(), RunnerStoppedError);
  runner.poke();
  await runner.idle();
  assert.equal(t.state.started, 1);
});
