import { pruneConfigVersions } from './controller/config-gc.ts';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { startApi } from './api/server.ts';
import { reconcileDeployment } from './controller/deployment-reconciler.ts';
import { SourceSync } from './controller/source-sync.ts';
import { checkNodes } from './controller/node-lifecycle.ts';
import { ClusterEpoch } from './controller/cluster-epoch.ts';
import { drainNodes } from './controller/node-drain.ts';
import { ReconcileQueue } from './controller/reconcile-queue.ts';
import { ReconcilerMetrics } from './metrics.ts';
import { levelsOf } from './log.ts';
import { Notifier } from './notifications/notifier.ts';
import { deleteInstanceOnRequest } from './controller/instance-delete.ts';
import type { NotificationConfig } from './notifications/notification-config.ts';
import { describeDecision } from './controller/reconcile-outcome.ts';
import { createGitSource, type GitSource, type SourceConfig } from './git/source.ts';
import { Queues } from './queue/queues.ts';
import { CoalescedRunner } from '../lib/coalesced-runner.ts';
import { connectRedis } from '../state/connection.ts';
import { createKeys, objectKey } from '../state/keys.ts';
import { Scheduler } from './scheduler/scheduler.ts';
import { Store } from '../state/store.ts';
import { DEFAULT_EVICTION_MS, DEFAULT_NODE_READY_MS } from '../state/records/node.ts';
import { EndpointsController } from './services/endpoints-controller.ts';
import { VERSION } from './version.ts';
import { setUpGitHosting, type GitHostingOptions } from './webhooks/git-hosting.ts';
import { startWebhookServer } from './webhooks/webhook-server.ts';
import { ApiTokens } from './api/auth.ts';

/** The webhook listener's port when none is given. */
export const DEFAULT_WEBHOOK_PORT = 7071;

/** After Redis lost its data: how long instances no agent claims wait before they are created. */
export const DEFAULT_ADOPTION_WAIT_MS = 15_000;
export const DEFAULT_FULL_RESYNC_MS = 5 * 60_000;

/**
 * The reconciler process: Git source -> desired state, deployment controller, scheduler, API.
 *
 * Triggers, all of them hints: the source's watcher (chokidar on refs, or the poll for a remote),
 * POST /api/v1/sync, and messages on the changes channel (agents' status reports, node joins).
 * A periodic resync (`resyncMs`) costs what changed, not what exists: desired drift by checksums
 * inside Redis, the deployments announced since their last reconcile began (the changed-deployments
 * set: a lost pub/sub message), the pending instances. A full resync (`fullResyncMs`) re-enqueues
 * every deployment too, for what nothing announced (a record edited behind Gantry's back), as
 * controller-runtime's informer resync and Argo CD's reconciliation timeout do.
 */

export interface ReconcilerOptions {
  redisUrl: string;
  /** Where events are sent (the notifications file); absent: nowhere. */
  notifications?: NotificationConfig;
  prefix?: string;
  source: SourceConfig;
  apiHost?: string;
  /** 0 picks a free port. */
  apiPort?: number;
  /** Who may call the API; default: the tokens in GANTRY_API_ADMIN_TOKEN / GANTRY_API_READ_TOKEN. */
  apiTokens?: ApiTokens;
  /**
   * The webhook listener (POST /webhooks/* only), started when the webhook secret is set:
   * default the API's host and port 7071; 0 picks a free port.
   */
  webhookHost?: string;
  webhookPort?: number;
  resyncMs?: number;
  /** Every deployment re-enqueued this often (default 5 min; at least resyncMs). */
  fullResyncMs?: number;
  /** A node silent this long is NotReady (default 20 s). */
  nodeReadyMs?: number;
  /** A NotReady node's instances are rescheduled after this much more (default 30 s). */
  evictionMs?: number;
  /** How often node heartbeats are checked (default 1 s). */
  nodeCheckMs?: number;
  maxFileBytes?: number;
  /**
   * After Redis lost its data, instances no agent has claimed (yet) are created only after this
   * long (default 15 s, three agent resyncs), so that what still runs is adopted, not restarted.
   */
  adoptionWaitMs?: number;
  /** The cap on a Deployment's replicas: past it a commit is rejected (default 10,000; --max-replicas). */
  maxReplicas?: number;
  log?: (line: string) => void;
  /** Webhooks, pull-request previews and reports to the Git host. */
  gitHosting?: GitHostingOptions;
}

export interface ReconcilerHandle {
  url: string;
  /** The webhook listener's URL, when webhooks are enabled (a secret is set). */
  webhookUrl?: string;
  sync: SourceSync;
  queue: ReconcileQueue;
  store: Store;
  stop(): Promise<void>;
}

export async function startReconciler(opts: ReconcilerOptions): Promise<ReconcilerHandle> {
  const log = levelsOf(opts.log ?? (() => {}));
  const keys = createKeys(opts.prefix);
  const redis: Redis = connectRedis(opts.redisUrl, 'gantry-reconciler');
  const sub: Redis = connectRedis(opts.redisUrl, 'gantry-reconciler-sub');
  // BullMQ's producers on a connection of their own: BullMQ defines its ~40 scripts on the client
  // it is given, and ioredis copies every defined script onto each pipeline and MULTI made from
  // that client, so the store's (one per instance read, per announcement) would pay for them all.
  const queueRedis: Redis = connectRedis(opts.redisUrl, 'gantry-reconciler-queues');
  const store = new Store(redis, keys);
  const metrics = new ReconcilerMetrics(VERSION);
  store.events.observe((ev) => metrics.recorded(ev));
  // Before anything compares times: Redis's clock is the one they are judged on.
  await store.clock.sync().catch(() => undefined);
  const queues = new Queues(queueRedis, keys);
  const nodeReadyMs = opts.nodeReadyMs ?? DEFAULT_NODE_READY_MS;
  const resyncMs = opts.resyncMs ?? 10_000;
  const fullResyncMs = Math.max(resyncMs, opts.fullResyncMs ?? DEFAULT_FULL_RESYNC_MS);

  const scheduler = new Scheduler({ redisUrl: opts.redisUrl, store, queues, keys, nodeReadyMs, log, onScheduled: (outcomes, seconds) => metrics.scheduled(outcomes, seconds) });
  // Coalesces "a node joined or freed room": one retry of the pending instances at a time, and one
  // more after it for whatever announced room meanwhile.
  const pendingRetries = new CoalescedRunner(
    async () => {
      scheduler.invalidate();
      await scheduler.retryPending();
    },
    { onError: (err) => log.error(`scheduler: ${err instanceof Error ? err.message : String(err)}`) },
  );
  const retryPendingSoon = () => pendingRetries.poke();
  const endpoints = new EndpointsController({ store, log });
  // Every reconcile may have changed instances (scale, rollout step): endpoints follow at once.
  // Set when Redis lost its data (ClusterEpoch): until then unclaimed instances wait for claims.
  let adoptUntil = 0;
  const adoptionHoldMs = () => Math.max(0, adoptUntil - Date.now());
  const queue = new ReconcileQueue(queueRedis, opts.redisUrl, store, (key) => reconcileDeployment({ store, queues, onCapacityFreed: retryPendingSoon, adoptionHoldMs, log }, key).finally(() => endpoints.poke()), {
    onError: (key, err, decision) => (decision.action === 'requeue' ? log : log.warn)(`reconcile ${key} ${decision.action === 'requeue' ? 'not ready' : 'failed'} (${describeDecision(decision)}): ${err instanceof Error ? err.message : String(err)}`),
    onRun: (result, seconds, waited) => metrics.reconciled(result, seconds, waited),
  });
  metrics.readFrom({ store, nodeReadyMs, queueCounts: () => queue.counts() });
  const enqueue = (key: string) => queue.add(key);
  const source: GitSource = createGitSource(opts.source);
  const sync = new SourceSync({ store, source, branch: opts.source.branch, maxFileBytes: opts.maxFileBytes, maxReplicas: opts.maxReplicas, enqueue, log, onSynced: (result, seconds) => metrics.synced(result, seconds) });
  const { webhooks, previews } = setUpGitHosting(opts.gitHosting ?? {}, { source: opts.source, store, sync, enqueue, log });

  await sub.subscribe(keys.changesChannel, keys.servicesChannel);
  sub.on('message', (channel: string, message: string) => {
    if (channel === keys.servicesChannel) {
      if (message === 'desired') endpoints.poke(); // 'endpoints' is our own announcement
      return;
    }
    endpoints.poke(); // an instance turned ready/unready, or a node joined
    if (message.startsWith('node/')) {
      retryPendingSoon();
    } else if (message.includes('/')) {
      queue.add(message);
    }
  });

  const epoch = new ClusterEpoch({
    store,
    log,
    onDataLost: async () => {
      adoptUntil = Date.now() + (opts.adoptionWaitMs ?? DEFAULT_ADOPTION_WAIT_MS);
      scheduler.invalidate();
      // The source status went too, so this applies the branch head: desired state is back at once.
      await safe('sync', sync.sync());
    },
  });
  // Back from a Redis outage: look at once (a restart may have come back empty).
  let disconnected = false;
  redis.on('close', () => (disconnected = true));
  redis.on('ready', () => {
    if (!disconnected) return;
    disconnected = false;
    void safe('resync', resync(true));
  });

  let lastFullResync = 0;
  const resync = async (full = Date.now() - lastFullResync >= fullResyncMs) => {
    await epoch.check();
    // Desired records deleted or changed behind Gantry's back, found by their checksums in Redis.
    await safe('drift', sync.repairDrift());
    const keysToSync = new Set(await store.changedDeployments());
    if (full) {
      lastFullResync = Date.now();
      // Deployments in Git, plus any that only instances still name (pruned, not yet drained).
      for (const k of await store.deploymentKeys()) keysToSync.add(k);
      for (const i of await store.readAllInstances()) keysToSync.add(objectKey(i.record.namespace, i.record.deployment));
    }
    for (const k of keysToSync) queue.add(k);
    endpoints.poke();
    await scheduler.retryPending();
    if (full) await pruneConfigVersions(store);
  };
  const safe = (what: string, p: Promise<unknown>) => p.catch((err) => log.error(`${what}: ${err instanceof Error ? err.message : String(err)}`));

  scheduler.start();
  const { app, url }: { app: FastifyInstance; url: string } = await startApi(
    { store, sync, nodeReadyMs, version: VERSION, tokens: opts.apiTokens ?? ApiTokens.fromEnvironment(process.env), previews, enqueue, log, metrics, deleteInstance: (id, grace) => deleteInstanceOnRequest({ store, queues, enqueue, onCapacityFreed: retryPendingSoon }, id, grace) },
    { host: opts.apiHost ?? '127.0.0.1', port: opts.apiPort ?? 7070 },
  );
  // Off until a secret is set: a listener that can only answer 503 is not worth exposing.
  const hooks = process.env[webhooks.secretEnv]
    ? await startWebhookServer(webhooks, { host: opts.webhookHost ?? opts.apiHost ?? '127.0.0.1', port: opts.webhookPort ?? DEFAULT_WEBHOOK_PORT, onDelivery: (url, code) => metrics.webhookDelivered(url, code) })
    : undefined;
  if (hooks) log(`webhooks on ${hooks.url}/webhooks/{github,gitlab,gitea,bitbucket}`);
  source.watch(() => void safe('sync', sync.sync()));
  const timer = setInterval(() => void safe('resync', resync()), resyncMs);
  timer.unref();
  const timings = { graceMs: nodeReadyMs, evictionMs: opts.evictionMs ?? DEFAULT_EVICTION_MS };
  const nodeChecks = new CoalescedRunner(
    async () => {
      try {
        await checkNodes({ store, timings, enqueue, log });
        await drainNodes(store, enqueue);
      } finally {
        // Endpoints drop the instances of a node once it is NotReady (node loss), within this tick.
        endpoints.poke();
      }
    },
    { onError: (err) => log.error(`node check: ${err instanceof Error ? err.message : String(err)}`) },
  );
  const nodeTimer = setInterval(() => {
    // A tick that finds the previous check still running is skipped, not queued behind it.
    if (!nodeChecks.busy) nodeChecks.poke();
  }, opts.nodeCheckMs ?? 1000);
  nodeTimer.unref();
  await safe('cluster epoch', epoch.ensure());
  await safe('sync', sync.sync());
  await safe('resync', resync());
  await safe('previews', previews.resume());
  const notifier = opts.notifications ? new Notifier({ events: store.events, config: opts.notifications, env: process.env, version: VERSION, log, onResult: (receiver, _reason, result) => metrics.notified(receiver, result) }) : undefined;
  notifier?.start();
  log(`API on ${url}, following ${source.describe()}`);

  return {
    url,
    ...(hooks ? { webhookUrl: hooks.url } : {}),
    sync,
    queue,
    store,
    async stop() {
      clearInterval(timer);
      clearInterval(nodeTimer);
      await notifier?.stop();
      await nodeChecks.stop();
      await queue.stop();
      await pendingRetries.stop();
      await endpoints.stop();
      previews.stop();
      await source.close();
      await app.close();
      await hooks?.app.close();
      await scheduler.stop();
      await queues.close();
      sub.disconnect();
      queueRedis.disconnect();
      redis.disconnect();
    },
  };
}
