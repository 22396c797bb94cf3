import type { FastifyInstance } from 'fastify';
import type { SourceSync } from '../controller/source-sync.ts';
import { HttpError } from '../api/http-error.ts';
import { WaitingError } from '../../lib/errors/index.ts';
import type { PreviewManager } from './preview-manager.ts';

/**
 * GET /api/v1/plan[?ref=REF|SHA]: what that revision (default: the branch head) would change
 * against what runs now, for `gantry plan` in CI. An unknown ref is 404, a malformed one 400 (the
 * GitSourceError's code says which; lib/errors/codes.ts), any other Git failure 502.
 * GET /api/v1/previews and /api/v1/previews/:number: pull-request previews with their state and
 * endpoints (host:port of their running instances).
 */
export function registerPreviewRoutes(app: FastifyInstance, deps: { sync: SourceSync; previews?: PreviewManager }): void {
  // Admin only, though a GET: a ref makes the reconciler fetch from the remote.
  app.get<{ Querystring: { ref?: string } }>('/api/v1/plan', { config: { role: 'admin' } }, async (req, reply) => {
    const ref = req.query.ref?.trim();
    // Rate-limited: fetches of refs Gantry does not know yet take from a per-process token bucket
    // (429 FETCH_RATE_LIMITED with Retry-After once it is empty; source-sync.ts).
    const commit = ref
      ? await deps.sync.fetchRef(ref, { rateLimited: true }).catch((err: unknown) => {
          if (err instanceof WaitingError && err.code === 'FETCH_RATE_LIMITED') void reply.header('retry-after', String(Math.max(1, Math.ceil(err.requeueAfterMs / 1000))));
          throw err;
        })
      : undefined;
    return deps.sync.diffHead(commit);
  });

  app.get('/api/v1/previews', async () => ({ items: deps.previews ? await deps.previews.list() : [] }));

  app.get<{ Params: { number: string } }>('/api/v1/previews/:number', async (req) => {
    const n = Number(req.params.number);
    const view = Number.isSafeInteger(n) && n > 0 ? await deps.previews?.get(n) : undefined;
    if (!view) throw new HttpError('NOT_FOUND', `no preview of pull request ${JSON.stringify(req.params.number)}`);
    return view;
  });
}
