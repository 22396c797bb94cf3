import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { ImagePuller, isNoSuchImage } from '../../agents/image-pull.ts';

/** ImagePuller's presence check: one inspect for many starts of one image, and asked again once forgotten. */

function fakeEngine(present: boolean): { docker: Docker; inspects: () => number; resolveAll: () => void } {
  let inspects = 0;
  const waiting: (() => void)[] = [];
  const docker = {
    getImage: () => ({
      inspect: () => {
        inspects++;
        return new Promise((resolve, reject) => waiting.push(() => (present ? resolve({}) : reject(Object.assign(new Error('no such image'), { statusCode: 404 })))));
      },
    }),
  } as unknown as Docker;
  return { docker, inspects: () => inspects, resolveAll: () => waiting.splice(0).forEach((w) => w()) };
}

test('starts of one image at once share one inspect, and later ones within the window ask nothing', async () => {
  const engine = fakeEngine(true);
  const puller = new ImagePuller(engine.docker);
  const starts = Array.from({ length: 20 }, () => puller.ensure('busybox:1', 'IfNotPresent', () => {}));
  await new Promise((r) => setImmediate(r));
  engine.resolveAll();
  await Promise.all(starts);
  assert.equal(engine.inspects(), 1);
  await puller.ensure('busybox:1', 'IfNotPresent', () => {});
  assert.equal(engine.inspects(), 1, 'present is remembered for a while');
  puller.forget('busybox:1');
  const again = puller.ensure('busybox:1', 'IfNotPresent', () => {});
  await new Promise((r) => setImmediate(r));
  engine.resolveAll();
  await again;
  assert.equal(engine.inspects(), 2, 'a forgotten image is looked at again');
});

test('a missing image is not remembered: Never fails each time after asking', async () => {
  const engine = fakeEngine(false);
  const puller = new ImagePuller(engine.docker);
  for (let i = 1; i <= 2; i++) {
    const start = puller.ensure('busybox:1', 'Never', () => {});
    await new Promise((r) => setImmediate(r));
    engine.resolveAll();
    await assert.rejects(start, /ErrImageNeverPull/);
    assert.equal(engine.inspects(), i);
  }
});

test('isNoSuchImage: the engine refusing a create for a missing image', () => {
  assert.equal(isNoSuchImage({ statusCode: 404, json: { message: 'No such image: busybox:1' } }), true);
  assert.equal(isNoSuchImage({ statusCode: 404, json: { message: 'No such container: x' } }), false);
  assert.equal(isNoSuchImage({ statusCode: 500, json: { message: 'No such image: busybox:1' } }), false);
});
