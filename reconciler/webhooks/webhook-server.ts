import Fastify, { type FastifyInstance } from 'fastify';
import { installErrorHandler } from '../api/http-error.ts';
import { registerWebhookRoutes, type WebhookRouteDeps } from './routes.ts';

/**
 * The webhook listener: its own port, serving only `POST /webhooks/{github,gitlab,gitea,bitbucket}`
 * (each checked against the shared secret), so that what is exposed to a Git host exposes nothing
 * of the API. Started only when a webhook secret is set.
 */
export function buildWebhookApp(deps: WebhookRouteDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: deps.maxBodyBytes });
  installErrorHandler(app, 'webhooks', deps.log);
  registerWebhookRoutes(app, deps);
  return app;
}

export async function startWebhookServer(deps: WebhookRouteDeps, opts: { host: string; port: number; onDelivery?: (url: string, code: number) => void }): Promise<{ app: FastifyInstance; url: string }> {
  const app = buildWebhookApp(deps);
  const { onDelivery } = opts;
  if (onDelivery) app.addHook('onResponse', async (req, reply) => onDelivery(req.url, reply.statusCode));
  const address = await app.listen({ host: opts.host, port: opts.port });
  return { app, url: address.replace('[::1]', '127.0.0.1') };
}
