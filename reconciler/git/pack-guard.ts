/**
 * Limits on what a fetch from a remote Git server may bring, checked on the bytes as they arrive.
 *
 * isomorphic-git collects the whole packfile of a fetch in memory and then inflates every object
 * in it, whole, to index it: a pack of a few MiB holding a blob of deflated zeros (a "blob bomb")
 * or a delta whose result is declared to be gigabytes would cost that much memory before any size
 * check of ours could run. So the upload-pack response is read through a scanner that walks the
 * pack entry by entry, streaming each object's deflate data through an inflater that counts and
 * discards its output, and stops the fetch (the response stream throws, isomorphic-git rejects)
 * as soon as:
 *   - the response passes `maxPackBytes`;
 *   - an object's header declares more than `maxObjectBytes`, or it inflates to more than its
 *     header says (a lying header);
 *   - a delta declares a result (or base) larger than `maxObjectBytes` (a delta that copies one
 *     range over and over can expand a few KiB into terabytes);
 *   - the pack holds more than `maxObjects` entries.
 * A chunk that would pass a limit is never handed on, so isomorphic-git inflates at most what fits.
 */
import pako, { type Inflate } from 'pako';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';

export interface FetchLimits {
  /** Inflated size of any one object (GitHub refuses files over 100 MiB). */
  maxObjectBytes: number;
  /** Bytes of one upload-pack response (the pack, as held in memory while it is indexed). */
  maxPackBytes: number;
  /** Entries of one pack. */
  maxObjects: number;
}

export const DEFAULT_FETCH_LIMITS: FetchLimits = {
  maxObjectBytes: 128 * 1024 * 1024,
  maxPackBytes: 1024 * 1024 * 1024,
  maxObjects: 2_000_000,
};

/** Why a fetch was stopped; remote-source.ts turns it into FETCH_TOO_LARGE. */
export class PackLimitError extends Error {
  constructor(
    message: string,
    readonly limit: keyof FetchLimits,
    readonly data: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'PackLimitError';
  }
}

const TYPE_NAMES = ['', 'commit', 'tree', 'blob', 'tag', '', 'ofs-delta', 'ref-delta'];
const OBJ_OFS_DELTA = 6;
const OBJ_REF_DELTA = 7;
/** A size varint longer than this encodes more than 2^53: no real object is that large. */
const MAX_VARINT_BYTES = 8;
/** Enough inflated delta data for its two size varints (at most 10 bytes each). */
const DELTA_HEAD_BYTES = 20;

export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) return `${Number((n / size).toFixed(1))} ${unit}`;
  }
  return `${n} bytes`;
}

type Phase = 'header' | 'entry' | 'base' | 'data' | 'trailer' | 'done';

/**
 * Walks a packfile given in chunks of any size. Pure: no I/O; push() throws PackLimitError at the
 * first limit passed, or a plain Error for a pack that is not one.
 */
export class PackScanner {
  private phase: Phase = 'header';
  /** Bytes of the current fixed-size part (pack header, entry header, base id, trailer). */
  private pending: number[] = [];
  private objectsLeft = 0;
  private objectsSeen = 0;
  private bytes = 0;
  private entry = { type: 0, size: 0 };
  private inflater: Inflate | undefined;
  private inflated = 0;
  private deltaHead: number[] = [];

  constructor(private readonly limits: FetchLimits = DEFAULT_FETCH_LIMITS) {}

  /** Entries walked so far. */
  get objects(): number {
    return this.objectsSeen;
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limits.maxPackBytes) {
      throw new PackLimitError(`the pack is larger than ${formatBytes(this.limits.maxPackBytes)}`, 'maxPackBytes', { limitBytes: this.limits.maxPackBytes });
    }
    let pos = 0;
    while (pos < chunk.length && this.phase !== 'done') {
      if (this.phase === 'data') pos = this.inflate(chunk, pos);
      else this.byte(chunk[pos++]!);
    }
  }

  private byte(b: number): void {
    this.pending.push(b);
    switch (this.phase) {
      case 'header':
        if (this.pending.length < 12) return;
        this.readPackHeader(Buffer.from(this.pending));
        return;
      case 'entry':
        if (b & 0x80) {
          if (this.pending.length > MAX_VARINT_BYTES) {
            this.entry = { type: (this.pending[0]! >> 4) & 0x07, size: Infinity };
            throw this.tooLarge(Infinity, 'declares');
          }
          return;
        }
        this.readEntryHeader();
        return;
      case 'base':
        // OFS_DELTA: a varint offset (ends at a byte without the high bit); REF_DELTA: a 20-byte id.
        if (this.entry.type === OBJ_REF_DELTA) {
          if (this.pending.length === 20) this.startData();
        } else if ((b & 0x80) === 0) {
          this.startData();
        } else if (this.pending.length > MAX_VARINT_BYTES) {
          throw new Error(`pack entry ${this.objectsSeen} has an invalid base offset`);
        }
        return;
      case 'trailer':
        if (this.pending.length === 20) this.phase = 'done';
        return;
    }
  }

  private readPackHeader(h: Buffer): void {
    if (h.subarray(0, 4).toString('latin1') !== 'PACK') throw new Error('not a packfile (no PACK signature)');
    const version = h.readUInt32BE(4);
    if (version !== 2 && version !== 3) throw new Error(`unsupported packfile version ${version}`);
    this.objectsLeft = h.readUInt32BE(8);
    if (this.objectsLeft > this.limits.maxObjects) {
      throw new PackLimitError(`the pack holds ${this.objectsLeft} objects, more than the limit of ${this.limits.maxObjects}`, 'maxObjects', { objects: this.objectsLeft, limitObjects: this.limits.maxObjects });
    }
    this.nextEntry();
  }

  private nextEntry(): void {
    this.pending = [];
    this.phase = this.objectsLeft-- > 0 ? 'entry' : 'trailer';
  }

  private readEntryHeader(): void {
    const [first, ...rest] = this.pending as [number, ...number[]];
    let size = first & 0x0f;
    let shift = 4;
    for (const b of rest) {
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    this.entry = { type: (first >> 4) & 0x07, size };
    this.objectsSeen++;
    if (!TYPE_NAMES[this.entry.type]) throw new Error(`pack entry ${this.objectsSeen} has invalid type ${this.entry.type}`);
    // The header's size is the inflated object (or, for a delta, the inflated delta data).
    if (size > this.limits.maxObjectBytes) throw this.tooLarge(size, 'declares');
    this.pending = [];
    if (this.entry.type === OBJ_OFS_DELTA || this.entry.type === OBJ_REF_DELTA) this.phase = 'base';
    else this.startData();
  }

  private startData(): void {
    this.pending = [];
    this.phase = 'data';
    this.inflated = 0;
    this.deltaHead = [];
    const inflater = new pako.Inflate({ chunkSize: 64 * 1024 });
    // Output is counted and dropped: nothing of the object is kept. Throwing here stops pako
    // mid-chunk, so a bomb is cut off within one output buffer past the limit.
    inflater.onData = (out: Uint8Array) => {
      this.inflated += out.length;
      if (this.inflated > this.entry.size) throw this.tooLarge(this.inflated, 'inflates to more than its header says, at least');
      if (this.isDelta() && this.deltaHead.length < DELTA_HEAD_BYTES) {
        for (let i = 0; i < out.length && this.deltaHead.length < DELTA_HEAD_BYTES; i++) this.deltaHead.push(out[i]!);
      }
    };
    this.inflater = inflater;
  }

  private isDelta(): boolean {
    return this.entry.type === OBJ_OFS_DELTA || this.entry.type === OBJ_REF_DELTA;
  }

  /** Feeds the object's deflate data from chunk[pos..]; returns where the next entry starts. */
  private inflate(chunk: Uint8Array, pos: number): number {
    const inflater = this.inflater!;
    const input = chunk.subarray(pos);
    inflater.push(input, false);
    if (inflater.err) throw new Error(`pack entry ${this.objectsSeen} is not valid deflate data: ${inflater.msg}`);
    if (!inflater.ended) return chunk.length;
    if (this.inflated !== this.entry.size) {
      throw new Error(`pack entry ${this.objectsSeen} inflates to ${this.inflated} bytes, not the ${this.entry.size} its header says`);
    }
    if (this.isDelta()) this.checkDeltaSizes();
    this.inflater = undefined;
    const next = chunk.length - inflater.strm.avail_in;
    this.nextEntry();
    return next;
  }

  /** A delta starts with two varints: the size of its base and the size of its result. */
  private checkDeltaSizes(): void {
    const head = this.deltaHead;
    const sizes: number[] = [];
    let pos = 0;
    for (let k = 0; k < 2; k++) {
      let value = 0;
      let shift = 0;
      for (;;) {
        const b = head[pos++];
        if (b === undefined || shift > 7 * MAX_VARINT_BYTES) throw new Error(`pack entry ${this.objectsSeen} is a delta without a valid header`);
        value += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if ((b & 0x80) === 0) break;
      }
      sizes.push(value);
    }
    const [base, result] = sizes as [number, number];
    if (result > this.limits.maxObjectBytes) throw this.tooLarge(result, 'is a delta whose result declares');
    if (base > this.limits.maxObjectBytes) throw this.tooLarge(base, 'is a delta whose base declares');
  }

  private tooLarge(size: number, what: string): PackLimitError {
    const type = TYPE_NAMES[this.entry.type] || 'object';
    const amount = Number.isFinite(size) ? formatBytes(size) : 'more than 2^53 bytes';
    return new PackLimitError(
      `pack entry ${this.objectsSeen} (${type}) ${what} ${amount}, more than the limit of ${formatBytes(this.limits.maxObjectBytes)} per object`,
      'maxObjectBytes',
      { entry: this.objectsSeen, type, ...(Number.isFinite(size) ? { bytes: size } : {}), limitBytes: this.limits.maxObjectBytes },
    );
  }
}

/**
 * Reads an upload-pack response (pkt-lines; the pack on side-band channel 1) and hands its pack
 * bytes to a PackScanner. Streaming: a pkt-line's payload is never buffered whole.
 */
export class UploadPackScanner {
  readonly pack: PackScanner;
  private lengthHex = '';
  /** Payload bytes left in the current pkt-line; -1 before its band byte is read. */
  private left = 0;
  private band = 0;
  private bytes = 0;

  constructor(private readonly limits: FetchLimits = DEFAULT_FETCH_LIMITS) {
    this.pack = new PackScanner(limits);
  }

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limits.maxPackBytes) {
      throw new PackLimitError(`the response is larger than ${formatBytes(this.limits.maxPackBytes)}`, 'maxPackBytes', { limitBytes: this.limits.maxPackBytes });
    }
    let pos = 0;
    while (pos < chunk.length) {
      if (this.left === 0) {
        this.lengthHex += String.fromCharCode(chunk[pos++]!);
        if (this.lengthHex.length < 4) continue;
        if (!/^[0-9a-f]{4}$/i.test(this.lengthHex)) throw new Error(`the upload-pack response is not pkt-lines (${JSON.stringify(this.lengthHex)})`);
        const length = parseInt(this.lengthHex, 16);
        this.lengthHex = '';
        // 0000 flush, 0001 delim, 0002 response end: no payload.
        if (length < 4) continue;
        this.left = length - 4;
        this.band = -1;
        continue;
      }
      if (this.band === -1) {
        this.band = chunk[pos++]!;
        this.left--;
        continue;
      }
      const take = Math.min(this.left, chunk.length - pos);
      // Band 1 is pack data; 2 and 3 are progress and errors; other first bytes are ACK/NAK/shallow lines.
      if (this.band === 1) this.pack.push(chunk.subarray(pos, pos + take));
      pos += take;
      this.left -= take;
    }
  }
}

/**
 * One fetch's guard: wraps isomorphic-git's http client so the upload-pack response is scanned
 * before isomorphic-git sees each chunk. `stopped` holds the limit that ended the fetch, if any.
 */
export class FetchGuard {
  stopped: PackLimitError | undefined;

  constructor(private readonly limits: FetchLimits = DEFAULT_FETCH_LIMITS) {}

  wrap(client: HttpClient): HttpClient {
    return {
      request: async (req: GitHttpRequest): Promise<GitHttpResponse> => {
        const res = await client.request(req);
        if (req.method !== 'POST' || !/\/git-upload-pack$/.test(new URL(req.url).pathname) || !res.body) return res;
        return { ...res, body: this.scan(res.body) };
      },
    };
  }

  private async *scan(body: AsyncIterableIterator<Uint8Array>): AsyncIterableIterator<Uint8Array> {
    const scanner = new UploadPackScanner(this.limits);
    try {
      for await (const chunk of body) {
        scanner.push(chunk);
        yield chunk;
      }
    } catch (err) {
      // for-await has already told `body` to stop reading the server's response.
      if (err instanceof PackLimitError) this.stopped = err;
      throw err;
    }
  }
}
