import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { bitbucket } from '../../reconciler/webhooks/bitbucket.ts';
import { decide, type TrackedSource } from '../../reconciler/webhooks/decide.ts';
import { gitea, github } from '../../reconciler/webhooks/github.ts';
import { gitlab } from '../../reconciler/webhooks/gitlab.ts';
import { normalizeRepoUrl } from '../../reconciler/webhooks/repo-url.ts';
import { constantTimeEqual, verifyHmacSha256, verifyToken } from '../../reconciler/webhooks/signature.ts';
import { MalformedPayload, type PullRequestEvent, type WebhookEvent } from '../../reconciler/webhooks/webhook-event.ts';

/** The pure part of webhooks: signatures, repository identity, payload parsing, decisions. */

const SECRET = 'It\'s a Secret to Everybody';
const body = Buffer.from('Hello, World!');
// GitHub's documented example: this secret and body give this signature.
const GITHUB_EXAMPLE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

test('HMAC-SHA256 signatures are checked over the raw bytes, in the format of each host', () => {
  assert.equal(verifyHmacSha256(SECRET, body, GITHUB_EXAMPLE, 'sha256='), true);
  assert.equal(verifyHmacSha256(SECRET, body, GITHUB_EXAMPLE.toUpperCase().replace('SHA256=', 'sha256='), 'sha256='), true);
  assert.equal(verifyHmacSha256(SECRET, Buffer.from('Hello, World!\n'), GITHUB_EXAMPLE, 'sha256='), false);
  assert.equal(verifyHmacSha256('other', body, GITHUB_EXAMPLE, 'sha256='), false);
  assert.equal(verifyHmacSha256(SECRET, body, GITHUB_EXAMPLE.slice('sha256='.length), 'sha256='), false, 'prefix required');
  assert.equal(verifyHmacSha256(SECRET, body, undefined, 'sha256='), false);
  assert.equal(verifyHmacSha256(SECRET, body, '', 'sha256='), false);
  assert.equal(verifyHmacSha256('', body, 'sha256=', 'sha256='), false, 'an empty secret verifies nothing');
  const hex = GITHUB_EXAMPLE.slice('sha256='.length);
  assert.equal(gitea.verify({ 'x-gitea-signature': hex }, body, SECRET), true);
  assert.equal(gitea.verify({ 'x-gitea-signature': GITHUB_EXAMPLE }, body, SECRET), false);
  assert.equal(github.verify({ 'x-hub-signature-256': GITHUB_EXAMPLE }, body, SECRET), true);
  assert.equal(github.verify({ 'x-hub-signature': GITHUB_EXAMPLE }, body, SECRET), false, 'GitHub: only the SHA-256 header');
  assert.equal(bitbucket.verify({ 'x-hub-signature': GITHUB_EXAMPLE }, body, SECRET), true);
  assert.equal(gitlab.verify({ 'x-gitlab-token': SECRET }, body, SECRET), true);
  assert.equal(gitlab.verify({ 'x-gitlab-token': SECRET.slice(0, -1) }, body, SECRET), false);
  assert.equal(verifyToken(SECRET, undefined), false);
  assert.equal(constantTimeEqual('a', 'a'), true);
  assert.equal(constantTimeEqual('a', 'ab'), false);
});

test('repository URLs in every form a host uses name the same repository', () => {
  const same = [
    'https://github.com/Acme/Shop.git',
    'https://github.com/acme/shop',
    'https://user:tok3n@github.com/acme/shop.git/',
    'git@github.com:acme/shop.git',
    'ssh://git@github.com/acme/shop.git',
    'git://github.com/acme/shop.git',
    'https://github.com:443/acme/shop',
  ];
  for (const u of same) assert.equal(normalizeRepoUrl(u), 'github.com/acme/shop', u);
  assert.equal(normalizeRepoUrl('http://127.0.0.1:8080/repo.git'), '127.0.0.1:8080/repo');
  assert.equal(normalizeRepoUrl('https://gitlab.example.com/group/sub/app.git'), 'gitlab.example.com/group/sub/app');
  assert.equal(normalizeRepoUrl(''), undefined);
  assert.equal(normalizeRepoUrl('not a url'), undefined);
  assert.notEqual(normalizeRepoUrl('https://github.com/acme/shop-2'), 'github.com/acme/shop');
});

const ghRepo = { full_name: 'acme/shop', clone_url: 'https://github.com/acme/shop.git', html_url: 'https://github.com/acme/shop', ssh_url: 'git@github.com:acme/shop.git' };
const SHA = 'a'.repeat(40);

test('GitHub and Gitea payloads become events', () => {
  assert.deepEqual(github.parse('ping', { zen: 'hi' }), { type: 'ping' });
  assert.deepEqual(github.parse('push', { ref: 'refs/heads/main', after: SHA, repository: ghRepo }), {
    type: 'push',
    repo: { urls: [ghRepo.clone_url, ghRepo.html_url, ghRepo.ssh_url], apiName: 'acme/shop' },
    updates: [{ ref: 'refs/heads/main', after: SHA, deleted: false }],
  });
  const deleted = github.parse('push', { ref: 'refs/heads/main', after: '0'.repeat(40), deleted: true, repository: ghRepo });
  assert.equal(deleted.type === 'push' && deleted.updates[0]!.deleted, true);
  const pr = github.parse('pull_request', { action: 'synchronize', number: 7, pull_request: { head: { ref: 'feat', sha: SHA }, base: { ref: 'main' }, merged: false }, repository: ghRepo }) as PullRequestEvent;
  assert.deepEqual([pr.action, pr.number, pr.headRefs, pr.baseBranch, pr.headBranch, pr.headSha], ['update', 7, ['refs/pull/7/head'], 'main', 'feat', SHA]);
  const closed = github.parse('pull_request', { action: 'closed', number: 7, pull_request: { head: { ref: 'feat', sha: SHA }, base: { ref: 'main' }, merged: true }, repository: ghRepo }) as PullRequestEvent;
  assert.deepEqual([closed.action, closed.merged], ['close', true]);
  const labeled = github.parse('pull_request', { action: 'labeled', number: 7, pull_request: { head: { ref: 'f', sha: SHA }, base: { ref: 'main' } }, repository: ghRepo }) as PullRequestEvent;
  assert.equal(labeled.action, 'label', 'a label change re-checks whether the pull request may run (test/unit/pr-trust.test.ts)');
  const edited = github.parse('pull_request', { action: 'edited', number: 7, pull_request: { head: { ref: 'f', sha: SHA }, base: { ref: 'main' } }, repository: ghRepo }) as PullRequestEvent;
  assert.equal(edited.action, 'other');
  const g = gitea.parse('pull_request', { action: 'synchronized', number: 3, pull_request: { head: { ref: 'feat', sha: SHA }, base: { ref: 'main' } }, repository: ghRepo }) as PullRequestEvent;
  assert.deepEqual([g.action, g.headRefs], ['update', ['refs/pull/3/head', 'refs/heads/feat']]);
  for (const bad of [{}, { ref: 'refs/heads/main', repository: ghRepo }, { ref: 'refs/heads/main', after: SHA }, { ref: 1, after: SHA, repository: ghRepo }]) {
    assert.throws(() => github.parse('push', bad), MalformedPayload);
  }
  assert.throws(() => github.parse('pull_request', { action: 'opened', number: -1, pull_request: {}, repository: ghRepo }), MalformedPayload);
});

test('GitLab payloads become events (project id as the API name)', () => {
  const project = { id: 42, path_with_namespace: 'acme/shop', git_http_url: 'https://gitlab.com/acme/shop.git', git_ssh_url: 'git@gitlab.com:acme/shop.git', web_url: 'https://gitlab.com/acme/shop' };
  const push = gitlab.parse('Push Hook', { ref: 'refs/heads/main', after: SHA, project }) as Extract<WebhookEvent, { type: 'push' }>;
  assert.equal(push.repo.apiName, '42');
  assert.equal(normalizeRepoUrl(push.repo.urls[0]!), 'gitlab.com/acme/shop');
  const mr = (action: string) => gitlab.parse('Merge Request Hook', { project, object_attributes: { iid: 5, action, source_branch: 'feat', target_branch: 'main', last_commit: { id: SHA }, source_project_id: 42, target_project_id: 42 } }) as PullRequestEvent;
  assert.deepEqual([mr('open').action, mr('reopen').action, mr('update').action, mr('close').action, mr('merge').action, mr('approved').action], ['open', 'open', 'update', 'close', 'close', 'other']);
  assert.deepEqual(mr('open').headRefs, ['refs/merge-requests/5/head', 'refs/heads/feat']);
  assert.equal(mr('merge').merged, true);
  assert.equal(gitlab.deliveryId({ 'x-gitlab-event-uuid': 'u1', 'idempotency-key': 'k1' }), 'k1');
  assert.equal(gitlab.deliveryId({ 'x-gitlab-event-uuid': 'u1' }), 'u1');
});

test('Bitbucket payloads become events; a fork has no head ref to fetch', () => {
  const repository = { full_name: 'acme/shop', links: { html: { href: 'https://bitbucket.org/acme/shop' } } };
  const push = bitbucket.parse('repo:push', {
    repository,
    push: { changes: [
      { new: { type: 'branch', name: 'main', target: { hash: SHA } }, old: null },
      { new: null, old: { type: 'branch', name: 'gone' } },
      { new: { type: 'tag', name: 'v1', target: { hash: SHA } } },
    ] },
  }) as Extract<WebhookEvent, { type: 'push' }>;
  assert.deepEqual(push.updates, [{ ref: 'refs/heads/main', after: SHA, deleted: false }, { ref: 'refs/heads/gone', after: '', deleted: true }]);
  const pr = (event: string, source = 'acme/shop') => bitbucket.parse(event, { repository, pullrequest: { id: 9, source: { branch: { name: 'feat' }, commit: { hash: 'abcdef123456' }, repository: { full_name: source } }, destination: { branch: { name: 'main' } } } }) as PullRequestEvent;
  assert.deepEqual([pr('pullrequest:created').action, pr('pullrequest:updated').action, pr('pullrequest:fulfilled').action, pr('pullrequest:rejected').action], ['open', 'update', 'close', 'close']);
  assert.deepEqual(pr('pullrequest:created').headRefs, ['refs/heads/feat']);
  const fork = pr('pullrequest:created', 'someone/shop');
  assert.deepEqual(fork.headRefs, []);
  assert.match(fork.headProblem!, /another repository/);
  assert.throws(() => bitbucket.parse('repo:push', { repository, push: {} }), MalformedPayload);
});

test('decide: a push to the tracked branch syncs; anything else is ignored with a reason', () => {
  const tracked: TrackedSource = { urls: new Set(['github.com/acme/shop']), branch: 'main' };
  const repo = { urls: ['git@github.com:Acme/Shop.git'], apiName: 'acme/shop' };
  const push = (ref: string, deleted = false, r = repo): WebhookEvent => ({ type: 'push', repo: r, updates: [{ ref, after: SHA, deleted }] });
  assert.deepEqual(decide(push('refs/heads/main'), tracked), { action: 'sync', commit: SHA });
  assert.match((decide(push('refs/heads/dev'), tracked) as { reason: string }).reason, /push to refs\/heads\/dev, not to the tracked branch main/);
  assert.match((decide(push('refs/heads/main', true), tracked) as { reason: string }).reason, /was deleted/);
  assert.match((decide(push('refs/heads/main', false, { urls: ['https://github.com/acme/other'], apiName: 'acme/other' }), tracked) as { reason: string }).reason, /github\.com\/acme\/other is not the tracked one/);
  assert.match((decide(push('refs/heads/main'), { urls: new Set(), branch: 'main' }) as { reason: string }).reason, /--webhook-repo/);
  const pr = (action: PullRequestEvent['action'], base = 'main'): PullRequestEvent => ({ type: 'pull-request', action, rawAction: action, number: 7, repo, baseBranch: base, headBranch: 'f', headSha: SHA, headRefs: ['refs/pull/7/head'], merged: false });
  assert.equal(decide(pr('open'), tracked).action, 'preview');
  assert.equal(decide(pr('update'), tracked).action, 'preview');
  assert.equal(decide(pr('close'), tracked).action, 'close-preview');
  assert.equal(decide(pr('other'), tracked).action, 'ignore');
  assert.match((decide(pr('open', 'release'), tracked) as { reason: string }).reason, /targets release/);
  assert.deepEqual(decide({ type: 'ping' }, tracked), { action: 'pong' });
});

test('a signature computed the way a test (or GitHub) computes it verifies', () => {
  const payload = Buffer.from(JSON.stringify({ zen: 'Design for failure.' }));
  const sig = `sha256=${createHmac('sha256', 's').update(payload).digest('hex')}`;
  assert.equal(github.verify({ 'x-hub-signature-256': sig }, payload, 's'), true);
});
