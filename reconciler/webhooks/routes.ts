import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../state/store.ts';
import { bitbucket } from './bitbucket.ts';
import { decide, type TrackedSource } from './decide.ts';
import { DeliveryLog } from './delivery-log.ts';
import { gitea, github } from './github.ts';
import { gitlab } from './gitlab.ts';
import { MalformedPayload, type PullRequestEvent, type WebhookEvent, type WebhookProvider } from './webhook-event.ts';
import { type ProviderName } from '../../state/records/preview.ts';
import { HttpError } from '../api/http-error.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * POST /webhooks/{github,gitlab,gitea,bitbucket}. In order: a body over the cap gets 413 (before
 * it is read whole); a missing or wrong signature 401; an event Gantry does not handle 202; a body
 * that is not the event's JSON 400; a delivery id or body seen before 200 with `duplicate` and nothing done;
 * anything else is acted on in the background (Git hosts give a webhook ~10 s) and answered 202
 * with what was decided. The secret is read from the environment on each request (rotation needs
 * no restart) and never logged or echoed.
 */

export const WEBHOOK_PROVIDERS: readonly WebhookProvider[] = [github, gitlab, gitea, bitbucket];
export const DEFAULT_WEBHOOK_SECRET_ENV = 'GANTRY_WEBHOOK_SECRET';
export const DEFAULT_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;
/** GitHub lets a delivery be redelivered for 3 days. */
export const DEFAULT_DELIVERY_TTL_SEC = 3 * 24 * 3600;

export interface WebhookHandlers {
  /** Fetch and reconcile the tracked branch now. */
  sync(): Promise<{ outcome: string }>;
  preview(pr: PullRequestEvent, provider: ProviderName): Promise<void>;
  closePreview(pr: PullRequestEvent, provider: ProviderName): Promise<void>;
}

export interface WebhookRouteDeps {
  store: Store;
  /** Name of the environment variable holding the shared secret. */
  secretEnv: string;
  maxBodyBytes: number;
  deliveryTtlSec: number;
  tracked: TrackedSource;
  handlers: WebhookHandlers;
  log: (line: string) => void;
}

export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps | undefined): void {
  if (!deps) return;
  const deliveries = new DeliveryLog(deps.store, deps.deliveryTtlSec);
  // An encapsulated scope: its raw-body parser does not leak to the JSON API routes.
  void app.register(async (scope) => {
    // The signature is over the exact bytes sent, so the body is kept raw, whatever its type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => done(null, body));
    for (const provider of WEBHOOK_PROVIDERS) {
      scope.post(`/webhooks/${provider.name}`, { bodyLimit: deps.maxBodyBytes }, (req, reply) => receive(provider, req, reply));
    }
  });

  async function receive(provider: WebhookProvider, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const secret = process.env[deps!.secretEnv];
    if (!secret) throw new HttpError('WEBHOOKS_DISABLED', `webhooks are disabled: $${deps!.secretEnv} is not set`);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!provider.verify(req.headers, body, secret)) {
      deps!.log(`webhook ${provider.name}: rejected a delivery from ${req.ip}: missing or invalid signature`);
      throw new HttpError('UNAUTHORIZED', 'missing or invalid webhook signature');
    }
    const eventName = provider.eventName(req.headers) ?? '';
    if (!provider.events.has(eventName)) return reply.status(202).send({ ignored: true, reason: `event ${JSON.stringify(eventName.slice(0, 64))} is not handled` });
    let event: WebhookEvent;
    try {
      event = provider.parse(eventName, decodePayload(body, req.headers['content-type']));
    } catch (err) {
      if (!(err instanceof MalformedPayload)) throw err;
      throw new MalformedPayload(`malformed ${eventName} payload: ${err.message}`);
    }
    // Without a delivery id the body itself identifies the delivery (it carries shas and times).
    const deliveryId = provider.deliveryId(req.headers) ?? `body:${createHash('sha256').update(body).digest('hex')}`;
    const tag = `webhook ${provider.name} ${eventName} (delivery ${printable(deliveryId)})`;
    if (!(await deliveries.claim(provider.name, deliveryId, body))) {
      deps!.log(`${tag}: already handled, ignored`);
      return reply.status(200).send({ duplicate: true, reason: 'this delivery was already handled' });
    }
    const inBackground = (what: string, work: Promise<unknown>) => {
      work.then(
        (res) => {
          if ((res as { outcome?: string } | undefined)?.outcome === 'failed') void deliveries.forget(provider.name, deliveryId, body).catch(() => {});
        },
        (err: unknown) => {
          deps!.log(`${tag}: ${what} failed: ${err instanceof Error ? err.message : String(err)}`);
          void deliveries.forget(provider.name, deliveryId, body).catch(() => {});
        },
      );
    };
    const decision = decide(event, deps!.tracked);
    switch (decision.action) {
      case 'pong':
        return reply.status(200).send({ ok: true, pong: true });
      case 'ignore':
        deps!.log(`${tag}: ignored: ${decision.reason}`);
        return reply.status(202).send({ ignored: true, reason: decision.reason });
      case 'sync':
        deps!.log(`${tag}: push to ${deps!.tracked.branch}${decision.commit ? ` (${shortSha(decision.commit)})` : ''}: syncing now`);
        inBackground('sync', deps!.handlers.sync());
        return reply.status(202).send({ accepted: true, action: 'sync' });
      case 'preview':
        deps!.log(`${tag}: pull request #${decision.pr.number} ${decision.pr.rawAction}: deploying its preview`);
        inBackground('preview', deps!.handlers.preview(decision.pr, provider.name));
        return reply.status(202).send({ accepted: true, action: 'preview', pullRequest: decision.pr.number });
      case 'close-preview':
        deps!.log(`${tag}: pull request #${decision.pr.number} ${decision.pr.rawAction}: removing its preview`);
        inBackground('preview teardown', deps!.handlers.closePreview(decision.pr, provider.name));
        return reply.status(202).send({ accepted: true, action: 'close-preview', pullRequest: decision.pr.number });
    }
  }
}

/** JSON, or GitHub's form encoding (`payload=<json>`). Never echoes the body in errors. */
function decodePayload(body: Buffer, contentType: string | undefined): unknown {
  let text = body.toString('utf8');
  if (/^application\/x-www-form-urlencoded\b/i.test(contentType ?? '')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new MalformedPayload('form body without a "payload" field');
    text = payload;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedPayload('the body is not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new MalformedPayload('the body is not a JSON object');
  return value;
}

function printable(id: string): string {
  return id.replace(/[^\w.:{}-]/g, '?').slice(0, 80);
}
