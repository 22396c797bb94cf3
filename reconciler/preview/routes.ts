import type { FastifyInstance } from 'fastify';
import type { SourceSync } from '../controller/source-sync.ts';
import { isGitSourceError } from '../git/source.ts';
import type { PreviewManager } from './preview-manager.ts';

/**
 * GET /api/v1/plan[?ref=REF|SHA]: what that revision (default: the branch head) would change
 * against what runs now, for `gantry plan` in CI. An unknown ref is 404, a malformed one 400.
 * GET /api/v1/previews and /api/v1/previews/:number: pull-request previews with their state and
 * endpoints (host:port of their running instances).
 */
export function registerPreviewRoutes(app: FastifyInstance, deps: { sync: SourceSync; previews?: PreviewManager }): void {
  app.get<{ Querystring: { ref?: string } }>('/api/v1/plan', async (req, reply) => {
    const ref = req.query.ref?.trim();
    let commit: string | undefined;
    if (ref) {
      try {
        commit = await deps.sync.fetchRef(ref);
      } catch (err) {
        if (!isGitSourceError(err)) throw err;
        const status = err.code === 'INVALID_CONFIG' ? 400 : err.code === 'BRANCH_NOT_FOUND' || err.code === 'COMMIT_NOT_FOUND' ? 404 : 502;
        return reply.status(status).send({ error: err.message, code: err.code });
      }
    }
    return deps.sync.diffHead(commit);
  });

  app.get('/api/v1/previews', async () => ({ items: deps.previews ? await deps.previews.list() : [] }));

  app.get<{ Params: { number: string } }>('/api/v1/previews/:number', async (req, reply) => {
    const n = Number(req.params.number);
    const view = Number.isSafeInteger(n) && n > 0 ? await deps.previews?.get(n) : undefined;
    if (!view) return reply.status(404).send({ error: `no preview of pull request ${JSON.stringify(req.params.number)}`, code: 'NOT_FOUND' });
    return view;
  });
}
