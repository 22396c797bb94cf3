import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EpochWatch, type EpochVerdict } from '../../agents/epoch-watch.ts';
import { describeAdopted, matchClaims } from '../../reconciler/controller/adoption.ts';
import type { InstanceClaim } from '../../state/recovery-store.ts';
import { deployment, instance } from '../helpers/records.ts';

/** The pure decisions when Redis lost its data: the agent's (EpochWatch) and the controller's (matchClaims). */

test('EpochWatch: which looks at the cluster epoch mean "Redis lost its data"', () => {
  // [epoch read, node registered, expected], one look after another.
  const cases: { name: string; looks: [string | undefined, boolean, EpochVerdict][] }[] = [
    { name: 'the first look only remembers, even a missing epoch', looks: [[undefined, true, 'same'], ['e1', true, 'same'], ['e1', true, 'same']] },
    { name: 'the epoch is gone', looks: [['e1', true, 'same'], [undefined, true, 'lost'], [undefined, true, 'same'], ['e2', true, 'same'], ['e2', true, 'same']] },
    { name: 'the epoch changed (the reconciler made a new one before this agent looked)', looks: [['e1', true, 'same'], ['e2', true, 'lost'], ['e2', true, 'same']] },
    { name: 'the node record is gone (lost twice between two looks: the epoch is missing again)', looks: [['e1', true, 'same'], [undefined, true, 'lost'], [undefined, false, 'lost'], [undefined, true, 'same']] },
    { name: 'the node record is gone though the epoch is back the same', looks: [['e1', true, 'same'], ['e1', false, 'lost']] },
  ];
  for (const c of cases) {
    const w = new EpochWatch(1000);
    c.looks.forEach(([epoch, registered, expected], i) => assert.equal(w.observe(epoch, registered, i, []), expected, `${c.name}: look ${i}`));
  }
});

test('EpochWatch: holds what ran at the loss until a record is back or the window ends; then names what was never adopted', () => {
  const w = new EpochWatch(60_000);
  w.observe('e1', true, 0, ['a']);
  assert.equal(w.holds('a', 1), false, 'nothing is held before a loss');
  assert.equal(w.observe(undefined, true, 1000, ['a', 'b', 'c']), 'lost');
  assert.equal(w.recovering, true);
  assert.equal(w.holds('a', 1001), true);
  assert.equal(w.holds('new', 1001), false, 'started after the loss: handled as always');
  w.release('b'); // a record for it exists again (adopted)
  assert.equal(w.holds('b', 2000), false);
  assert.equal(w.expire(60_999), undefined, 'the window is still open');
  assert.equal(w.holds('c', 60_999), true);
  assert.equal(w.holds('c', 61_000), false, 'not held once the window has passed');
  assert.deepEqual(w.expire(61_000), ['a', 'c']);
  assert.equal(w.recovering, false);
  assert.equal(w.expire(70_000), undefined, 'named once');
  // A later loss opens a new window with what runs then.
  w.observe('e2', true, 80_000, ['a']);
  assert.equal(w.observe('e3', true, 90_000, ['a', 'd']), 'lost');
  assert.equal(w.holds('d', 149_999), true);
});

test('matchClaims: a claim of the same id and revision is adopted with its uid and node; anything else is created', () => {
  const d = deployment();
  const wanted = [0, 1, 2, 3].map((o) => ({ ...instance(d, o).record, uid: `new-${o}` }));
  const claim = (o: number, over: Partial<InstanceClaim['record']> = {}, node = 'n1'): [string, InstanceClaim] => [wanted[o]!.id, { node, record: { ...wanted[o]!, uid: `ran-${o}`, createdAt: 5, ...over } }];
  const claims = new Map([claim(0), claim(1, {}, 'n2'), claim(2, { templateHash: 'other' }), claim(3, { deployment: 'api' })]);
  const { adopt, create } = matchClaims(wanted, claims, 1000);
  assert.deepEqual(adopt.map((r) => [r.id, r.uid, r.node, r.boundAt, r.createdAt]), [[wanted[0]!.id, 'ran-0', 'n1', 1000, 5], [wanted[1]!.id, 'ran-1', 'n2', 1000, 5]]);
  assert.deepEqual(create.map((r) => [r.id, r.uid, r.node]), [[wanted[2]!.id, 'new-2', undefined], [wanted[3]!.id, 'new-3', undefined]]);
  // What is adopted runs the spec of the wanted record, not the claimed one.
  assert.equal(adopt[0]!.commit, wanted[0]!.commit);
  assert.deepEqual(matchClaims(wanted, new Map(), 0), { adopt: [], create: wanted });
  assert.equal(describeAdopted(adopt, 1), `${wanted[0]!.id} on n1 and 1 more`);
});
