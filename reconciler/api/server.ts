import Fastify, { type FastifyInstance } from 'fastify';
import type { ReconcilerMetrics } from '../metrics.ts';
import type { DeleteOutcome } from '../controller/instance-delete.ts';
import type { SourceSync } from '../controller/source-sync.ts';
import type { Store } from '../../state/store.ts';
import { isValidName } from '../../state/keys.ts';
import { describeDeployments, describeInstances, describeNodes } from './views.ts';
import { proxyInstanceLogs, type LogsQuery } from './logs-proxy.ts';
import { setCordoned } from './node-admin.ts';
import { registerPreviewRoutes } from '../preview/routes.ts';
import type { PreviewManager } from '../preview/preview-manager.ts';
import { startDrain } from '../controller/node-drain.ts';
import { registerRolloutRoutes } from './rollout-routes.ts';
import { registerServiceRoutes } from '../services/service-views.ts';
import { registerConfigRoutes } from './config-views.ts';
import { HttpError, installErrorHandler } from './http-error.ts';
import { registerAuth, type ApiTokens } from './auth.ts';

/**
 * The reconciler's HTTP API (fastify). Read endpoints render Redis state; POST /api/v1/sync fetches
 * and reconciles now. Errors are JSON `{ error, code }`, never stack traces or secrets: routes throw
 * a GantryError and `httpErrorOf` (http-error.ts) picks the status from its code's catalog entry.
 */

export interface ApiDeps {
  store: Store;
  sync: SourceSync;
  nodeReadyMs: number;
  version: string;
  /** Who may call /api/v1 (bearer tokens with a role). */
  tokens: ApiTokens;
  previews?: PreviewManager;
  /** Enqueue a deployment's reconcile (after a rollout command). */
  enqueue?: (key: string) => void;
  /** Where an unexpected error's message goes (the client only gets "internal error"). */
  log?: (line: string) => void;
  /** Served as GET /metrics (Prometheus text format), to `read` tokens. */
  metrics?: ReconcilerMetrics;
  /** DELETE /api/v1/instances/:id (instance-delete.ts). */
  deleteInstance?: (id: string, graceSeconds?: number) => Promise<DeleteOutcome>;
}

export async function startApi(deps: ApiDeps, opts: { host: string; port: number }): Promise<{ app: FastifyInstance; url: string }> {
  const app = buildApi(deps);
  const address = await app.listen({ host: opts.host, port: opts.port });
  return { app, url: address.replace('[::1]', '127.0.0.1') };
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const { store } = deps;
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  installErrorHandler(app, 'api', deps.log);
  registerAuth(app, deps.tokens);
  // JSON bodies or none: a text/plain POST is what a cross-site form or fetch can send without a
  // CORS preflight, so it gets 415 (the bearer token already keeps browsers out).
  app.removeContentTypeParser('text/plain');

  app.get('/healthz', async () => {
    await store.ping();
    return { ok: true };
  });

  app.get('/metrics', async (_req, reply) => {
    if (!deps.metrics) throw new HttpError('NOT_FOUND', 'metrics are not enabled');
    const { contentType, body } = await deps.metrics.exposition();
    return reply.type(contentType).send(body);
  });

  app.get('/api/v1/status', async () => {
    const [source, counts] = await Promise.all([store.readSourceStatus(), store.counts()]);
    return { version: deps.version, source: source ?? null, counts };
  });

  app.get<{ Querystring: { namespace?: string } }>('/api/v1/deployments', async (req) => {
    return { items: await describeDeployments(store, req.query.namespace) };
  });

  app.get('/api/v1/nodes', async () => ({ items: await describeNodes(store, deps.nodeReadyMs) }));

  app.post<{ Params: { name: string; action: string } }>('/api/v1/nodes/:name/:action', async (req) => {
    const { name, action } = req.params;
    if (action !== 'cordon' && action !== 'uncordon' && action !== 'drain') throw new HttpError('NOT_FOUND', `unknown node action ${JSON.stringify(action)}: cordon, uncordon or drain`);
    if (!isValidName(name)) throw new HttpError('INVALID_NAME', `invalid node name ${JSON.stringify(name)}`);
    if (action === 'drain') {
      if (!(await startDrain(store, name))) throw new HttpError('NOT_FOUND', `node ${name} not found`);
      return { name, cordoned: true, draining: true };
    }
    if (action === 'uncordon') await store.stopDraining(name);
    const node = await setCordoned(store, name, action === 'cordon');
    if (!node) throw new HttpError('NOT_FOUND', `node ${name} not found`);
    return { name, cordoned: !!node.cordoned };
  });

  app.get<{ Querystring: { namespace?: string; deployment?: string } }>('/api/v1/instances', async (req) => {
    return { items: await describeInstances(store, req.query) };
  });

  app.get<{ Params: { id: string }; Querystring: LogsQuery }>('/api/v1/instances/:id/logs', (req, reply) => proxyInstanceLogs(store, req, reply));

  app.delete<{ Params: { id: string }; Querystring: { gracePeriod?: string; force?: string } }>('/api/v1/instances/:id', async (req) => {
    if (!deps.deleteInstance) throw new HttpError('NOT_FOUND', 'deleting instances is not enabled here');
    const { gracePeriod, force } = req.query;
    if (gracePeriod !== undefined && !/^\d{1,6}$/.test(gracePeriod)) throw new HttpError('INVALID_GRACE_PERIOD', `gracePeriod must be a whole number of seconds, got ${JSON.stringify(gracePeriod)}`);
    const forced = force === 'true' || force === '1';
    // As kubectl: an immediate kill (grace 0) must be asked for with force.
    if (gracePeriod === '0' && !forced) throw new HttpError('INVALID_GRACE_PERIOD', 'gracePeriod=0 stops the instance at once: add force=true to mean it');
    const grace = gracePeriod !== undefined ? Number(gracePeriod) : forced ? 0 : undefined;
    const outcome = await deps.deleteInstance(req.params.id, grace);
    if (!outcome.deleted) throw new HttpError('NOT_FOUND', `instance ${JSON.stringify(req.params.id)} not found`);
    return outcome;
  });

  app.get<{ Querystring: { limit?: string; for?: string } }>('/api/v1/events', async (req) => {
    const limit = Math.min(1000, Math.max(1, Number(req.query.limit ?? 100) || 100));
    return { items: await store.events.read({ limit, object: req.query.for }) };
  });

  app.post('/api/v1/sync', async () => deps.sync.sync());

  registerRolloutRoutes(app, deps);
  registerServiceRoutes(app, store);
  registerConfigRoutes(app, store);

  app.get('/api/v1/diff', async () => deps.sync.diffHead());

  registerPreviewRoutes(app, deps);

  return app;
}
