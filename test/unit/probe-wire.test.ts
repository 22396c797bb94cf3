import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeHealthCheckResponse, encodeHealthCheckRequest, grpcFrame, readFrames } from '../../agents/grpc-health.ts';
import { requestHeaders } from '../../agents/http-probe.ts';

/** The hand-made wire formats of probes: gRPC framing and protobuf, and HTTP probe headers. */

test('HealthCheckRequest: field 1 as a length-delimited string, "" as the empty message', () => {
  const cases: { service: string; hex: string }[] = [
    { service: '', hex: '' },
    { service: 'a', hex: '0a0161' },
    { service: 'shop.Cart', hex: '0a0973686f702e43617274' },
    // 200 bytes: the length is a two-byte varint (0xc8 0x01).
    { service: 'x'.repeat(200), hex: `0ac801${'78'.repeat(200)}` },
    { service: 'é', hex: '0a02c3a9' },
  ];
  for (const c of cases) assert.equal(encodeHealthCheckRequest(c.service).toString('hex'), c.hex, c.service);
});

test('gRPC frames: a flag byte and a big-endian length before each message', () => {
  assert.equal(grpcFrame(Buffer.from('0a0161', 'hex')).toString('hex'), '00000000030a0161');
  assert.equal(grpcFrame(Buffer.alloc(0)).toString('hex'), '0000000000');
  assert.deepEqual(readFrames(Buffer.from('00000000020801', 'hex')), [{ compressed: false, message: Buffer.from('0801', 'hex') }]);
  assert.deepEqual(readFrames(Buffer.from('010000000100', 'hex')), [{ compressed: true, message: Buffer.from('00', 'hex') }]);
  assert.deepEqual(readFrames(Buffer.alloc(0)), []);
  assert.throws(() => readFrames(Buffer.from('000000', 'hex')), /truncated gRPC frame header/);
  assert.throws(() => readFrames(Buffer.from('000000000508', 'hex')), /truncated gRPC message/);
});

test('HealthCheckResponse: the status of field 1, absent is UNKNOWN, unknown fields skipped', () => {
  const cases: { name: string; hex: string; want: number | RegExp }[] = [
    { name: 'SERVING', hex: '0801', want: 1 },
    { name: 'NOT_SERVING', hex: '0802', want: 2 },
    { name: 'empty message: the proto3 default', hex: '', want: 0 },
    { name: 'a varint field 2 before', hex: '1096010801', want: 1 },
    { name: 'a string field 3 after', hex: '08011a03616263', want: 1 },
    { name: 'fixed32 and fixed64 fields', hex: `2d${'00'.repeat(4)}19${'00'.repeat(8)}0802`, want: 2 },
    { name: 'the last value wins, as protobuf merges', hex: '08010802', want: 2 },
    { name: 'truncated varint', hex: '08', want: /truncated varint/ },
    { name: 'truncated string', hex: '1a05ab', want: /truncated field/ },
    { name: 'group wire type', hex: '0b', want: /unsupported protobuf wire type 3/ },
  ];
  for (const c of cases) {
    const buf = Buffer.from(c.hex, 'hex');
    if (c.want instanceof RegExp) assert.throws(() => decodeHealthCheckResponse(buf), c.want, c.name);
    else assert.equal(decodeHealthCheckResponse(buf), c.want, c.name);
  }
});

test("HTTP probe headers: the kubelet's defaults and overrides", () => {
  const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
  const cases: { name: string; headers: { name: string; value: string }[]; want: Record<string, unknown> }[] = [
    { name: 'none: Accept */* and our User-Agent', headers: [], want: { accept: ['*/*'], 'user-agent': 'gantry-probe' } },
    {
      name: 'repeats kept under the first spelling, in order',
      headers: [{ name: 'X-A', value: '1' }, { name: 'x-a', value: '2' }, { name: 'X-B', value: '3' }],
      want: { 'X-A': ['1', '2'], 'X-B': ['3'], accept: ['*/*'], 'user-agent': 'gantry-probe' },
    },
    { name: 'Host: the first one', headers: [{ name: 'host', value: 'a.example' }, { name: 'Host', value: 'b.example' }], want: { host: 'a.example', accept: ['*/*'], 'user-agent': 'gantry-probe' } },
    { name: 'an empty Host is no Host', headers: [{ name: 'Host', value: '' }], want: { accept: ['*/*'], 'user-agent': 'gantry-probe' } },
    { name: 'Accept replaced', headers: [{ name: 'Accept', value: 'application/json' }], want: { accept: ['application/json'], 'user-agent': 'gantry-probe' } },
    { name: 'an empty Accept drops it', headers: [{ name: 'accept', value: '' }], want: { 'user-agent': 'gantry-probe' } },
    { name: 'User-Agent replaced', headers: [{ name: 'user-agent', value: 'kube-probe/1.30' }], want: { accept: ['*/*'], 'user-agent': 'kube-probe/1.30' } },
    { name: 'an empty User-Agent drops it', headers: [{ name: 'User-Agent', value: '' }], want: { accept: ['*/*'] } },
    { name: 'UTF-8 values go out as their bytes', headers: [{ name: 'X-Name', value: 'café €' }], want: { 'X-Name': [latin1('café €')], accept: ['*/*'], 'user-agent': 'gantry-probe' } },
  ];
  for (const c of cases) assert.deepEqual(requestHeaders(c.headers), c.want, c.name);
});
