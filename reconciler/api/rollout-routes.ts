import type { FastifyInstance } from 'fastify';
import { objectKey } from '../../state/keys.ts';
import { ROLLOUT_ACTIONS, RolloutCommandError, runRolloutAction, type RolloutAction } from '../rollout/rollout-commands.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { Store } from '../../state/store.ts';

/**
 * GET  /api/v1/deployments/:ns/:name/rollout          status + revision history
 * POST /api/v1/deployments/:ns/:name/rollout/:action  pause|resume|promote|abort|restart|undo ({ toRevision })
 */
export function registerRolloutRoutes(app: FastifyInstance, deps: { store: Store; enqueue?: (key: string) => void }): void {
  const { store } = deps;

  app.get<{ Params: { ns: string; name: string } }>('/api/v1/deployments/:ns/:name/rollout', async (req, reply) => {
    const { ns, name } = req.params;
    if (!validName(ns) || !validName(name)) return reply.status(400).send({ error: 'invalid namespace or name', code: 'INVALID_NAME' });
    const [desired, status, raw] = await Promise.all([store.readDeployment(ns, name), store.readDeploymentStatus(ns, name), store.redis.get(store.keys.rollout(ns, name))]);
    if (!desired) return reply.status(404).send({ error: `deployment ${ns}/${name} not found`, code: 'NOT_FOUND' });
    const state = raw ? (JSON.parse(raw) as RolloutState) : undefined;
    return {
      namespace: ns,
      name,
      generation: desired.generation,
      replicas: desired.replicas,
      status: status ?? null,
      history: (state?.revisions ?? []).map((r) => ({
        revision: r.revision,
        templateHash: r.templateHash,
        commit: r.commit,
        message: r.message,
        createdAt: r.createdAt,
        current: r.revision === state?.target,
        stable: r.revision === state?.stable,
        failed: r.revision === state?.pin?.failedRevision,
      })),
    };
  });

  app.post<{ Params: { ns: string; name: string; action: string }; Body: { toRevision?: number } | undefined }>('/api/v1/deployments/:ns/:name/rollout/:action', async (req, reply) => {
    const { ns, name, action } = req.params;
    if (!ROLLOUT_ACTIONS.includes(action as RolloutAction)) return reply.status(404).send({ error: `unknown rollout action ${JSON.stringify(action)}: ${ROLLOUT_ACTIONS.join(', ')}`, code: 'NOT_FOUND' });
    if (!validName(ns) || !validName(name)) return reply.status(400).send({ error: 'invalid namespace or name', code: 'INVALID_NAME' });
    const to = req.body?.toRevision;
    if (to !== undefined && (!Number.isInteger(to) || to < 1)) return reply.status(400).send({ error: 'toRevision must be a positive integer', code: 'INVALID_REVISION' });
    try {
      const state = await runRolloutAction(store, ns, name, action as RolloutAction, { toRevision: to });
      deps.enqueue?.(objectKey(ns, name));
      return { action, revision: state.pin?.revision ?? state.target, paused: !!state.paused, pinned: state.pin ?? null };
    } catch (err) {
      if (err instanceof RolloutCommandError) return reply.status(err.statusCode).send({ error: err.message, code: err.code });
      throw err;
    }
  });
}

function validName(s: string): boolean {
  return /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s);
}
