/**
 * What every benchmark shares: its shape, the figures it reports, and cleanup that runs whether it
 * succeeds, fails or the run is interrupted (Ctrl-C).
 */
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisServerHandle } from '../cli/redis-server.ts';

/** One line of the final table. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Digits after the decimal point in the table (default: 0 for values >= 100, else 1). */
  digits?: number;
}

export interface BenchContext {
  /** A line of detail under the benchmark's heading. */
  log(line: string): void;
  /** Registers cleanup; run in reverse order when the benchmark ends, fails or is interrupted. */
  defer(fn: () => unknown): void;
}

export interface Benchmark {
  /** Short, unique: `npm run bench -- <substring>` selects by it. */
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<Figure[]>;
}

/** A temporary directory removed by the context's cleanup. */
export function tempDir(ctx: BenchContext, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `gantry-bench-${label}-`));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A private redis-server in a temporary directory, stopped (then the directory removed) by cleanup. */
export async function benchRedis(ctx: BenchContext): Promise<RedisServerHandle> {
  const dir = tempDir(ctx, 'redis');
  const redis = await startRedisServer({ dir });
  ctx.defer(async () => {
    const stopped = redis.stop();
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5_000).unref());
    if ((await Promise.race([stopped, timeout])) === 'timeout') redis.process.kill('SIGKILL');
  });
  return redis;
}

/** A key prefix no other run uses. */
export function freshPrefix(): string {
  return `bench${randomUUID().slice(0, 8)}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Forces a full GC when the runtime allows it (see run.ts), so memory figures start clean. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * Cleanups run in reverse order of registration; a failing one does not stop the others. `runAll`
 * runs them once: a second caller (the benchmark's finally and a Ctrl-C handler) waits for the same run.
 */
export class Deferred {
  private readonly fns: (() => unknown)[] = [];
  private running?: Promise<void>;
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  runAll(onError: (err: unknown) => void): Promise<void> {
    this.running ??= (async () => {
      while (this.fns.length > 0) {
        const fn = this.fns.pop()!;
        try {
          await fn();
        } catch (err) {
          onError(err);
        }
      }
    })();
    return this.running;
  }
}

/** GET / on a fresh connection (no keep-alive: ports are reused by new instances). */
export function httpGet(host: string, port: number, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
