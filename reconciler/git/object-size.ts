/**
 * The size of a git object without inflating it, so a blob that inflates to gigabytes (a few
 * hundred KiB of deflated zeros) is refused before isomorphic-git's readBlob would inflate it
 * whole. Read straight from the object store, asynchronously:
 *   - a loose object (objects/ab/cdef...): only its first bytes are inflated, up to the
 *     `<type> <size>\0` header;
 *   - a packed one: its offset from the pack index (.idx v2), then the entry's header in the
 *     .pack; for a delta, the result size at the start of the delta data (a few bytes inflated).
 * Returns undefined for an object it cannot find; the caller's own read then reports it.
 */
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** Enough deflated input for any header to come out (Huffman tables of a dynamic block included). */
const HEAD_BYTES = 4096;
const IDX_MAGIC = 0xff744f63;

const OBJ_OFS_DELTA = 6;
const OBJ_REF_DELTA = 7;

interface PackIndex {
  idx: Buffer;
  count: number;
  packPath: string;
}

/** Inflates the start of a deflate stream: at most what `input` yields, never an error for truncation. */
function inflateHead(input: Buffer): Buffer {
  try {
    return inflateSync(input, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 64 * 1024 * 1024 });
  } catch {
    return Buffer.alloc(0);
  }
}

/** Little-endian base-128 varint (delta headers); undefined when `buf` ends first. */
function deltaVarint(buf: Buffer, pos: number): { value: number; next: number } | undefined {
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

export class ObjectSizes {
  private packs: Promise<PackIndex[]> | undefined;
  private readonly handles = new Map<string, Promise<FileHandle>>();

  constructor(private readonly gitdir: string) {}

  /** The inflated size of object `oid` in bytes, or undefined when it is not in this store. */
  async sizeOf(oid: string): Promise<number | undefined> {
    const loose = await this.looseSize(oid);
    if (loose !== undefined) return loose;
    for (const pack of await this.packIndexes()) {
      const offset = findOffset(pack, oid);
      if (offset !== undefined) return this.packedSize(pack.packPath, offset);
    }
    return undefined;
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()));
  }

  private async looseSize(oid: string): Promise<number | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2)), 'r');
    } catch {
      return undefined;
    }
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
      const head = inflateHead(buf.subarray(0, bytesRead));
      const nul = head.indexOf(0);
      const m = nul > 0 ? /^(?:blob|tree|commit|tag) (\d+)$/.exec(head.subarray(0, nul).toString('latin1')) : null;
      return m ? Number(m[1]) : undefined;
    } finally {
      await fh.close();
    }
  }

  private packIndexes(): Promise<PackIndex[]> {
    this.packs ??= (async () => {
      const dir = join(this.gitdir, 'objects', 'pack');
      const names = await readdir(dir).catch(() => [] as string[]);
      const out: PackIndex[] = [];
      for (const name of names.filter((n) => n.endsWith('.idx')).sort()) {
        const idx = await readFile(join(dir, name)).catch(() => undefined);
        // Only v2 indexes (what git and isomorphic-git write); a v1 one is left to isomorphic-git.
        if (!idx || idx.length < 8 + 1024 || idx.readUInt32BE(0) !== IDX_MAGIC || idx.readUInt32BE(4) !== 2) continue;
        out.push({ idx, count: idx.readUInt32BE(8 + 255 * 4), packPath: join(dir, `${name.slice(0, -4)}.pack`) });
      }
      return out;
    })();
    return this.packs;
  }

  private handle(path: string): Promise<FileHandle> {
    let h = this.handles.get(path);
    if (!h) {
      h = open(path, 'r');
      this.handles.set(path, h);
    }
    return h;
  }

  private async read(path: string, position: number, length: number): Promise<Buffer> {
    const fh = await this.handle(path);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  }

  private async packedSize(packPath: string, offset: number): Promise<number | undefined> {
    // Entry header: type and size in a big-endian-ish varint, then for deltas the base.
    const head = await this.read(packPath, offset, 32);
    if (head.length === 0) return undefined;
    let b = head[0]!;
    const type = (b >> 4) & 7;
    let size = b & 0x0f;
    let shift = 4;
    let pos = 1;
    while (b & 0x80) {
      if (pos >= head.length) return undefined;
      b = head[pos++]!;
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    }
    if (type !== OBJ_OFS_DELTA && type !== OBJ_REF_DELTA) return size;
    if (type === OBJ_OFS_DELTA) {
      do {
        if (pos >= head.length) return undefined;
        b = head[pos++]!;
      } while (b & 0x80);
    } else {
      pos += 20;
    }
    // A delta's data starts with the base's size and then the result's: inflate just that much.
    const delta = inflateHead(await this.read(packPath, offset + pos, HEAD_BYTES));
    const base = deltaVarint(delta, 0);
    const result = base && deltaVarint(delta, base.next);
    return result?.value;
  }
}

/** Offset of `oid` in a v2 pack index, by binary search within its fan-out bucket. */
function findOffset(pack: PackIndex, oid: string): number | undefined {
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
