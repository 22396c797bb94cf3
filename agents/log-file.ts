import { copyFileSync, existsSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertKeyPart } from '../state/keys.ts';
import { instanceDir, logPath } from './instance-dir.ts';

/**
 * Container logs are plain files the container writes itself (its stdout and stderr are an
 * O_APPEND fd on `<container>.log`), so logs never flow through the agent and survive its restart.
 */

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;

/**
 * Keeps a log under `maxBytes` by moving its content to `<file>.1` (replacing the older one) and
 * truncating it. Copy-then-truncate rather than rename: the running process holds the file open
 * and must keep writing to the same file; O_APPEND makes its next write land at the new end.
 * Lines written between the copy and the truncate are lost, which is acceptable for a size cap.
 * Returns true when it rotated.
 */
export function rotateLogIfTooBig(file: string, maxBytes: number): boolean {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  copyFileSync(file, `${file}.1`);
  truncateSync(file, 0);
  return true;
}

/** Rotates every container log of one instance dir that is over the cap. */
export function rotateInstanceLogs(dir: string, maxBytes: number): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .filter((f) => rotateLogIfTooBig(join(dir, f), maxBytes));
}

export interface ContainerLog {
  container: string;
  text: string;
}

/**
 * The logs of an instance on this node: one entry per container (or just `container`), the
 * rotated part first, limited to the last `tail` lines when given.
 */
export async function readInstanceLogs(
  dataDir: string,
  node: string,
  id: string,
  container?: string,
  tail?: number,
): Promise<ContainerLog[]> {
  const dir = instanceDir(dataDir, node, id);
  if (!existsSync(dir)) return [];
  const names = container !== undefined
    ? [assertKeyPart(container, 'container name')]
    : readdirSync(dir).filter((f) => f.endsWith('.log')).map((f) => f.slice(0, -'.log'.length)).sort();
  const logs: ContainerLog[] = [];
  for (const name of names) {
    const file = logPath(dir, name);
    const text = (await readOptional(`${file}.1`)) + (await readOptional(file));
    logs.push({ container: name, text: tail === undefined ? text : lastLines(text, tail) });
  }
  return logs;
}

async function readOptional(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return '';
  }
}

export function lastLines(text: string, n: number): string {
  if (n <= 0) return '';
  const lines = text.split('\n');
  // A trailing newline yields an empty last element that is not a line of its own.
  const hasTrailingNewline = lines.at(-1) === '';
  if (hasTrailingNewline) lines.pop();
  const kept = lines.slice(-n).join('\n');
  return hasTrailingNewline && kept ? `${kept}\n` : kept;
}
