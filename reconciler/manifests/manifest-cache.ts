/**
 * The outcomes of manifest files (file-outcome.ts) kept by path and Git blob id, so that a commit
 * re-parses and re-validates only the files whose blobs changed since the last load. A blob id is a
 * hash of the bytes, so the same id at the same path is the same outcome, as long as the options
 * and the loader are the same: both are in the fingerprint, and a different one empties the cache.
 * MANIFEST_CACHE_VERSION names what one file yields; bump it whenever that changes (schemas, checks,
 * messages, defaults). Gantry's version is in the fingerprint too, so an upgrade can never reuse an
 * outcome made by other code even if the cache were ever kept beyond the process.
 *
 * After each load the cache keeps only the files that load used: its memory is one commit's
 * outcomes (the parsed objects and the files' text), whatever the history. It is not safe for
 * loads that run concurrently; SourceSync runs one at a time.
 */
import { VERSION } from '../version.ts';
import type { FileOutcome, ParseOptions } from './file-outcome.ts';
import type { CrossFileIndex } from './cross-file-index.ts';

export const MANIFEST_CACHE_VERSION = 1;

export interface LoadStats {
  /** Files parsed and validated by the load. */
  parsed: number;
  /** Files whose outcome was reused (not parsed, not validated: possibly not even read). */
  reused: number;
  /** The checks across files looked at the changed documents only (cross-file-index.ts). */
  incremental: boolean;
}

export class ManifestCache {
  private entries = new Map<string, FileOutcome>();
  private used = new Set<string>();
  private fingerprint = '';
  /** What the last load that used this cache did. */
  last: LoadStats = { parsed: 0, reused: 0, incremental: false };
  /** Files parsed by every load that used this cache, for tests and benchmarks counting parses. */
  totalParsed = 0;
  /** The checks across files of the last load, when it had no error (see cross-file-index.ts). */
  crossFile?: CrossFileIndex;
  /** Loads that used this cache: the number of the current or last one. */
  loads = 0;

  private static key(path: string, oid: string): string {
    return `${path}\0${oid}`;
  }

  /** The size of the blob when the cache holds its outcome at that path: it need not be read. */
  sizeOf(path: string, oid: string): number | undefined {
    return this.entries.get(ManifestCache.key(path, oid))?.size;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Starts a load with these options: outcomes made with others are dropped. */
  begin(opts: ParseOptions): void {
    const fingerprint = `${MANIFEST_CACHE_VERSION}/${VERSION}/${opts.maxFileBytes}/${opts.maxAliasCount}/${opts.maxDepth}`;
    if (fingerprint !== this.fingerprint) {
      this.entries.clear();
      this.crossFile = undefined;
    }
    this.fingerprint = fingerprint;
    this.used = new Set();
    this.last = { parsed: 0, reused: 0, incremental: false };
    this.loads++;
  }

  get(path: string, oid: string): FileOutcome | undefined {
    const key = ManifestCache.key(path, oid);
    const outcome = this.entries.get(key);
    if (outcome) {
      this.used.add(key);
      this.last.reused++;
    }
    return outcome;
  }

  set(path: string, oid: string, outcome: FileOutcome): void {
    const key = ManifestCache.key(path, oid);
    this.entries.set(key, outcome);
    this.used.add(key);
  }

  /** Counts a parse (cached or not). */
  parsed(): void {
    this.last.parsed++;
    this.totalParsed++;
  }

  /** Ends a load: only what it used is kept, and no parse tree outlives it. */
  end(): void {
    for (const [key, outcome] of this.entries) {
      if (this.used.has(key)) outcome.release();
      else this.entries.delete(key);
    }
    this.used = new Set();
  }
}
