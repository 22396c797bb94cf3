import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { deflateSync } from 'node:zlib';
import type { GitHttpRequest, GitHttpResponse } from 'isomorphic-git';
import { FetchGuard, PackLimitError, PackScanner, UploadPackScanner, type FetchLimits } from '../../reconciler/git/pack-guard.ts';

/**
 * The fetch guard (reconciler/git/pack-guard.ts) on packs built here byte by byte: honest packs
 * pass in chunks of any size; a pack past a limit is stopped at the first byte that shows it.
 */

const MiB = 1024 * 1024;
const LIMITS: FetchLimits = { maxObjectBytes: MiB, maxPackBytes: 16 * MiB, maxObjects: 100 };

/** A pack entry header: type in bits 6-4 of the first byte, the size in 4 + 7k bits. */
function entryHeader(type: number, size: number): Buffer {
  const bytes = [(type << 4) | (size % 16)];
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes[bytes.length - 1]! |= 0x80;
    bytes.push(rest % 128);
    rest = Math.floor(rest / 128);
  }
  return Buffer.from(bytes);
}

/** Little-endian base-128, as at the start of delta data. */
function deltaVarint(n: number): Buffer {
  const bytes: number[] = [];
  do {
    bytes.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(bytes);
}

const blob = (content: Buffer | string, declared?: number) => {
  const data = Buffer.from(content);
  return Buffer.concat([entryHeader(3, declared ?? data.length), deflateSync(data)]);
};
const refDelta = (base: Buffer, delta: Buffer) => Buffer.concat([entryHeader(7, delta.length), base, deflateSync(delta)]);
const ofsDelta = (offset: number, delta: Buffer) => Buffer.concat([entryHeader(6, delta.length), Buffer.from([offset]), deflateSync(delta)]);
/** Delta data: base size, result size, then one "insert" of `insert`. */
const delta = (baseSize: number, resultSize: number, insert = 'x') =>
  Buffer.concat([deltaVarint(baseSize), deltaVarint(resultSize), Buffer.from([insert.length]), Buffer.from(insert)]);

function pack(entries: Buffer[], count = entries.length): Buffer {
  const head = Buffer.alloc(12);
  head.write('PACK', 0, 'latin1');
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(count, 8);
  const body = Buffer.concat([head, ...entries]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function scanInChunks(data: Buffer, size: number, limits = LIMITS): PackScanner {
  const scanner = new PackScanner(limits);
  for (let i = 0; i < data.length; i += size) scanner.push(data.subarray(i, i + size));
  return scanner;
}

const honest = pack([
  blob('tree 0000\nauthor someone\n'),
  blob(`${'a config line\n'.repeat(5000)}`),
  refDelta(Buffer.alloc(20, 7), delta(70_000, 1)),
  ofsDelta(42, delta(14, 1)),
  blob(''),
]);

test('an honest pack passes whole and in chunks of 1, 3 and 1000 bytes, every entry walked', () => {
  for (const size of [honest.length, 1, 3, 1000]) {
    const scanner = scanInChunks(honest, size);
    assert.equal(scanner.objects, 5, `chunks of ${size}`);
    assert.equal(scanner.done, true, `chunks of ${size}`);
  }
});

/** The PackLimitError that scanning `data` throws (chunks of 64 KiB, as a socket delivers). */
function stopped(data: Buffer, limits = LIMITS, name = ''): PackLimitError {
  try {
    scanInChunks(data, 64 * 1024, limits);
  } catch (err) {
    assert.ok(err instanceof PackLimitError, String(err));
    return err;
  }
  assert.fail(`the scan did not stop: ${name}`);
}

test('limits, each stopped with the limit it passed and a message naming entry, type and sizes', () => {
  const cases: Array<{ name: string; data: Buffer; limits?: FetchLimits; limit: keyof FetchLimits; message: RegExp }> = [
    {
      name: 'a blob whose header declares 200 MiB is refused at its header',
      // Only the header and 10 bytes of deflate data exist: the refusal cannot come from inflating.
      data: pack([Buffer.concat([entryHeader(3, 200 * MiB), deflateSync(Buffer.from('0123456789'))])]),
      limit: 'maxObjectBytes',
      message: /^pack entry 1 \(blob\) declares 200 MiB, more than the limit of 1 MiB per object$/,
    },
    {
      name: 'a header that lies (10 bytes declared, 8 MiB of zeros inside) is cut off while inflating',
      data: pack([blob(Buffer.alloc(8 * MiB), 10)]),
      limit: 'maxObjectBytes',
      message: /^pack entry 1 \(blob\) inflates to more than its header says, at least \d+ (bytes|KiB), more than the limit of 1 MiB per object$/,
    },
    {
      name: 'a delta declaring a 1 TiB result (a copy repeated) is refused from its first bytes',
      data: pack([blob('base'), refDelta(Buffer.alloc(20, 1), delta(4, 2 ** 40))]),
      limit: 'maxObjectBytes',
      message: /^pack entry 2 \(ref-delta\) is a delta whose result declares 1024 GiB, more than the limit of 1 MiB per object$/,
    },
    {
      name: 'a delta declaring a base past the limit',
      data: pack([ofsDelta(1, delta(64 * MiB, 1))]),
      limit: 'maxObjectBytes',
      message: /^pack entry 1 \(ofs-delta\) is a delta whose base declares 64 MiB/,
    },
    {
      name: 'a size varint longer than any real object',
      data: pack([Buffer.concat([Buffer.from([0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), deflateSync(Buffer.from('x'))])]),
      limit: 'maxObjectBytes',
      message: /^pack entry \d+ \(blob\) declares more than 2\^53 bytes/,
    },
    {
      name: 'more entries than the limit, refused at the pack header',
      data: pack([blob('a')], 101),
      limit: 'maxObjects',
      message: /^the pack holds 101 objects, more than the limit of 100$/,
    },
    {
      name: 'more bytes than the limit',
      // Random bytes do not deflate: 600 KiB of them make a pack of about that size.
      data: pack([blob('a'), blob(randomBytes(600 * 1024))]),
      limits: { ...LIMITS, maxPackBytes: 512 * 1024 },
      limit: 'maxPackBytes',
      message: /^the pack is larger than 512 KiB$/,
    },
  ];
  for (const c of cases) {
    const err = stopped(c.data, c.limits, c.name);
    assert.equal(err.limit, c.limit, c.name);
    assert.match(err.message, c.message, c.name);
  }
});

test('what is not a pack, or a pack that lies about a small object, is an error too', () => {
  const broken: Array<[string, Buffer, RegExp]> = [
    ['no signature', Buffer.from('JUNKJUNKJUNKJUNK'), /no PACK signature/],
    ['version 9', Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 9, 0, 0, 0, 1])]), /version 9/],
    ['fewer bytes than declared', pack([blob('twelve bytes', 20)]), /inflates to 12 bytes, not the 20 its header says/],
    ['not deflate data', pack([Buffer.concat([entryHeader(3, 4), Buffer.from('not zlib at all')])]), /not valid deflate data/],
    ['type 5', pack([Buffer.concat([entryHeader(5, 1), deflateSync(Buffer.from('x'))])]), /invalid type 5/],
  ];
  for (const [name, data, message] of broken) assert.throws(() => scanInChunks(data, 5), message, name);
});

/** pkt-line framing of an upload-pack response: NAK, then the pack on band 1 with progress on band 2. */
function uploadPackResponse(packData: Buffer, lineSize = 1000): Buffer {
  const line = (payload: Buffer) => Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
  const parts = [line(Buffer.from('NAK\n'))];
  for (let i = 0; i < packData.length; i += lineSize) {
    parts.push(line(Buffer.concat([Buffer.from([1]), packData.subarray(i, i + lineSize)])));
    if (i === 0) parts.push(line(Buffer.from('\x02Counting objects: 5, done.\n')));
  }
  parts.push(Buffer.from('0000'));
  return Buffer.concat(parts);
}

test('an upload-pack response is de-framed: pack bytes on band 1 only, lines split anywhere', () => {
  const response = uploadPackResponse(honest, 333);
  for (const size of [response.length, 1, 7, 4096]) {
    const scanner = new UploadPackScanner(LIMITS);
    for (let i = 0; i < response.length; i += size) scanner.push(response.subarray(i, i + size));
    assert.equal(scanner.pack.done, true, `chunks of ${size}`);
    assert.equal(scanner.pack.objects, 5, `chunks of ${size}`);
  }
  assert.throws(() => new UploadPackScanner(LIMITS).push(Buffer.from('PACK\0\0\0\x02')), /not pkt-lines/);
});

test('FetchGuard stops the upload-pack body before the chunk past a limit and leaves other requests alone', async () => {
  const bomb = uploadPackResponse(pack([blob('ok'), blob(Buffer.alloc(64 * MiB))]), 65515);
  const chunks = Array.from({ length: Math.ceil(bomb.length / 65536) }, (_, i) => bomb.subarray(i * 65536, (i + 1) * 65536));
  let returned = false;
  const served: Array<Omit<GitHttpResponse, 'body'>> = [];
  const client = {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const res = { url: req.url, method: req.method, statusCode: 200, statusMessage: 'OK', headers: {} };
      served.push(res);
      async function* body() {
        try {
          yield* chunks;
        } finally {
          returned = true;
        }
      }
      return { ...res, body: body() };
    },
  };
  const guard = new FetchGuard(LIMITS);
  const http = guard.wrap(client);

  const refs = await http.request({ url: 'http://127.0.0.1:1/r.git/info/refs?service=git-upload-pack', method: 'GET', headers: {} });
  let passed = 0;
  for await (const c of refs.body!) passed += c.length;
  assert.equal(passed, bomb.length, 'the ref advertisement is not scanned');

  const res = await http.request({ url: 'http://127.0.0.1:1/r.git/git-upload-pack', method: 'POST', headers: {} });
  let handed = 0;
  await assert.rejects(async () => {
    for await (const c of res.body!) handed += c.length;
  }, PackLimitError);
  assert.equal(guard.stopped?.limit, 'maxObjectBytes');
  assert.match(guard.stopped!.message, /^pack entry 2 \(blob\) declares 64 MiB/);
  assert.ok(handed < 64 * 1024, `only the chunk before the bomb's header was handed on (${handed} bytes)`);
  assert.equal(returned, true, 'the server response was abandoned');
});
