/**
 * What the readers of the object store share (object-size.ts, object-store.ts): the lookup of an
 * object in a v2 pack index, and the few inflated bytes that say a delta's sizes.
 */
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const IDX_MAGIC = 0xff744f63;
export const OBJ_OFS_DELTA = 6;
export const OBJ_REF_DELTA = 7;

export interface PackIndex {
  /** The whole .idx file. */
  idx: Buffer;
  count: number;
  packPath: string;
}

/** The v2 indexes of objects/pack (what git and isomorphic-git write; a v1 one is left to isomorphic-git), by name. */
export async function readPackIndexes(gitdir: string): Promise<PackIndex[]> {
  const dir = join(gitdir, 'objects', 'pack');
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: PackIndex[] = [];
  for (const name of names.filter((n) => n.endsWith('.idx')).sort()) {
    const idx = await readFile(join(dir, name)).catch(() => undefined);
    if (!idx || idx.length < 8 + 1024 || idx.readUInt32BE(0) !== IDX_MAGIC || idx.readUInt32BE(4) !== 2) continue;
    out.push({ idx, count: idx.readUInt32BE(8 + 255 * 4), packPath: join(dir, `${name.slice(0, -4)}.pack`) });
  }
  return out;
}

/** Enough deflated input for any header to come out (Huffman tables of a dynamic block included). */
export const HEAD_BYTES = 4096;
/** Inflates the start of a deflate stream: at most what `input` yields, never an error for truncation. */
export function inflateHead(input: Buffer): Buffer {
  try {
    return inflateSync(input, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 64 * 1024 * 1024 });
  } catch {
    return Buffer.alloc(0);
  }
}

/** Little-endian base-128 varint (delta headers); undefined when `buf` ends first. */
export function deltaVarint(buf: Buffer, pos: number): { value: number; next: number } | undefined {
  let value = 0;
  let shift = 0;
  for (let i = pos; i < buf.length; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

/** A pack entry's header: its type, its (inflated, for a delta: delta data) size, and where its data starts. */
export interface EntryHeader {
  type: number;
  size: number;
  /** For OBJ_OFS_DELTA: how far back its base starts; for OBJ_REF_DELTA: the base's oid. */
  baseBack?: number;
  baseOid?: string;
  /** Index in `buf` of the deflated data. */
  dataAt: number;
}

/**
 * Parses the entry header at `pos` of `buf` (type and size in a base-128 varint, then a delta's
 * base); undefined when `buf` ends first.
 */
export function entryHeader(buf: Buffer, pos: number): EntryHeader | undefined {
  if (pos >= buf.length) return undefined;
  let b = buf[pos++]!;
  const type = (b >> 4) & 7;
  let size = b & 0x0f;
  let shift = 4;
  while (b & 0x80) {
    if (pos >= buf.length) return undefined;
    b = buf[pos++]!;
    size += (b & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (type === OBJ_OFS_DELTA) {
    // Big-endian base-128 with a +1 per continued byte.
    if (pos >= buf.length) return undefined;
    b = buf[pos++]!;
    let back = b & 0x7f;
    while (b & 0x80) {
      if (pos >= buf.length) return undefined;
      b = buf[pos++]!;
      back = (back + 1) * 128 + (b & 0x7f);
    }
    return { type, size, baseBack: back, dataAt: pos };
  }
  if (type === OBJ_REF_DELTA) {
    if (pos + 20 > buf.length) return undefined;
    return { type, size, baseOid: buf.toString('hex', pos, pos + 20), dataAt: pos + 20 };
  }
  return { type, size, dataAt: pos };
}

/** A delta's result size, from the first inflated bytes of its data (base size, then result size). */
export function deltaResultSize(deflated: Buffer): number | undefined {
  const delta = inflateHead(deflated.subarray(0, HEAD_BYTES));
  const base = deltaVarint(delta, 0);
  return base && deltaVarint(delta, base.next)?.value;
}

/** Offset of `oid` in a v2 pack index, by binary search within its fan-out bucket. */
export function findOffset(pack: { idx: Buffer; count: number }, oid: string): number | undefined {
  const { idx, count } = pack;
  const want = Buffer.from(oid, 'hex');
  if (want.length !== 20) return undefined;
  const first = want[0]!;
  let lo = first === 0 ? 0 : idx.readUInt32BE(8 + (first - 1) * 4);
  let hi = idx.readUInt32BE(8 + first * 4);
  const shaBase = 8 + 1024;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const cmp = idx.compare(want, 0, 20, shaBase + mid * 20, shaBase + mid * 20 + 20);
    if (cmp === 0) {
      const offsetsBase = shaBase + count * 24;
      const small = idx.readUInt32BE(offsetsBase + mid * 4);
      if ((small & 0x80000000) === 0) return small;
      const largeBase = offsetsBase + count * 4;
      return Number(idx.readBigUInt64BE(largeBase + (small & 0x7fffffff) * 8));
    }
    // `compare` on the index buffer: positive means the entry sorts after what we want.
    if (cmp > 0) hi = mid;
    else lo = mid + 1;
  }
  return undefined;
}
