import { resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { GIT_HOST_KINDS, DEFAULT_GIT_HOST_TOKEN_ENV, type GitHostKind } from '../reconciler/git-host/git-host-client.ts';
import { DEFAULT_WEBHOOK_SECRET_ENV } from '../reconciler/webhooks/routes.ts';
import { durationMs, memoryBytes, nonNegativeInt, positiveInt } from './args.ts';
import { startAgent } from '../agents/agent.ts';
import { createLogger } from '../reconciler/log.ts';
import { redactUrl } from '../state/connection.ts';
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

/** The reconciler's flags for webhooks, previews and the Git host; secrets come from env vars they name. */
export function addGitHostingOptions(cmd: Command): Command {
  const gitHost = (v: string): GitHostKind => {
    if (!(GIT_HOST_KINDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected ${GIT_HOST_KINDS.join(', ')}, got ${JSON.stringify(v)}`);
    return v as GitHostKind;
  };
  const envName = (v: string): string => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) throw new InvalidArgumentError(`expected the name of an environment variable (not the secret itself), got a value of ${v.length} characters`);
    return v;
  };
  return cmd
    .addOption(new Option('--webhook-secret-env <name>', 'environment variable holding the webhooks\' shared secret').argParser(envName).default(DEFAULT_WEBHOOK_SECRET_ENV))
    .addOption(new Option('--webhook-max-body <size>', 'webhook bodies above this get 413').argParser(memoryBytes).default(1024 * 1024, '1Mi'))
    .addOption(new Option('--webhook-repo <url>', 'another URL naming the tracked repository in webhooks (repeatable; e.g. when --repo is a local mirror)').argParser((v: string, prev: string[] = []) => [...prev, v]))
    .addOption(new Option('--git-host <kind>', 'report plans and previews on pull requests: github, gitlab or gitea').argParser(gitHost))
    .addOption(new Option('--git-host-api <url>', 'the Git host API base URL (default https://api.github.com, https://gitlab.com/api/v4)'))
    .addOption(new Option('--git-host-token-env <name>', 'environment variable holding the Git host API token').argParser(envName).default(DEFAULT_GIT_HOST_TOKEN_ENV))
    .addOption(new Option('--max-previews <n>', 'pull-request previews running at once (0: none)').argParser(nonNegativeInt).default(5))
    .addOption(new Option('--preview-replicas <n>', 'replicas of each preview deployment at most').argParser(positiveInt).default(1))
    .addOption(new Option('--preview-ready-timeout <duration>', 'gantry/preview fails when a preview is not ready this long after its deploy').argParser(durationMs).default(300_000, '5m'));
}

export async function runReconciler(o: {
  redis: string; prefix: string; dataDir: string; repo: string; branch: string; path: string; tokenEnv: string;
  host: string; port: number; pollInterval: number; resync: number; nodeReadyTimeout: number; evictionTimeout: number; parentPid?: string;
  webhookSecretEnv: string; webhookMaxBody: number; webhookRepo?: string[]; gitHost?: GitHostKind; gitHostApi?: string; gitHostTokenEnv: string;
  maxPreviews: number; previewReplicas: number; previewReadyTimeout: number;
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
    gitHosting: {
      webhooks: { secretEnv: o.webhookSecretEnv, maxBodyBytes: o.webhookMaxBody, repoUrls: o.webhookRepo },
      previews: { maxPreviews: o.maxPreviews, maxReplicas: o.previewReplicas, readyTimeoutMs: o.previewReadyTimeout },
      gitHost: o.gitHost ? { kind: o.gitHost, apiUrl: o.gitHostApi, tokenEnv: o.gitHostTokenEnv } : undefined,
    },
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
  docker: boolean; logsPort: number; restartBackoff?: number; restartBackoffMax?: number; stopAfterDisconnect?: number;
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
    docker: o.docker,
    logsPort: o.logsPort,
    restartBackoffMs: o.restartBackoff,
    restartBackoffMaxMs: o.restartBackoffMax,
    stopAfterDisconnectMs: o.stopAfterDisconnect,
    log,
  });
  onShutdown(async () => {
    log(o.stopInstancesOnExit ? 'stopping with its instances' : 'stopping (instances keep running)');
    await handle.stop({ stopInstances: !!o.stopInstancesOnExit });
  }, o.parentPid);
}
