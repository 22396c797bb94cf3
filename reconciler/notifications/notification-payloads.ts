/**
 * What a notification says, and to whom it goes. Pure. The payloads carry the event as Gantry
 * recorded it (events never hold secrets: Secret values, tokens and credentialed URLs are kept
 * out of them where they are made), and nothing else from the cluster.
 */
import type { GantryEvent } from '../../state/events.ts';
import type { ReceiverConfig } from './notification-config.ts';

/**
 * The namespace an event is about, from its object: `deployment/<ns>/<name>`, `service/<ns>/<name>`,
 * `instance/<ns>.<deployment>-<hash>-<n>`, `preview/<n>` (its namespaces are pr-<n>-*: none
 * here), `node/<name>` and `source` (cluster-wide: undefined).
 */
export function namespaceOf(object: string): string | undefined {
  const [kind, rest = ''] = [object.slice(0, object.indexOf('/')), object.slice(object.indexOf('/') + 1)];
  if (kind === 'deployment' || kind === 'service' || kind === 'configmap' || kind === 'secret') return rest.split('/')[0] || undefined;
  if (kind === 'instance') return rest.split('.')[0] || undefined;
  return undefined;
}

/** Whether `receiver` wants `ev`: its reason is listed, and it is in a listed namespace (when any are). */
export function wants(receiver: Pick<ReceiverConfig, 'events' | 'namespaces'>, ev: Pick<GantryEvent, 'reason' | 'object'>): boolean {
  if (receiver.events && !receiver.events.has(ev.reason)) return false;
  if (!receiver.namespaces) return true;
  const ns = namespaceOf(ev.object);
  return ns !== undefined && receiver.namespaces.has(ns);
}

/** The generic webhook's JSON body. */
export function webhookPayload(ev: GantryEvent, sender: { version: string }): Record<string, unknown> {
  const namespace = namespaceOf(ev.object);
  return {
    kind: 'GantryEvent',
    version: sender.version,
    event: { id: ev.id, time: new Date(ev.time).toISOString(), type: ev.type, reason: ev.reason, object: ev.object, ...(namespace ? { namespace } : {}), message: ev.message },
  };
}

/** Slack's incoming-webhook body (also what Mattermost and Rocket.Chat accept). */
export function slackPayload(ev: GantryEvent): Record<string, unknown> {
  const icon = ev.type === 'Warning' ? ':warning:' : ':white_check_mark:';
  // Slack's mrkdwn: &, < and > are control characters and must be escaped.
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const text = `${icon} *${escape(ev.reason)}* \`${escape(ev.object)}\`: ${escape(ev.message)}`;
  return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }, { type: 'context', elements: [{ type: 'mrkdwn', text: `Gantry · ${new Date(ev.time).toISOString()}` }] }] };
}

/** Delay before attempt `attempt` (2, 3, ...): 1 s doubling, at most 60 s; a Retry-After wins when given. */
export function retryDelayMs(attempt: number, retryAfterSeconds?: number): number {
  if (retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds >= 0) return Math.min(retryAfterSeconds * 1000, 60_000);
  return Math.min(1000 * 2 ** (attempt - 2), 60_000);
}

/** Whether an HTTP answer is worth another attempt: server errors and 429; a 4xx says the payload or URL is wrong. */
export function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}
