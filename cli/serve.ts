import { resolve } from 'node:path';
import { startAgent } from '../agents/agent.ts';
import { createLogger } from '../reconciler/log.ts';
import { redactUrl } from '../reconciler/redis/connection.ts';
import { startReconciler } from '../reconciler/reconciler.ts';

/**
 * Long-running commands: `gantry reconciler` and `gantry agent`. Both stop cleanly on SIGINT or
 * SIGTERM, and, when started by `gantry up` (`--parent-pid`), also when their parent dies, so no
 * process is left behind.
 */

/** How long a clean stop may take (instances' grace periods included) before the process just exits. */
const STOP_TIMEOUT_MS = 30_000;

function onShutdown(stop: () => Promise<void>, parentPid?: string): void {
  let stopping = false;
  const shutdown = () => {
    // A second signal, or a stop stuck on an unreachable Redis, must not leave the process behind.
    if (stopping) process.exit(1);
    stopping = true;
    setTimeout(() => process.exit(1), STOP_TIMEOUT_MS).unref();
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  if (parentPid) {
    const ppid = Number(parentPid);
    setInterval(() => {
      try {
        process.kill(ppid, 0);
      } catch {
        shutdown();
      }
    }, 1000).unref();
  }
}

export async function runReconciler(o: {
  redis: string; prefix: string; dataDir: string; repo: string; branch: string; path: string; tokenEnv: string;
  host: string; port: number; pollInterval: number; resync: number; nodeReadyTimeout: number; evictionTimeout: number; parentPid?: string;
}): Promise<void> {
  const log = createLogger('reconciler');
  const repo = /^https?:\/\//.test(o.repo) ? o.repo : resolve(o.repo);
  log(`starting: redis ${redactUrl(o.redis)}, key prefix ${o.prefix}`);
  const handle = await startReconciler({
    redisUrl: o.redis,
    prefix: o.prefix,
    source: { repo, branch: o.branch, subPath: o.path, dataDir: resolve(o.dataDir), pollIntervalMs: repo.startsWith('http') ? o.pollInterval : undefined, tokenEnv: o.tokenEnv },
    apiHost: o.host,
    apiPort: o.port,
    resyncMs: o.resync,
    nodeReadyMs: o.nodeReadyTimeout,
    evictionMs: o.evictionTimeout,
    log,
  });
  onShutdown(async () => {
    log('stopping');
    await handle.stop();
  }, o.parentPid);
}

export async function runAgent(o: {
  node: string; cpu: number; memory: number; labels: Record<string, string>; address: string; redis: string;
  prefix: string; dataDir: string; heartbeat: number; stopInstancesOnExit?: boolean; parentPid?: string;
}): Promise<void> {
  const log = createLogger(`agent/${o.node}`);
  const handle = await startAgent({
    redisUrl: o.redis,
    prefix: o.prefix,
    node: o.node,
    cpuMilli: o.cpu,
    memoryBytes: o.memory,
    labels: o.labels,
    address: o.address,
    dataDir: resolve(o.dataDir),
    heartbeatMs: o.heartbeat,
    log,
  });
  onShutdown(async () => {
    log(o.stopInstancesOnExit ? 'stopping with its instances' : 'stopping (instances keep running)');
    await handle.stop({ stopInstances: !!o.stopInstancesOnExit });
  }, o.parentPid);
}
