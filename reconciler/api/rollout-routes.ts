import type { FastifyInstance } from 'fastify';
import { isValidName, objectKey } from '../../state/keys.ts';
import { ROLLOUT_ACTIONS, runRolloutAction, type RolloutAction } from '../rollout/rollout-commands.ts';
import { HttpError } from './http-error.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { Store } from '../../state/store.ts';

/**
 * GET  /api/v1/deployments/:ns/:name/rollout          status + revision history
 * POST /api/v1/deployments/:ns/:name/rollout/:action  pause|resume|promote|abort|restart|undo ({ toRevision })
 */
export function registerRolloutRoutes(app: FastifyInstance, deps: { store: Store; enqueue?: (key: string) => void }): void {
  const { store } = deps;

  app.get<{ Params: { ns: string; name: string } }>('/api/v1/deployments/:ns/:name/rollout', async (req) => {
    const { ns, name } = req.params;
    if (!isValidName(ns) || !isValidName(name)) throw new HttpError('INVALID_NAME', 'invalid namespace or name');
    const [desired, status, { state }] = await Promise.all([store.readDeployment(ns, name), store.readDeploymentStatus(ns, name), store.readRollout(ns, name)]);
    if (!desired) throw new HttpError('NOT_FOUND', `deployment ${ns}/${name} not found`);
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

  app.post<{ Params: { ns: string; name: string; action: string }; Body: { toRevision?: number } | undefined }>('/api/v1/deployments/:ns/:name/rollout/:action', async (req) => {
    const { ns, name, action } = req.params;
    if (!ROLLOUT_ACTIONS.includes(action as RolloutAction)) throw new HttpError('NOT_FOUND', `unknown rollout action ${JSON.stringify(action)}: ${ROLLOUT_ACTIONS.join(', ')}`);
    if (!isValidName(ns) || !isValidName(name)) throw new HttpError('INVALID_NAME', 'invalid namespace or name');
    const to = req.body?.toRevision;
    if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new HttpError('INVALID_REVISION', 'toRevision must be a positive integer');
    // A RolloutCommandError (nothing to promote, no such revision...) is answered by its code.
    const state = await runRolloutAction(store, ns, name, action as RolloutAction, { toRevision: to });
    deps.enqueue?.(objectKey(ns, name));
    return { action, revision: state.pin?.revision ?? state.target, paused: !!state.paused, pinned: state.pin ?? null };
  });
}
