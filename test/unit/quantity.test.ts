import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCpu, formatMemory, parseCpu, parseMemory } from '../../reconciler/manifests/quantity.ts';

test('parseCpu converts cores and millicores to millicores', () => {
  const cases: [string | number, number][] = [
    ['250m', 250],
    ['0m', 0],
    ['1', 1000],
    ['0', 0],
    ['1.5', 1500],
    ['0.5', 500],
    ['0.001', 1],
    ['0.1000', 100],
    ['0.29', 290],
    [0.5, 500],
    [0.29, 290],
    [2, 2000],
    ['16', 16000],
  ];
  for (const [input, expected] of cases) assert.equal(parseCpu(input), expected, `parseCpu(${JSON.stringify(input)})`);
});

test('parseCpu rejects bad input with a message naming the value', () => {
  const cases: [string | number, RegExp][] = [
    ['', /invalid cpu quantity "": expected millicores such as "250m"/],
    ['abc', /invalid cpu quantity "abc"/],
    ['1e3', /invalid cpu quantity "1e3"/],
    ['250 m', /invalid cpu quantity "250 m"/],
    ['-1', /invalid cpu quantity "-1"/],
    ['1.5m', /invalid cpu quantity "1.5m"/],
    ['0.0001', /invalid cpu quantity "0.0001": finer than 1m/],
    [0.0001, /invalid cpu quantity 0.0001/],
    [-0.5, /invalid cpu quantity -0.5: must be a non-negative number/],
    [Number.NaN, /invalid cpu quantity NaN/],
    [Number.POSITIVE_INFINITY, /invalid cpu quantity Infinity/],
    ['99999999999999999', /too large/],
  ];
  for (const [input, message] of cases) assert.throws(() => parseCpu(input), message, `parseCpu(${JSON.stringify(input)})`);
});

test('parseMemory converts binary, decimal and plain quantities to bytes', () => {
  const cases: [string | number, number][] = [
    ['128974848', 128974848],
    [128974848, 128974848],
    ['0', 0],
    ['1Ki', 1024],
    ['64Mi', 64 * 1024 ** 2],
    ['1Gi', 1024 ** 3],
    ['2Ti', 2 * 1024 ** 4],
    ['1k', 1000],
    ['129M', 129e6],
    ['1G', 1e9],
    ['1T', 1e12],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['0.5Ki', 512],
    ['1.0', 1],
  ];
  for (const [input, expected] of cases) assert.equal(parseMemory(input), expected, `parseMemory(${JSON.stringify(input)})`);
});

test('parseMemory rejects bad input with a message naming the value', () => {
  const cases: [string | number, RegExp][] = [
    ['', /invalid memory quantity "": expected bytes/],
    ['64MB', /invalid memory quantity "64MB"/],
    ['1K', /invalid memory quantity "1K"/],
    ['1e3', /invalid memory quantity "1e3"/],
    ['64 Mi', /invalid memory quantity "64 Mi"/],
    ['-1Mi', /invalid memory quantity "-1Mi"/],
    ['1.5', /invalid memory quantity "1.5": not a whole number of bytes/],
    ['1.3Ki', /not a whole number of bytes/],
    [0.5, /invalid memory quantity 0.5: not a whole number of bytes/],
    [-1, /must be a non-negative number/],
    ['99999Ti', /invalid memory quantity "99999Ti": too large/],
  ];
  for (const [input, message] of cases) assert.throws(() => parseMemory(input), message, `parseMemory(${JSON.stringify(input)})`);
});

test('formatCpu gives a form parseCpu reads back', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [1, '1m'],
    [250, '250m'],
    [1000, '1'],
    [1500, '1.5'],
    [2250, '2.25'],
    [1001, '1.001'],
    [16000, '16'],
  ];
  for (const [milli, expected] of cases) {
    assert.equal(formatCpu(milli), expected);
    assert.equal(parseCpu(expected), milli);
  }
});

test('formatMemory prefers exact binary, then exact decimal, then a rounded binary unit', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [512, '512'],
    [1024, '1Ki'],
    [64 * 1024 ** 2, '64Mi'],
    [1.5 * 1024 ** 3, '1536Mi'],
    [16 * 1024 ** 3, '16Gi'],
    [1e9, '1G'],
    [1000, '1k'],
    [123456789, '117.7Mi'],
    [1500, '1.5Ki'],
  ];
  for (const [bytes, expected] of cases) assert.equal(formatMemory(bytes), expected, `formatMemory(${bytes})`);
});
