/**
 * The notifications file (`gantry reconciler --notifications-file FILE`): where events are sent.
 * Pure: parses and checks the YAML, every mistake named with its place, nothing read from the
 * environment here (URLs given by `urlEnv` are looked up by the notifier, so they never sit in the
 * file nor in a log).
 *
 *   receivers:
 *     - name: ops                       # a DNS-label name: what logs and metrics say
 *       slack: { urlEnv: SLACK_URL }    # a Slack-compatible incoming webhook ...
 *       events: [RolledBack, CommitRejected, NodeNotReady]   # default: DEFAULT_EVENTS; ['*']: all
 *       namespaces: [shop]              # default: every namespace (and cluster-wide events)
 *       maxPerMinute: 30                # default 60; beyond it events are dropped (and counted)
 *     - name: audit
 *       webhook: { url: http://127.0.0.1:9000/gantry }   # ... or a generic JSON webhook (url or urlEnv)
 *       events: ['*']
 *       maxAttempts: 5                  # default 5: retries with backoff on 5xx, 429 and network errors
 */
import { parse } from 'yaml';

export const DEFAULT_EVENTS = ['RolloutComplete', 'RolledBack', 'ProgressDeadlineExceeded', 'CommitRejected', 'FetchFailed', 'NodeNotReady', 'NodeLost', 'CrashLoopBackOff', 'PreviewReady', 'PreviewFailed'] as const;
export const DEFAULT_MAX_PER_MINUTE = 60;
export const DEFAULT_MAX_ATTEMPTS = 5;

export interface ReceiverConfig {
  name: string;
  kind: 'webhook' | 'slack';
  /** The URL itself, or the environment variable that holds it (a Slack URL is a secret). */
  target: { url: string } | { urlEnv: string };
  /** Event reasons sent; undefined: every reason. */
  events?: ReadonlySet<string>;
  /** Namespaces whose events are sent; undefined: all, cluster-wide events (nodes, source) too. */
  namespaces?: ReadonlySet<string>;
  maxPerMinute: number;
  maxAttempts: number;
}

export interface NotificationConfig {
  receivers: ReceiverConfig[];
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringList(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string' && s.length > 0)) throw new Error(`${where} must be a non-empty list of strings`);
  return v as string[];
}

function positiveInt(v: unknown, where: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || (v as number) < 1) throw new Error(`${where} must be a positive integer`);
  return v as number;
}

function targetOf(v: unknown, where: string): ReceiverConfig['target'] {
  if (!isRecord(v)) throw new Error(`${where} must be a mapping with url or urlEnv`);
  const unknown = Object.keys(v).filter((k) => k !== 'url' && k !== 'urlEnv');
  if (unknown.length > 0) throw new Error(`${where}: unknown field ${unknown[0]} (url or urlEnv)`);
  if ((v.url === undefined) === (v.urlEnv === undefined)) throw new Error(`${where} needs exactly one of url and urlEnv`);
  if (v.urlEnv !== undefined) {
    if (typeof v.urlEnv !== 'string' || !ENV_NAME.test(v.urlEnv)) throw new Error(`${where}.urlEnv must be an environment variable name`);
    return { urlEnv: v.urlEnv };
  }
  if (typeof v.url !== 'string' || !/^https?:\/\//.test(v.url)) throw new Error(`${where}.url must be an http(s) URL`);
  if (/^[a-z]+:\/\/[^/?#]*@/i.test(v.url)) throw new Error(`${where}.url must not hold credentials: put the URL in the environment and name it with urlEnv`);
  return { url: v.url };
}

const RECEIVER_FIELDS = new Set(['name', 'webhook', 'slack', 'events', 'namespaces', 'maxPerMinute', 'maxAttempts']);

/** Parses the file's text; throws one Error naming the file, the receiver and the field. */
export function parseNotificationConfig(text: string, file = 'notifications file'): NotificationConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  if (!isRecord(doc) || !Array.isArray(doc.receivers)) throw new Error(`${file}: expected a mapping with a receivers list`);
  const names = new Set<string>();
  const receivers = doc.receivers.map((r: unknown, i: number): ReceiverConfig => {
    const where = `${file}: receivers[${i}]`;
    if (!isRecord(r)) throw new Error(`${where} must be a mapping`);
    const extra = Object.keys(r).find((k) => !RECEIVER_FIELDS.has(k));
    if (extra) throw new Error(`${where}: unknown field ${extra}`);
    if (typeof r.name !== 'string' || !NAME.test(r.name)) throw new Error(`${where}.name must be a DNS label (lowercase letters, digits, -)`);
    if (names.has(r.name)) throw new Error(`${where}.name ${r.name} is used twice`);
    names.add(r.name);
    if ((r.webhook === undefined) === (r.slack === undefined)) throw new Error(`${where} (${r.name}) needs exactly one of webhook and slack`);
    const kind = r.webhook !== undefined ? 'webhook' : 'slack';
    const events = r.events === undefined ? new Set<string>(DEFAULT_EVENTS) : stringList(r.events, `${where}.events`);
    return {
      name: r.name,
      kind,
      target: targetOf(r[kind], `${where}.${kind}`),
      ...(Array.isArray(events) && events.includes('*') ? {} : { events: new Set(events) }),
      ...(r.namespaces !== undefined ? { namespaces: new Set(stringList(r.namespaces, `${where}.namespaces`)) } : {}),
      maxPerMinute: positiveInt(r.maxPerMinute, `${where}.maxPerMinute`, DEFAULT_MAX_PER_MINUTE),
      maxAttempts: positiveInt(r.maxAttempts, `${where}.maxAttempts`, DEFAULT_MAX_ATTEMPTS),
    };
  });
  return { receivers };
}
