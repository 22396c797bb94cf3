import { verifyHmacSha256 } from './signature.ts';
import { at, header, MalformedPayload, namesAt, optionalString, requireObject, requirePositiveInt, requireString, strings, ZERO_SHA, type PullRequestAction, type RepoRef, type WebhookEvent, type WebhookProvider } from './webhook-event.ts';

/**
 * GitHub and Gitea deliveries. Gitea's payloads copy GitHub's shapes (push, pull_request); the
 * two differ in headers, in the signature format and in Gitea's "synchronized" for "synchronize".
 * Both publish a pull request's head as refs/pull/<N>/head in the target repository, forks
 * included; the head branch is the fallback for a Gitea that does not. Who and where a pull
 * request comes from (pr-trust.ts): `pull_request.head.repo.full_name` (null for a deleted fork)
 * against the repository, `pull_request.user`, GitHub's `author_association` (Gitea sends none),
 * `pull_request.labels`; a label added or removed is GitHub's `labeled` / `unlabeled` action
 * with `label.name` and `sender`, Gitea's `pull_request_label` event (which does not say which).
 */

const REPO_URLS = ['clone_url', 'html_url', 'ssh_url', 'git_url', 'url'];

function repoOf(payload: unknown, path: string): RepoRef {
  const repo = requireObject(payload, path);
  return { urls: strings(repo, REPO_URLS), apiName: requireString(repo, 'full_name') };
}

const ACTIONS: Record<string, PullRequestAction> = {
  opened: 'open',
  reopened: 'open',
  synchronize: 'update',
  synchronized: 'update',
  closed: 'close',
  labeled: 'label',
  unlabeled: 'label',
  label_updated: 'label',
  label_cleared: 'label',
};

function parseGithubLike(event: string, payload: unknown, fallbackToBranch: boolean): WebhookEvent {
  if (event === 'ping') return { type: 'ping' };
  if (event === 'push') {
    const after = requireString(payload, 'after');
    return { type: 'push', repo: repoOf(payload, 'repository'), updates: [{ ref: requireString(payload, 'ref'), after, deleted: at(payload, 'deleted') === true || ZERO_SHA.test(after) }] };
  }
  if (event === 'pull_request' || event === 'pull_request_label') {
    const rawAction = requireString(payload, 'action');
    const pr = requireObject(payload, 'pull_request');
    const number = typeof at(payload, 'number') === 'number' ? requirePositiveInt(payload, 'number') : requirePositiveInt(pr, 'number');
    const headBranch = requireString(pr, 'head.ref');
    const action = event === 'pull_request_label' ? 'label' : (ACTIONS[rawAction] ?? 'other');
    const login = optionalString(pr, 'user.login');
    const userId = at(pr, 'user.id');
    const association = optionalString(pr, 'author_association');
    const labelName = optionalString(payload, 'label.name');
    const sender = optionalString(payload, 'sender.login');
    return {
      type: 'pull-request',
      action,
      rawAction,
      number,
      repo: repoOf(payload, 'repository'),
      baseBranch: requireString(pr, 'base.ref'),
      headBranch,
      headSha: requireString(pr, 'head.sha'),
      headRefs: [`refs/pull/${number}/head`, ...(fallbackToBranch ? [`refs/heads/${headBranch}`] : [])],
      merged: at(pr, 'merged') === true,
      headRepo: at(pr, 'head.repo') === null ? null : optionalString(pr, 'head.repo.full_name'),
      ...(login ? { author: { login, ...(typeof userId === 'number' ? { id: userId } : {}) } } : {}),
      ...(association ? { authorAssociation: association.toUpperCase() } : {}),
      labels: namesAt(pr, 'labels'),
      ...(action === 'label' ? { labelChange: { ...(labelName ? { names: [labelName] } : {}), ...(sender ? { by: sender } : {}) } } : {}),
    };
  }
  throw new MalformedPayload(`event ${event} is not parsed`);
}

export const github: WebhookProvider = {
  name: 'github',
  events: new Set(['ping', 'push', 'pull_request']),
  eventName: (h) => header(h, 'x-github-event'),
  deliveryId: (h) => header(h, 'x-github-delivery'),
  verify: (h, body, secret) => verifyHmacSha256(secret, body, header(h, 'x-hub-signature-256'), 'sha256='),
  parse: (event, payload) => parseGithubLike(event, payload, false),
};

export const gitea: WebhookProvider = {
  name: 'gitea',
  events: new Set(['push', 'pull_request', 'pull_request_label']),
  eventName: (h) => header(h, 'x-gitea-event'),
  deliveryId: (h) => header(h, 'x-gitea-delivery'),
  verify: (h, body, secret) => verifyHmacSha256(secret, body, header(h, 'x-gitea-signature')),
  parse: (event, payload) => parseGithubLike(event, payload, true),
};
