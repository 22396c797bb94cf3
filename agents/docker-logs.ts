import { appendFileSync, mkdirSync } from 'node:fs';
import { PassThrough, type Writable } from 'node:stream';
import type Docker from 'dockerode';
import { logPath } from './instance-dir.ts';

/**
 * Logs of Docker containers. While a container exists its logs come from the engine (json-file
 * driver, capped); when it has ended the agent appends its last lines to `<container>.log` in the
 * instance dir before removing it, so `logs` still shows why a container died after it is gone,
 * just as the process driver's log file outlives its process.
 */

/** Lines kept from each ended container. */
export const SAVED_LOG_LINES = 1_000;

/**
 * Splits the engine's multiplexed log format (8-byte header: stream, 3 zero bytes, big-endian
 * length) and joins stdout and stderr in order. A buffer that does not start with a valid header
 * is a TTY container's raw output.
 */
export function demuxLogs(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const type = buf[offset]!;
    if (type > 2) return offset === 0 ? buf : Buffer.concat([...parts, buf.subarray(offset)]);
    const length = buf.readUInt32BE(offset + 4);
    parts.push(buf.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  return Buffer.concat(parts);
}

/** The last `tail` lines of a container's output (stdout and stderr), or all of it. */
export async function readContainerLogs(docker: Docker, id: string, tail?: number): Promise<Buffer> {
  const raw = await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, ...(tail !== undefined ? { tail } : {}) });
  return demuxLogs(Buffer.isBuffer(raw) ? raw : Buffer.from(raw as unknown as string));
}

/** Appends the last lines of an ended container to its log file in the instance dir. */
export async function saveLastLines(docker: Docker, id: string, dir: string, container: string): Promise<void> {
  const text = await readContainerLogs(docker, id, SAVED_LOG_LINES);
  if (text.length === 0) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(logPath(dir, container), text);
}

/**
 * Streams a container's output to `out` (tail first, then follows) until the container stops,
 * `signal` aborts, or the engine closes the stream. Resolves when it is over.
 */
/**
 * Streams a container's output to `out` until `signal`; the engine's stream is paused while more
 * than `maxBufferedBytes` waits in `out` (a slow reader costs no memory here).
 */
export async function followContainerLogs(docker: Docker, id: string, out: Writable, tail: number | undefined, signal: AbortSignal, maxBufferedBytes = 1024 * 1024): Promise<void> {
  if (signal.aborted) return;
  const stream = (await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: true, ...(tail !== undefined ? { tail } : {}) })) as NodeJS.ReadableStream & { destroy(): void };
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => {
    out.write(chunk);
    if (out.writableLength >= maxBufferedBytes && !stream.isPaused()) {
      stream.pause();
      out.once('drain', () => stream.resume());
    }
  });
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve) => {
    const done = () => {
      signal.removeEventListener('abort', done);
      stream.destroy();
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}
