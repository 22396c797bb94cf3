import { verifyHmacSha256 } from './signature.ts';
import { at, header, MalformedPayload, requireObject, requirePositiveInt, requireString, strings, ZERO_SHA, type PullRequestAction, type RepoRef, type WebhookEvent, type WebhookProvider } from './webhook-event.ts';

/**
 * GitHub and Gitea deliveries. Gitea's payloads copy GitHub's shapes (push, pull_request); the
 * two differ in headers, in the signature format and in Gitea's "synchronized" for "synchronize".
 * Both publish a pull request's head as refs/pull/<N>/head in the target repository, forks
 * included; the head branch is the fallback for a Gitea that does not.
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
};

function parseGithubLike(event: string, payload: unknown, fallbackToBranch: boolean): WebhookEvent {
  if (event === 'ping') return { type: 'ping' };
  if (event === 'push') {
    const after = requireString(payload, 'after');
    return { type: 'push', repo: repoOf(payload, 'repository'), updates: [{ ref: requireString(payload, 'ref'), after, deleted: at(payload, 'deleted') === true || ZERO_SHA.test(after) }] };
  }
  if (event === 'pull_request') {
    const rawAction = requireString(payload, 'action');
    const pr = requireObject(payload, 'pull_request');
    const number = typeof at(payload, 'number') === 'number' ? requirePositiveInt(payload, 'number') : requirePositiveInt(pr, 'number');
    const headBranch = requireString(pr, 'head.ref');
    return {
      type: 'pull-request',
      action: ACTIONS[rawAction] ?? 'other',
      rawAction,
      number,
      repo: repoOf(payload, 'repository'),
      baseBranch: requireString(pr, 'base.ref'),
      headBranch,
      headSha: requireString(pr, 'head.sha'),
      headRefs: [`refs/pull/${number}/head`, ...(fallbackToBranch ? [`refs/heads/${headBranch}`] : [])],
      merged: at(pr, 'merged') === true,
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
  events: new Set(['push', 'pull_request']),
  eventName: (h) => header(h, 'x-gitea-event'),
  deliveryId: (h) => header(h, 'x-gitea-delivery'),
  verify: (h, body, secret) => verifyHmacSha256(secret, body, header(h, 'x-gitea-signature')),
  parse: (event, payload) => parseGithubLike(event, payload, true),
};
