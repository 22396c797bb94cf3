/**
 * Trees and blobs read straight from a repository's object store, for the reader of a commit's
 * files (tree-reader.ts): isomorphic-git's readTree/readBlob cost about a millisecond per object
 * (a probe for a loose file first, its pack lookups, a SHA-1 of what it inflated, all through
 * promises), which made reading 10,000 manifests take 10 s where `git cat-file --batch` takes a
 * tenth of one. Here, per read of a commit:
 *   - each pack (objects/pack, .idx v2) is read into memory once, its objects found by binary
 *     search in the index, inflated with Node's zlib, deltas (OFS_DELTA, REF_DELTA) applied, and
 *     the bases of delta chains kept while the read lasts;
 *   - a loose object (objects/ab/cdef...) is read and inflated whole; packs are looked in first
 *     (after a gc almost everything is packed), loose files only for what no pack holds.
 * Sizes are checked by the caller first (packedSize here, object-size.ts for loose objects): read()
 * inflates only what the caller has sized, and caps every inflate (delta bases included). An object found nowhere (alternates, a v1 index) is undefined, and the
 * caller falls back to isomorphic-git, which reports what is wrong.
 */
import { inflateSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { deltaResultSize, entryHeader, findOffset, HEAD_BYTES, OBJ_OFS_DELTA, OBJ_REF_DELTA, readPackIndexes, type PackIndex } from './pack-index.ts';
import { join } from 'node:path';

const TYPES = ['', 'commit', 'tree', 'blob', 'tag'] as const;
/** Delta chains in git are at most 50 deep by default; a longer one is a broken pack. */
const MAX_DELTA_DEPTH = 4096;

export type ObjectType = 'commit' | 'tree' | 'blob' | 'tag';

export interface GitObject {
  type: ObjectType;
  data: Buffer;
}

/** A tree's entry as isomorphic-git's readTree gives it (modes zero-padded to six digits). */
export interface TreeEntry {
  mode: string;
  path: string;
  oid: string;
  type: 'blob' | 'tree' | 'commit';
}

interface Pack extends PackIndex {
  /** The whole .pack, read at the first object wanted from it. */
  pack?: Promise<Buffer>;
}

export class ObjectStore {
  private packs: Promise<Pack[]> | undefined;
  /** Inflated (and undeltified) objects by pack offset, for the chains that share bases. */
  private readonly bases = new Map<string, GitObject>();

  /**
   * `maxBytes` caps every inflate and delta result, the bases of chains included (which the caller
   * did not size: a small manifest can be a delta against a huge blob).
   */
  constructor(
    private readonly gitdir: string,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  private inflate(input: Buffer): Buffer {
    return inflateSync(input, { maxOutputLength: this.maxBytes });
  }

  async read(oid: string): Promise<GitObject | undefined> {
    for (const pack of await this.packIndexes()) {
      const offset = findOffset(pack, oid);
      if (offset !== undefined) return this.readPacked(pack, offset, 0);
    }
    return this.readLoose(oid);
  }

  /**
   * The inflated size of a packed object from its entry's header (for a delta, the result size at
   * the start of its data: a few bytes inflated), without inflating it; undefined when no pack
   * holds it (object-size.ts then looks at loose objects).
   */
  async packedSize(oid: string): Promise<number | undefined> {
    for (const pack of await this.packIndexes()) {
      const offset = findOffset(pack, oid);
      if (offset === undefined) continue;
      pack.pack ??= readFile(pack.packPath);
      const buf = await pack.pack;
      const head = entryHeader(buf, offset);
      if (!head) return undefined;
      if (head.type !== OBJ_OFS_DELTA && head.type !== OBJ_REF_DELTA) return head.size;
      return deltaResultSize(buf.subarray(head.dataAt, head.dataAt + HEAD_BYTES));
    }
    return undefined;
  }

  /** A tree's entries, or undefined when `oid` is not found here; throws when it is not a tree. */
  async readTree(oid: string): Promise<TreeEntry[] | undefined> {
    const obj = await this.read(oid);
    if (!obj) return undefined;
    if (obj.type !== 'tree') throw Object.assign(new Error(`object ${oid} is a ${obj.type}, not a tree`), { code: 'ObjectTypeError' });
    return parseTree(obj.data);
  }

  private async readLoose(oid: string): Promise<GitObject | undefined> {
    const raw = await readFile(join(this.gitdir, 'objects', oid.slice(0, 2), oid.slice(2))).catch(() => undefined);
    if (!raw) return undefined;
    const full = this.inflate(raw);
    const nul = full.indexOf(0);
    const m = nul > 0 ? /^(commit|tree|blob|tag) (\d+)$/.exec(full.subarray(0, nul).toString('latin1')) : null;
    if (!m || Number(m[2]) !== full.length - nul - 1) throw new Error(`loose object ${oid} is corrupt`);
    return { type: m[1] as ObjectType, data: full.subarray(nul + 1) };
  }

  private packIndexes(): Promise<Pack[]> {
    this.packs ??= readPackIndexes(this.gitdir);
    return this.packs;
  }

  private async readPacked(pack: Pack, offset: number, depth: number): Promise<GitObject> {
    const key = `${pack.packPath}\0${offset}`;
    const known = this.bases.get(key);
    if (known) return known;
    if (depth > MAX_DELTA_DEPTH) throw new Error(`delta chain in ${pack.packPath} deeper than ${MAX_DELTA_DEPTH}`);
    pack.pack ??= readFile(pack.packPath);
    const buf = await pack.pack;
    const head = entryHeader(buf, offset);
    if (!head) throw new Error(`pack ${pack.packPath} ends inside an entry header at ${offset}`);
    const { type, dataAt: pos } = head;
    let obj: GitObject;
    if (type === OBJ_OFS_DELTA || type === OBJ_REF_DELTA) {
      let base: GitObject | undefined;
      if (head.baseBack !== undefined) {
        base = await this.readPacked(pack, offset - head.baseBack, depth + 1);
      } else {
        base = await this.read(head.baseOid!);
        if (!base) throw new Error(`delta base ${head.baseOid} of an object in ${pack.packPath} not found`);
      }
      obj = { type: base.type, data: applyDelta(base.data, this.inflate(buf.subarray(pos)), this.maxBytes) };
      // Only bases are worth keeping (an object read once is not read again in one commit).
      if (depth > 0) this.bases.set(key, obj);
    } else {
      const name = TYPES[type];
      if (!name) throw new Error(`unknown object type ${type} in ${pack.packPath}`);
      obj = { type: name, data: this.inflate(buf.subarray(pos)) };
      if (depth > 0) this.bases.set(key, obj);
    }
    return obj;
  }
}

/** Git's delta format: the base's size, the result's, then copy (from the base) and insert runs. */
export function applyDelta(base: Buffer, delta: Buffer, maxBytes = Infinity): Buffer {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let shift = 0;
    let b: number;
    do {
      b = delta[pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return value;
  };
  const baseSize = varint();
  if (baseSize !== base.length) throw new Error(`delta expects a base of ${baseSize} bytes, got ${base.length}`);
  const size = varint();
  if (size > maxBytes) throw new RangeError(`delta result of ${size} bytes is over the limit of ${maxBytes}`);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  while (pos < delta.length) {
    const op = delta[pos++]!;
    if (op & 0x80) {
      let off = 0;
      let len = 0;
      for (let i = 0; i < 4; i++) if (op & (1 << i)) off |= delta[pos++]! << (8 * i);
      for (let i = 0; i < 3; i++) if (op & (1 << (4 + i))) len |= delta[pos++]! << (8 * i);
      off >>>= 0;
      if (len === 0) len = 0x10000;
      if (off + len > base.length || at + len > out.length) throw new Error('delta copies outside its base or result');
      base.copy(out, at, off, off + len);
      at += len;
    } else if (op > 0) {
      if (at + op > out.length || pos + op > delta.length) throw new Error('delta inserts past its result');
      delta.copy(out, at, pos, pos + op);
      at += op;
      pos += op;
    } else {
      throw new Error('delta has a reserved opcode 0');
    }
  }
  if (at !== out.length) throw new Error(`delta made ${at} bytes, not the ${out.length} it announced`);
  return out;
}

/** `<mode> <name>\0<20-byte oid>` entries, as isomorphic-git lists them (040000 for trees). */
export function parseTree(data: Buffer): TreeEntry[] {
  const out: TreeEntry[] = [];
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const nul = data.indexOf(0, space);
    if (space < 0 || nul < 0 || nul + 21 > data.length) throw new Error('tree object is corrupt');
    const mode = data.toString('latin1', pos, space).padStart(6, '0');
    const path = data.toString('utf8', space + 1, nul);
    const oid = data.toString('hex', nul + 1, nul + 21);
    out.push({ mode, path, oid, type: mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob' });
    pos = nul + 21;
  }
  return out;
}
