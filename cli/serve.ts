import type { NotificationConfig } from '../reconciler/notifications/notification-config.ts';
import { VERSION } from '../reconciler/version.ts';
import { join, resolve } from 'node:path';
import { ADMIN_TOKEN_FILE, ApiTokens, ensureAdminToken, TOKENS_FILE } from '../reconciler/api/auth.ts';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { GIT_HOST_KINDS, DEFAULT_GIT_HOST_TOKEN_ENV, type GitHostKind } from '../reconciler/git-host/git-host-client.ts';
import { DEFAULT_WEBHOOK_SECRET_ENV } from '../reconciler/webhooks/routes.ts';
import { DEFAULT_TRUST_POLICY, parseAccessLevel, parseAssociations, parseTrustRules, type TrustRule } from '../reconciler/preview/pr-trust.ts';
import type { AccessLevel } from '../reconciler/git-host/git-host-client.ts';
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
    .addOption(new Option('--preview-ready-timeout <duration>', 'gantry/preview fails when a preview is not ready this long after its deploy').argParser(durationMs).default(300_000, '5m'))
    .addOption(new Option('--preview-trust <rules>', 'which pull requests get a preview: same-repo (head branch in the tracked repository), author (trusted author), label (a trusted person added --preview-label), or anyone').argParser(invalidArgument(parseTrustRules)).default(DEFAULT_TRUST_POLICY.rules, DEFAULT_TRUST_POLICY.rules.join(',')))
    .addOption(new Option('--preview-trusted-associations <list>', "GitHub author_association values of trusted authors").argParser(invalidArgument(parseAssociations)).default(DEFAULT_TRUST_POLICY.associations, DEFAULT_TRUST_POLICY.associations.join(',')))
    .addOption(new Option('--preview-min-access <level>', 'least access of a trusted GitLab/Gitea author and of whoever adds the label: triage, write, maintain, admin (GitLab: reporter, developer, maintainer, owner)').argParser(invalidArgument(parseAccessLevel)).default(DEFAULT_TRUST_POLICY.minAccess))
    .addOption(new Option('--preview-label <name>', 'the label a trusted person adds to a pull request to allow its preview').argParser(invalidArgument(labelName)).default(DEFAULT_TRUST_POLICY.label))
    .addOption(new Option('--preview-comment-urls', "publish preview endpoints' node addresses (http://<node>:<port>) in the pull-request comment").default(false));
}

/** A pure parser's TypeError as commander's one-line argument error. */
function invalidArgument<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof Error ? err.message : String(err));
    }
  };
}

function labelName(v: string): string {
  const name = v.trim();
  if (name.length === 0 || name.length > 100) throw new TypeError(`expected a label name of 1 to 100 characters, got ${JSON.stringify(v)}`);
  return name;
}

export async function runReconciler(o: {
  redis: string; prefix: string; dataDir: string; repo: string; branch: string; path: string; tokenEnv: string;
  host: string; port: number; apiTokensFile?: string; webhookHost?: string; webhookPort: number; pollInterval: number; resync: number; fullResync: number; nodeReadyTimeout: number; evictionTimeout: number; parentPid?: string;
  webhookSecretEnv: string; webhookMaxBody: number; webhookRepo?: string[]; gitHost?: GitHostKind; gitHostApi?: string; gitHostTokenEnv: string;
  maxPreviews: number; previewReplicas: number; previewReadyTimeout: number; maxReplicas?: number; adoptionWait?: number;
  maxFileSize: number; maxCommitFiles: number; maxCommitSize: number; maxObjectSize: number; maxFetchSize: number;
  previewTrust?: TrustRule[]; previewTrustedAssociations?: string[]; previewMinAccess?: AccessLevel; previewLabel?: string; previewCommentUrls?: boolean;
  notificationsFile?: NotificationConfig;
}): Promise<void> {
  const log = createLogger('reconciler');
  const repo = /^https?:\/\//.test(o.repo) ? o.repo : resolve(o.repo);
  log(`starting: redis ${redactUrl(o.redis)}, key prefix ${o.prefix}`);
  const dataDir = resolve(o.dataDir);
  const tokensFile = resolve(o.apiTokensFile ?? join(dataDir, TOKENS_FILE));
  // A reconciler nobody can call is no use: without any token, one admin token is made for the
  // data dir's owner (where `gantry up` and the CLI look for it).
  if (ApiTokens.fromEnvironment(process.env, tokensFile, log).size === 0 && ensureAdminToken(tokensFile, join(dataDir, ADMIN_TOKEN_FILE)).created) {
    log(`created an admin API token in ${join(dataDir, ADMIN_TOKEN_FILE)} (mode 0600; the CLI finds it there)`);
  }
  const tokens = ApiTokens.fromEnvironment(process.env, tokensFile, log);
  const handle = await startReconciler({
    redisUrl: o.redis,
    prefix: o.prefix,
    source: {
      repo, branch: o.branch, subPath: o.path, dataDir: resolve(o.dataDir), pollIntervalMs: repo.startsWith('http') ? o.pollInterval : undefined, tokenEnv: o.tokenEnv,
      maxFileBytes: o.maxFileSize,
      limits: { maxFiles: o.maxCommitFiles, maxTotalBytes: o.maxCommitSize },
      fetchLimits: { maxObjectBytes: o.maxObjectSize, maxPackBytes: o.maxFetchSize },
    },
    maxFileBytes: o.maxFileSize,
    apiHost: o.host,
    apiPort: o.port,
    apiTokens: tokens,
    webhookHost: o.webhookHost,
    webhookPort: o.webhookPort,
    resyncMs: o.resync,
    fullResyncMs: o.fullResync,
    nodeReadyMs: o.nodeReadyTimeout,
    evictionMs: o.evictionTimeout,
    maxReplicas: o.maxReplicas,
    adoptionWaitMs: o.adoptionWait,
    ...(o.notificationsFile ? { notifications: o.notificationsFile } : {}),
    gitHosting: {
      webhooks: { secretEnv: o.webhookSecretEnv, maxBodyBytes: o.webhookMaxBody, repoUrls: o.webhookRepo },
      previews: {
        maxPreviews: o.maxPreviews, maxReplicas: o.previewReplicas, readyTimeoutMs: o.previewReadyTimeout,
        trustRules: o.previewTrust, trustedAssociations: o.previewTrustedAssociations, trustMinAccess: o.previewMinAccess, trustLabel: o.previewLabel, commentUrls: o.previewCommentUrls,
      },
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
  node: string; cpu: number; memory: number; labels: Record<string, string>; maxInstances?: number; address: string; redis: string;
  prefix: string; dataDir: string; heartbeat: number; stopInstancesOnExit?: boolean; parentPid?: string;
  docker: boolean; logsPort: number; restartBackoff?: number; restartBackoffMax?: number; stopAfterDisconnect?: number; adoptionWindow?: number;
  podNetworkNamespaces?: boolean; podNetworkRange?: string; hollow?: boolean;
  concurrency?: number;
}): Promise<void> {
  const log = createLogger(`agent/${o.node}`);
  const handle = await startAgent({
    version: VERSION,
    redisUrl: o.redis,
    prefix: o.prefix,
    node: o.node,
    cpuMilli: o.cpu,
    memoryBytes: o.memory,
    labels: o.labels,
    maxInstances: o.maxInstances,
    address: o.address,
    dataDir: resolve(o.dataDir),
    heartbeatMs: o.heartbeat,
    docker: o.docker,
    logsPort: o.logsPort,
    restartBackoffMs: o.restartBackoff,
    restartBackoffMaxMs: o.restartBackoffMax,
    stopAfterDisconnectMs: o.stopAfterDisconnect,
    adoptionWindowMs: o.adoptionWindow,
    podNetworkNamespaces: !!o.podNetworkNamespaces,
    podNetworkRange: o.podNetworkRange,
    hollow: !!o.hollow,
    concurrency: o.concurrency,
    log,
  });
  onShutdown(async () => {
    log(o.stopInstancesOnExit ? 'stopping with its instances' : 'stopping (instances keep running)');
    await handle.stop({ stopInstances: !!o.stopInstancesOnExit });
  }, o.parentPid);
}
