import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Hints } from '../../reconciler/git/hints.ts';

/** Hints.debounce: a burst's first event is acted on at once, its end once more, nothing in between. */

function counting(): { hints: Hints; count: () => number } {
  const hints = new Hints();
  let n = 0;
  hints.add(() => n++);
  return { hints, count: () => n };
}

test('one event: one hint, at once, and none when the window ends', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { hints, count } = counting();
    hints.debounce(20);
    assert.equal(count(), 1);
    mock.timers.tick(25);
    assert.equal(count(), 1);
  } finally {
    mock.timers.reset();
  }
});

test('a burst: one hint at its first event and one 20 ms after its last', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const { hints, count } = counting();
    hints.debounce(20);
    for (let i = 0; i < 5; i++) {
      mock.timers.tick(10);
      hints.debounce(20);
    }
    assert.equal(count(), 1, 'nothing while the burst lasts');
    mock.timers.tick(19);
    assert.equal(count(), 1);
    mock.timers.tick(1);
    assert.equal(count(), 2, 'the burst ended: once more');
    // The next burst starts afresh: at once again.
    hints.debounce(20);
    assert.equal(count(), 3);
    hints.stop();
  } finally {
    mock.timers.reset();
  }
});
