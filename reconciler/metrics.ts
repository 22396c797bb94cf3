/**
 * The reconciler's Prometheus metrics (prom-client), served as GET /metrics by the API with the
 * API's authentication (a `read` token). Counters and histograms are updated where things happen
 * (a sync, a reconcile, a scheduling batch, a webhook delivery, an event recorded by this
 * process); gauges of cluster state (queue depth, instances by phase, nodes, deployments) are read
 * from Redis when scraped, and at most every COLLECT_CACHE_MS, so a busy scraper costs Redis little.
 *
 * Labels are bounded sets only: outcomes, phases, event reasons, Git host names, HTTP codes.
 * Nothing names an instance, a deployment or a commit (one series per instance would grow without
 * bound), and no label or value carries a secret.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { NewEvent } from '../state/events.ts';
import type { Store } from '../state/store.ts';
import type { SyncResult } from './controller/source-sync.ts';
import type { ScheduleOutcome } from './scheduler/place-batch.ts';
import { isNodeReady } from '../state/records/node.ts';

const COLLECT_CACHE_MS = 2_000;
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const PHASES = ['Pending', 'Starting', 'Running', 'Exited', 'Failed'] as const;
const WEBHOOK_HOSTS = new Set(['github', 'gitlab', 'gitea', 'bitbucket']);

export interface ClusterReader {
  store: Store;
  nodeReadyMs: number;
  /** BullMQ's counts of the reconcile queue. */
  queueCounts(): Promise<Record<string, number>>;
}

export class ReconcilerMetrics {
  readonly registry = new Registry();
  private readonly syncDuration: Histogram<'outcome'>;
  private readonly commits: Counter<'result'>;
  private readonly reconcileDuration: Histogram<'result'>;
  private readonly reconcileWait: Histogram;
  private readonly schedulingAttempts: Counter<'result'>;
  private readonly schedulingDuration: Histogram;
  private readonly webhookDeliveries: Counter<'host' | 'code'>;
  private readonly events: Counter<'type' | 'reason'>;
  private readonly rollouts: Counter<'result'>;
  private readonly notifications: Counter<'receiver' | 'result'>;
  private cluster?: ClusterReader;
  /** The reads of the cluster gauges, run together by collectCluster. */
  private readonly readers: (() => Promise<void>)[] = [];
  private collected?: Promise<void>;
  private collectedAt = 0;

  constructor(version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'gantry_reconciler_' });
    new Gauge({ name: 'gantry_reconciler_info', help: 'Gantry reconciler build information', labelNames: ['version'], registers }).set({ version }, 1);
    this.syncDuration = new Histogram({ name: 'gantry_source_sync_duration_seconds', help: 'Time of one source sync (fetch, parse, validate, write), by outcome', labelNames: ['outcome'], buckets: SECONDS, registers });
    this.commits = new Counter({ name: 'gantry_commits_total', help: 'Commits applied or rejected by source syncs', labelNames: ['result'], registers });
    this.reconcileDuration = new Histogram({ name: 'gantry_reconcile_duration_seconds', help: 'Time of one deployment reconcile, by result (done, requeue, error)', labelNames: ['result'], buckets: SECONDS, registers });
    this.reconcileWait = new Histogram({ name: 'gantry_reconcile_queue_latency_seconds', help: 'Time a reconcile job waited in the queue before it ran', buckets: SECONDS, registers });
    this.schedulingAttempts = new Counter({ name: 'gantry_scheduling_attempts_total', help: 'Instances the scheduler tried to place, by result (scheduled, unschedulable, gone)', labelNames: ['result'], registers });
    this.schedulingDuration = new Histogram({ name: 'gantry_scheduling_duration_seconds', help: 'Time of one scheduling batch', buckets: SECONDS, registers });
    this.webhookDeliveries = new Counter({ name: 'gantry_webhook_deliveries_total', help: 'Webhook deliveries by Git host and HTTP status code answered', labelNames: ['host', 'code'], registers });
    this.events = new Counter({ name: 'gantry_events_total', help: 'Events recorded by this reconciler, by type and reason', labelNames: ['type', 'reason'], registers });
    this.rollouts = new Counter({ name: 'gantry_rollouts_total', help: 'Rollouts that ended, by result (complete, rolled_back, deadline_exceeded)', labelNames: ['result'], registers });
    // Receivers are named in the notifications file: a bounded set.
    this.notifications = new Counter({ name: 'gantry_notifications_total', help: 'Notifications by receiver and result (sent, failed after its retries, dropped over its rate limit)', labelNames: ['receiver', 'result'], registers });
    const reader = this;
    new Gauge({
      name: 'gantry_reconcile_queue_depth',
      help: 'Reconcile jobs in the queue, by state',
      labelNames: ['state'],
      registers,
      async collect() {
        const counts = await reader.cluster?.queueCounts();
        for (const [state, n] of Object.entries(counts ?? {})) this.set({ state }, n);
      },
    });
    this.clusterGauge('gantry_instances', 'Instances by phase (as last reported by their agents)', ['phase'], async (set) => {
      const byPhase = new Map<string, number>(PHASES.map((p) => [p, 0]));
      for (const i of await this.cluster!.store.readAllInstances()) {
        const phase = i.status?.phase ?? 'Pending';
        byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1);
      }
      for (const [phase, n] of byPhase) set({ phase }, n);
    });
    this.clusterGauge('gantry_nodes', 'Nodes by readiness (heartbeats) and schedulability (not cordoned)', ['ready', 'schedulable'], async (set) => {
      const counts = new Map<string, number>();
      const now = Date.now();
      for (const n of await this.cluster!.store.readNodes()) {
        const key = `${isNodeReady(n.heartbeatAt, now, this.cluster!.nodeReadyMs)}\0${!n.record.cordoned}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      for (const ready of [true, false]) for (const schedulable of [true, false]) set({ ready: String(ready), schedulable: String(schedulable) }, counts.get(`${ready}\0${schedulable}`) ?? 0);
    });
    this.clusterGauge('gantry_deployments', 'Deployments in the applied commit (paused: spec.paused)', ['paused'], async (set) => {
      const deployments = await this.cluster!.store.readDeployments();
      const paused = deployments.filter((d) => d.paused).length;
      set({ paused: 'true' }, paused);
      set({ paused: 'false' }, deployments.length - paused);
    });
  }

  /** A gauge read from Redis at scrape time, all of them in one collection shared for COLLECT_CACHE_MS. */
  private clusterGauge(name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, n: number) => void) => Promise<void>): void {
    const values = new Map<string, { labels: Record<string, string>; n: number }>();
    const reader = this;
    this.readers.push(async () => {
      values.clear();
      await read((labels, n) => values.set(JSON.stringify(labels), { labels, n }));
    });
    new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        if (!reader.cluster) return;
        await reader.collectCluster();
        this.reset();
        for (const { labels, n } of values.values()) this.set(labels, n);
      },
    });
  }

  private collectCluster(): Promise<void> {
    if (this.collected && Date.now() - this.collectedAt < COLLECT_CACHE_MS) return this.collected;
    this.collectedAt = Date.now();
    this.collected = Promise.all(this.readers.map((r) => r())).then(() => undefined);
    // A failed read is tried again at the next scrape, not cached.
    this.collected.catch(() => (this.collectedAt = 0));
    return this.collected;
  }

  /** Where the cluster gauges read from (set once the reconciler's parts exist). */
  readFrom(cluster: ClusterReader): void {
    this.cluster = cluster;
  }

  synced(result: SyncResult, seconds: number): void {
    this.syncDuration.observe({ outcome: result.outcome }, seconds);
    if (result.outcome === 'applied' || result.outcome === 'rejected') this.commits.inc({ result: result.outcome });
  }

  reconciled(result: 'done' | 'requeue' | 'error', seconds: number, waitedSeconds: number): void {
    this.reconcileDuration.observe({ result }, seconds);
    if (waitedSeconds >= 0) this.reconcileWait.observe(waitedSeconds);
  }

  scheduled(outcomes: readonly ScheduleOutcome[], seconds: number): void {
    this.schedulingDuration.observe(seconds);
    for (const o of outcomes) this.schedulingAttempts.inc({ result: o === 'bound' ? 'scheduled' : o === 'pending' ? 'unschedulable' : 'gone' });
  }

  webhookDelivered(url: string, code: number): void {
    const host = /^\/webhooks\/([a-z]+)/.exec(url)?.[1];
    this.webhookDeliveries.inc({ host: host && WEBHOOK_HOSTS.has(host) ? host : 'other', code: String(code) });
  }

  /** Every event this process records (EventLog.observe): counted by reason, rollouts by how they ended. */
  recorded(ev: NewEvent): void {
    this.events.inc({ type: ev.type, reason: ev.reason });
    if (ev.reason === 'RolloutComplete') this.rollouts.inc({ result: 'complete' });
    else if (ev.reason === 'RolledBack') this.rollouts.inc({ result: 'rolled_back' });
    else if (ev.reason === 'ProgressDeadlineExceeded') this.rollouts.inc({ result: 'deadline_exceeded' });
  }

  notified(receiver: string, result: 'sent' | 'failed' | 'dropped'): void {
    this.notifications.inc({ receiver, result });
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
