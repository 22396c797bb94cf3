import { verifyToken } from './signature.ts';
import { at, header, namesAt, MalformedPayload, requireObject, requirePositiveInt, requireString, strings, ZERO_SHA, type PullRequestAction, type RepoRef, type WebhookEvent, type WebhookProvider } from './webhook-event.ts';

/**
 * GitLab deliveries: authenticated by the shared X-Gitlab-Token (GitLab does not sign bodies),
 * events "Push Hook" and "Merge Request Hook". A merge request's head is published as
 * refs/merge-requests/<iid>/head in the target project, forks included. The API names a project
 * by its numeric id. Where and who (pr-trust.ts): `object_attributes.source_project_id` against
 * `target_project_id`, `object_attributes.author_id` (its username only when it is also the
 * `user` who acted), `labels[].title`; an update that changes only labels (`changes.labels`, no
 * `oldrev`) is a label change by `user`. Whether the author is a member is read through the API.
 */

const PROJECT_URLS = ['git_http_url', 'git_ssh_url', 'web_url', 'http_url', 'ssh_url', 'url'];

function projectOf(payload: unknown): RepoRef {
  const project = requireObject(payload, 'project');
  const id = at(project, 'id');
  const apiName = typeof id === 'number' ? String(id) : requireString(project, 'path_with_namespace');
  return { urls: [...strings(project, PROJECT_URLS), ...strings(payload, ['repository.git_http_url', 'repository.git_ssh_url', 'repository.homepage'])], apiName };
}

const ACTIONS: Record<string, PullRequestAction> = { open: 'open', reopen: 'open', update: 'update', close: 'close', merge: 'close' };

export const gitlab: WebhookProvider = {
  name: 'gitlab',
  events: new Set(['Push Hook', 'Merge Request Hook']),
  eventName: (h) => header(h, 'x-gitlab-event'),
  // Idempotency-Key stays the same across GitLab's retries of one event; older GitLabs send only the UUID.
  deliveryId: (h) => header(h, 'idempotency-key') ?? header(h, 'x-gitlab-event-uuid'),
  verify: (h, _body, secret) => verifyToken(secret, header(h, 'x-gitlab-token')),
  parse(event, payload): WebhookEvent {
    if (event === 'Push Hook') {
      const after = requireString(payload, 'after');
      return { type: 'push', repo: projectOf(payload), updates: [{ ref: requireString(payload, 'ref'), after, deleted: ZERO_SHA.test(after) }] };
    }
    if (event === 'Merge Request Hook') {
      const mr = requireObject(payload, 'object_attributes');
      const rawAction = requireString(mr, 'action');
      const iid = requirePositiveInt(mr, 'iid');
      const headBranch = requireString(mr, 'source_branch');
      const sameProject = at(mr, 'source_project_id') === undefined || at(mr, 'source_project_id') === at(mr, 'target_project_id');
      const source = at(mr, 'source_project_id');
      const authorId = at(mr, 'author_id');
      const actor = at(payload, 'user.username');
      const labelsOf = (path: string) => namesAt(payload, path, 'title');
      const labelsChanged = Array.isArray(at(payload, 'changes.labels.current'));
      const changed = labelsChanged ? symmetricDifference(labelsOf('changes.labels.previous'), labelsOf('changes.labels.current')) : [];
      const action = rawAction === 'update' && labelsChanged && at(mr, 'oldrev') === undefined ? 'label' : (ACTIONS[rawAction] ?? 'other');
      return {
        type: 'pull-request',
        action,
        rawAction,
        number: iid,
        repo: projectOf(payload),
        baseBranch: requireString(mr, 'target_branch'),
        headBranch,
        headSha: requireString(mr, 'last_commit.id'),
        headRefs: [`refs/merge-requests/${iid}/head`, ...(sameProject ? [`refs/heads/${headBranch}`] : [])],
        merged: rawAction === 'merge' || at(mr, 'state') === 'merged',
        headRepo: typeof source === 'number' ? String(source) : source === null ? null : undefined,
        ...(typeof authorId === 'number' && at(payload, 'user.id') === authorId && typeof actor === 'string' ? { author: { login: actor, id: authorId } } : {}),
        labels: labelsOf('labels'),
        ...(action === 'label' ? { labelChange: { names: changed, ...(typeof actor === 'string' ? { by: actor } : {}) } } : {}),
      };
    }
    throw new MalformedPayload(`event ${event} is not parsed`);
  },
};

function symmetricDifference(a: string[], b: string[]): string[] {
  return [...a.filter((x) => !b.includes(x)), ...b.filter((x) => !a.includes(x))];
}
