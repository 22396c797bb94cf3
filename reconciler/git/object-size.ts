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
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { deltaResultSize, entryHeader, findOffset, HEAD_BYTES, inflateHead, OBJ_OFS_DELTA, OBJ_REF_DELTA, readPackIndexes, type PackIndex } from './pack-index.ts';



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
    this.packs ??= readPackIndexes(this.gitdir);
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
    // The header is at most 10 bytes of size, 10 of base offset or 20 of base oid.
    const head = entryHeader(await this.read(packPath, offset, 32), 0);
    if (!head) return undefined;
    if (head.type !== OBJ_OFS_DELTA && head.type !== OBJ_REF_DELTA) return head.size;
    // A delta's data starts with the base's size and then the result's: inflate just that much.
    return deltaResultSize(await this.read(packPath, offset + head.dataAt, HEAD_BYTES));
  }
}
