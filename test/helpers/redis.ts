import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startRedisServer, type RedisServerHandle } from '../../cli/redis-server.ts';

let shared: Promise<RedisServerHandle> | undefined;
let sharedDir: string | undefined;

/**
 * A real redis-server for this test process, started once on a free port and stopped at exit.
 * Tests isolate themselves with `freshPrefix()`, as BullMQ's own suite does.
 */
export function testRedis(): Promise<RedisServerHandle> {
  if (!shared) {
    sharedDir = mkdtempSync(join(tmpdir(), 'gantry-redis-'));
    shared = startRedisServer({ dir: sharedDir });
    shared.then((h) => {
      // The server must not keep the test process alive once its tests are done.
      h.process.unref();
      h.process.stdout?.destroy();
      h.process.stderr?.destroy();
      process.once('exit', () => {
        h.process.kill('SIGKILL');
        if (sharedDir) rmSync(sharedDir, { recursive: true, force: true });
      });
    });
  }
  return shared;
}

export function freshPrefix(): string {
  return `t${randomUUID().slice(0, 8)}`;
}
