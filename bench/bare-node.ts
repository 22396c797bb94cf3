/**
 * The floor under commit-to-serving's figures: the same `node -e` HTTP server the deployment runs,
 * started by hand (no Gantry), until it answers on its port, polled as the benchmark polls
 * replicas. `n` servers start at once for the floor of n replicas starting together.
 */
import { spawn } from 'node:child_process';
import { freePort } from '../cli/redis-server.ts';
import { httpGet, sleep } from './harness.ts';

/** ms from the spawn of `n` servers until all of them answer (each killed afterwards). */
export async function bareNodeStart(script: string, n = 1, pollMs = 5): Promise<number> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const t0 = performance.now();
  const children = ports.map((port) => spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, PORT: String(port), GANTRY_INSTANCE_ID: 'bare', GREETING: 'bare' }, stdio: 'ignore' }));
  try {
    const answered = new Set<number>();
    const deadline = t0 + 30_000;
    while (answered.size < n) {
      await Promise.all(ports.filter((p) => !answered.has(p)).map((p) => httpGet('127.0.0.1', p, 500).then(() => answered.add(p), () => {})));
      if (answered.size >= n) break;
      if (performance.now() > deadline) throw new Error(`bare node servers did not answer within 30 s (${answered.size}/${n})`);
      await sleep(pollMs);
    }
    return performance.now() - t0;
  } finally {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
  }
}
