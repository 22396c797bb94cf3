import { verifyHmacSha256 } from './signature.ts';
import { at, header, MalformedPayload, optionalString, requireObject, requirePositiveInt, requireString, strings, type PullRequestAction, type RefUpdate, type RepoRef, type WebhookEvent, type WebhookProvider } from './webhook-event.ts';

/**
 * Bitbucket Cloud deliveries: X-Hub-Signature `sha256=<hex>` over the body, X-Event-Key repo:push
 * and pullrequest:*. One push delivery can update several branches. Bitbucket publishes no
 * pull-request refs, so the head is fetched as its branch, which only works when the branch lives
 * in the target repository (not in a fork). For trust (pr-trust.ts) it says where the head lives
 * (`source.repository.full_name`) and who wrote it (`author`), but has no labels and Gantry no
 * Bitbucket API client: only pull requests from the repository itself get a preview.
 */

function repoOf(payload: unknown, path: string): RepoRef {
  const repo = requireObject(payload, path);
  const fullName = requireString(repo, 'full_name');
  return { urls: strings(repo, ['links.html.href', 'links.self.href']), apiName: fullName };
}

const ACTIONS: Record<string, PullRequestAction> = {
  'pullrequest:created': 'open',
  'pullrequest:updated': 'update',
  'pullrequest:fulfilled': 'close',
  'pullrequest:rejected': 'close',
};

export const bitbucket: WebhookProvider = {
  name: 'bitbucket',
  events: new Set(['diagnostics:ping', 'repo:push', ...Object.keys(ACTIONS)]),
  eventName: (h) => header(h, 'x-event-key'),
  deliveryId: (h) => header(h, 'x-request-uuid'),
  verify: (h, body, secret) => verifyHmacSha256(secret, body, header(h, 'x-hub-signature'), 'sha256='),
  parse(event, payload): WebhookEvent {
    if (event === 'diagnostics:ping') return { type: 'ping' };
    if (event === 'repo:push') {
      const changes = at(payload, 'push.changes');
      if (!Array.isArray(changes)) throw new MalformedPayload('push.changes must be an array');
      const updates: RefUpdate[] = [];
      for (const c of changes) {
        // `new` is null when a branch was deleted; tags are not deployments.
        const side = (at(c, 'new') ?? at(c, 'old')) as unknown;
        if (at(side, 'type') !== 'branch') continue;
        const name = requireString(side, 'name');
        updates.push({ ref: `refs/heads/${name}`, after: optionalString(c, 'new.target.hash') ?? '', deleted: at(c, 'new') === null });
      }
      return { type: 'push', repo: repoOf(payload, 'repository'), updates };
    }
    if (event in ACTIONS) {
      const pr = requireObject(payload, 'pullrequest');
      const number = requirePositiveInt(pr, 'id');
      const headBranch = requireString(pr, 'source.branch.name');
      const repo = repoOf(payload, 'repository');
      const sourceRepo = optionalString(pr, 'source.repository.full_name');
      const fork = sourceRepo !== undefined && sourceRepo.toLowerCase() !== repo.apiName.toLowerCase();
      const author = optionalString(pr, 'author.nickname') ?? optionalString(pr, 'author.display_name');
      return {
        type: 'pull-request',
        action: ACTIONS[event]!,
        rawAction: event.slice('pullrequest:'.length),
        number,
        repo,
        baseBranch: requireString(pr, 'destination.branch.name'),
        headBranch,
        headSha: requireString(pr, 'source.commit.hash'),
        headRefs: fork ? [] : [`refs/heads/${headBranch}`],
        ...(fork ? { headProblem: `the head branch is in another repository (${sourceRepo}); Bitbucket publishes no pull request refs to fetch it from` } : {}),
        merged: event === 'pullrequest:fulfilled',
        ...(sourceRepo !== undefined ? { headRepo: sourceRepo } : {}),
        ...(author ? { author: { login: author } } : {}),
        labels: [],
      };
    }
    throw new MalformedPayload(`event ${event} is not parsed`);
  },
};
