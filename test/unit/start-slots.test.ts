import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StartSlots } from '../../agents/start-slots.ts';

/** The agent's start slots: at most `limit` at once, waiters served in arrival order, a failure frees its slot. */

function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

test('at most `limit` run at once; the others start in arrival order as slots free up', async () => {
  const slots = new StartSlots(2);
  const gates = [gate(), gate(), gate(), gate()];
  const started: number[] = [];
  const runs = gates.map((g, i) =>
    slots.run(async () => {
      started.push(i);
      await g.opened;
      return i;
    }),
  );
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0, 1]);
  assert.equal(slots.running, 2);
  assert.equal(slots.waiting, 2);
  gates[1]!.open();
  assert.equal(await runs[1], 1);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0, 1, 2]);
  gates[0]!.open();
  gates[2]!.open();
  gates[3]!.open();
  assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
  assert.equal(slots.running, 0);
  assert.equal(slots.waiting, 0);
});

test('a start that fails frees its slot for the next', async () => {
  const slots = new StartSlots(1);
  const failing = slots.run(async () => {
    throw new Error('engine said no');
  });
  const next = slots.run(async () => 'ran');
  await assert.rejects(failing, /engine said no/);
  assert.equal(await next, 'ran');
  assert.equal(slots.running, 0);
});

test('the limit is a positive integer', () => {
  assert.throws(() => new StartSlots(0), /positive integer/);
  assert.throws(() => new StartSlots(1.5), /positive integer/);
});
