/**
 * `gantry validate PATH`: the loader over files on disk instead of a Git tree.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_MAX_FILE_BYTES,
  isLoaderInput,
  loadManifests,
  type LoadOptions,
  type LoadResult,
  type ManifestFile,
} from './load-manifests.ts';

const SKIPPED_DIRS = new Set(['.git', 'node_modules']);

/**
 * Manifest files under `dir`, paths relative to `root` with '/' separators, in a stable order.
 * Symbolic links are not followed: a Git tree stores them as links, so the reconciler would not
 * see what they point to either, and they could lead outside the repository.
 */
async function collect(root: string, dir: string, maxFileBytes: number, out: ManifestFile[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) await collect(root, full, maxFileBytes, out);
    } else if (entry.isFile() && isLoaderInput(entry.name)) {
      const rel = path.relative(root, full).split(path.sep).join('/');
      const { size } = await stat(full);
      // Oversized files are reported by the loader from their size; reading them is wasted work.
      out.push({ path: rel, size, content: size > maxFileBytes ? '' : await readFile(full) });
    }
  }
}

/**
 * Loads and validates the manifests under `dir` (or its sub-folder `subPath`), skipping .git and
 * node_modules. Error paths are relative to `dir`. Throws only for I/O problems (such as `dir` not
 * existing) and for a `subPath` that leads outside `dir`.
 */
export async function validateDirectory(dir: string, subPath = '.', options: LoadOptions = {}): Promise<LoadResult> {
  const root = path.resolve(dir);
  const start = path.resolve(root, subPath);
  const rel = path.relative(root, start);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Error(`path ${JSON.stringify(subPath)} is outside ${JSON.stringify(dir)}`);
  }
  const files: ManifestFile[] = [];
  await collect(root, start, options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, files);
  return loadManifests(files, options);
}
