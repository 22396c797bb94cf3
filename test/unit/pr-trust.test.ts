import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_TRUST_POLICY, decideTrust, parseAccessLevel, parseAssociations, parseTrustRules, type TrustFacts, type TrustPolicy } from '../../reconciler/preview/pr-trust.ts';
import { commentMarkdown } from '../../reconciler/preview/plan-report.ts';
import { bitbucket } from '../../reconciler/webhooks/bitbucket.ts';
import { decide, type TrackedSource } from '../../reconciler/webhooks/decide.ts';
import { gitea, github } from '../../reconciler/webhooks/github.ts';
import { gitlab } from '../../reconciler/webhooks/gitlab.ts';
import type { PullRequestEvent } from '../../reconciler/webhooks/webhook-event.ts';

/** Who may run a preview (pure): the trust decision, the payload facts it reads, the comment without node addresses. */

const P = DEFAULT_TRUST_POLICY;
const base: TrustFacts = { provider: 'github', checked: true, baseRepo: 'acme/shop' };
const fork: TrustFacts = { ...base, headRepo: 'mallory/shop', author: 'mallory', association: 'NONE' };
const trustedLabel = { present: true, by: 'alice', byAccess: 'write' as const };

const cases: { name: string; facts: TrustFacts; policy?: Partial<TrustPolicy>; trusted: boolean; rule?: string; reason?: RegExp; allow?: RegExp }[] = [
  { name: 'head in the repository itself', facts: { ...base, headRepo: 'acme/shop', association: 'NONE' }, trusted: true, rule: 'same-repo', reason: /head branch is in acme\/shop itself/ },
  { name: 'same repository, names differ in case', facts: { ...base, headRepo: 'Acme/Shop' }, trusted: true, rule: 'same-repo' },
  { name: 'a fork, author NONE', facts: fork, trusted: false, reason: /its head is in the fork mallory\/shop; @mallory is NONE/, allow: /someone with write access \(or more\) adds the label gantry-preview/ },
  { name: 'a fork by a COLLABORATOR', facts: { ...fork, association: 'COLLABORATOR' }, trusted: true, rule: 'author', reason: /@mallory is COLLABORATOR/ },
  { name: 'a fork by a MEMBER', facts: { ...fork, association: 'member' }, trusted: true, rule: 'author' },
  { name: 'a fork by the OWNER', facts: { ...fork, association: 'OWNER' }, trusted: true, rule: 'author' },
  { name: 'CONTRIBUTOR is not trusted by default', facts: { ...fork, association: 'CONTRIBUTOR' }, trusted: false, reason: /CONTRIBUTOR/ },
  { name: 'CONTRIBUTOR trusted when listed', facts: { ...fork, association: 'CONTRIBUTOR' }, policy: { associations: ['CONTRIBUTOR'] }, trusted: true, rule: 'author' },
  { name: 'the author rule off: a COLLABORATOR in a fork waits', facts: { ...fork, association: 'COLLABORATOR' }, policy: { rules: ['same-repo', 'label'] }, trusted: false },
  { name: 'the same-repo rule off', facts: { ...base, headRepo: 'acme/shop', association: 'NONE' }, policy: { rules: ['author', 'label'] }, trusted: false, reason: /@?its author is NONE|is NONE/ },
  { name: 'a deleted fork', facts: { ...fork, headRepo: null }, trusted: false, reason: /its head repository was deleted/ },
  { name: 'nothing says where the head is', facts: { ...base, author: 'x', association: 'NONE' }, trusted: false, reason: /nothing says where its head branch lives/ },
  { name: 'a label added by someone with write access', facts: { ...fork, label: trustedLabel }, trusted: true, rule: 'label', reason: /@alice \(write access\) added the label gantry-preview/ },
  { name: 'a label added by an admin', facts: { ...fork, label: { ...trustedLabel, byAccess: 'admin' } }, trusted: true, rule: 'label' },
  { name: 'a label added by a triager', facts: { ...fork, label: { ...trustedLabel, by: 'tom', byAccess: 'triage' } }, trusted: false, reason: /added by @tom, who has triage access \(write needed\)/ },
  { name: 'a label the author added themself', facts: { ...fork, label: { present: true, by: 'mallory', byAccess: 'read' } }, trusted: false, reason: /added by @mallory, who has read access/ },
  { name: 'a label whose adder is unknown', facts: { ...fork, label: { present: true } }, trusted: false, reason: /who added the label gantry-preview is unknown/ },
  { name: 'a label no longer there', facts: { ...fork, label: { present: false } }, trusted: false },
  { name: 'commits after the approval', facts: { ...fork, label: { ...trustedLabel, approvedHead: 'abc1234' } }, trusted: false, reason: /commits were pushed after @alice added the label/, allow: /removes the label gantry-preview and adds it again/ },
  { name: 'maintain needed, write is not enough', facts: { ...fork, label: trustedLabel }, policy: { minAccess: 'maintain' }, trusted: false, reason: /write access \(maintain needed\)/ },
  { name: 'a label counts only when checked at the host', facts: { ...fork, checked: false, label: trustedLabel }, trusted: false, allow: /needs the Git host's API \(--git-host\)/ },
  { name: 'the label rule off', facts: { ...fork, label: trustedLabel }, policy: { rules: ['same-repo', 'author'] }, trusted: false, allow: /push the branch to acme\/shop itself/ },
  { name: 'another label name', facts: { ...fork, label: trustedLabel }, policy: { label: 'ok-to-test' }, trusted: true, reason: /the label ok-to-test/ },
  { name: 'GitLab: a Developer in a fork', facts: { provider: 'gitlab', checked: true, baseRepo: '42', headRepo: '77', author: 'dev', authorAccess: 'write' }, trusted: true, rule: 'author', reason: /@dev has write access/ },
  { name: 'GitLab: a Reporter in a fork', facts: { provider: 'gitlab', checked: true, baseRepo: '42', headRepo: '77', author: 'rep', authorAccess: 'triage' }, trusted: false, reason: /its head is in the fork 77; @rep has triage access/ },
  { name: 'GitLab: same project', facts: { provider: 'gitlab', checked: true, baseRepo: '42', headRepo: '42' }, trusted: true, rule: 'same-repo' },
  { name: 'GitLab without a host: authors cannot be checked', facts: { provider: 'gitlab', checked: false, baseRepo: '42', headRepo: '77' }, trusted: false, reason: /access cannot be checked without --git-host/ },
  { name: 'Gitea: a stranger', facts: { provider: 'gitea', checked: true, baseRepo: 'acme/shop', headRepo: 'eve/shop', author: 'eve', authorAccess: 'none' }, trusted: false, reason: /@eve has none access/ },
  { name: 'Gitea: a collaborator with write', facts: { provider: 'gitea', checked: true, baseRepo: 'acme/shop', headRepo: 'bob/shop', author: 'bob', authorAccess: 'write' }, trusted: true, rule: 'author' },
  { name: 'Bitbucket: a fork', facts: { provider: 'bitbucket', checked: false, baseRepo: 'acme/shop', headRepo: 'eve/shop', author: 'eve' }, trusted: false },
  { name: 'anyone: every pull request', facts: fork, policy: { rules: ['anyone'] }, trusted: true, rule: 'anyone' },
];

for (const c of cases) {
  test(`trust: ${c.name}`, () => {
    const d = decideTrust(c.facts, { ...P, ...c.policy });
    assert.equal(d.trusted, c.trusted, JSON.stringify(d));
    if (d.trusted) {
      if (c.rule) assert.equal(d.rule, c.rule);
      if (c.reason) assert.match(d.reason, c.reason);
    } else {
      if (c.reason) assert.match(d.reason, c.reason);
      if (c.allow) assert.match(d.allow, c.allow);
      assert.ok(d.allow.length > 0);
      assert.match(d.status, /^awaiting approval: .+; .+/);
      assert.ok(d.status.length <= 140, `a commit status fits: ${d.status}`);
    }
  });
}

test('trust: the commit status line says why and how, briefly', () => {
  const status = (facts: TrustFacts, policy: Partial<TrustPolicy> = {}) => {
    const d = decideTrust(facts, { ...P, ...policy });
    return d.trusted ? assert.fail('trusted') : d.status;
  };
  assert.equal(status(fork), 'awaiting approval: fork mallory/shop by @mallory (NONE); someone with write access adds the label gantry-preview');
  assert.equal(status({ ...fork, label: { present: true, by: 'mallory', byAccess: 'read' } }), 'awaiting approval: gantry-preview added by @mallory (read access, write needed); someone with write access adds it');
  assert.equal(status({ ...fork, label: { ...trustedLabel, approvedHead: 'abc1234' } }), 'awaiting approval: commits after @alice added gantry-preview; remove gantry-preview and add it again');
  assert.equal(status({ ...fork, checked: false }), 'awaiting approval: fork mallory/shop by @mallory (NONE); label approvals need --git-host');
  assert.equal(status({ ...fork, headRepo: null }, { rules: ['same-repo', 'author'] }), 'awaiting approval: a deleted fork by @mallory (NONE); push the branch to acme/shop');
});

test('trust flags parse, and name what they accept', () => {
  assert.deepEqual(parseTrustRules('same-repo, label,label'), ['same-repo', 'label']);
  assert.deepEqual(parseTrustRules('anyone'), ['anyone']);
  assert.throws(() => parseTrustRules('everyone'), /same-repo, author, label, anyone/);
  assert.throws(() => parseTrustRules(' , '), TypeError);
  assert.deepEqual(parseAssociations('owner,Member'), ['OWNER', 'MEMBER']);
  assert.throws(() => parseAssociations('FRIEND'), /COLLABORATOR/);
  assert.equal(parseAccessLevel('developer'), 'write');
  assert.equal(parseAccessLevel('Maintainer'), 'maintain');
  assert.equal(parseAccessLevel('owner'), 'admin');
  assert.equal(parseAccessLevel('triage'), 'triage');
  assert.throws(() => parseAccessLevel('none'), TypeError);
});

const SHA = 'a'.repeat(40);
const ghRepo = { full_name: 'acme/shop', clone_url: 'https://github.com/acme/shop.git' };
/** GitHub's pull_request payload shape, trimmed to what Gantry reads. */
const ghPull = (over: Record<string, unknown> = {}) => ({
  number: 7,
  state: 'open',
  user: { login: 'mallory', id: 99 },
  author_association: 'NONE',
  labels: [{ id: 1, name: 'bug' }],
  head: { label: 'mallory:feat', ref: 'feat', sha: SHA, repo: { full_name: 'mallory/shop' } },
  base: { label: 'acme:main', ref: 'main', sha: 'b'.repeat(40), repo: { full_name: 'acme/shop' } },
  merged: false,
  ...over,
});

test('GitHub: a fork pull request says where its head is, who wrote it and its labels', () => {
  const pr = github.parse('pull_request', { action: 'opened', number: 7, pull_request: ghPull(), repository: ghRepo, sender: { login: 'mallory' } }) as PullRequestEvent;
  assert.deepEqual([pr.action, pr.headRepo, pr.author, pr.authorAssociation, pr.labels], ['open', 'mallory/shop', { login: 'mallory', id: 99 }, 'NONE', ['bug']]);
  const deleted = github.parse('pull_request', { action: 'synchronize', number: 7, pull_request: ghPull({ head: { ref: 'feat', sha: SHA, repo: null } }), repository: ghRepo }) as PullRequestEvent;
  assert.equal(deleted.headRepo, null);
  const labeled = github.parse('pull_request', { action: 'labeled', number: 7, label: { name: 'gantry-preview' }, pull_request: ghPull(), repository: ghRepo, sender: { login: 'alice' } }) as PullRequestEvent;
  assert.deepEqual([labeled.action, labeled.labelChange], ['label', { names: ['gantry-preview'], by: 'alice' }]);
  const unlabeled = github.parse('pull_request', { action: 'unlabeled', number: 7, label: { name: 'gantry-preview' }, pull_request: ghPull(), repository: ghRepo, sender: { login: 'alice' } }) as PullRequestEvent;
  assert.equal(unlabeled.action, 'label');
});

test('Gitea: label events do not say which label; its pull requests have no author_association', () => {
  const pr = gitea.parse('pull_request', { action: 'opened', number: 3, pull_request: { ...ghPull(), author_association: undefined }, repository: ghRepo }) as PullRequestEvent;
  assert.deepEqual([pr.headRepo, pr.authorAssociation], ['mallory/shop', undefined]);
  assert.ok(gitea.events.has('pull_request_label'));
  const label = gitea.parse('pull_request_label', { action: 'label_updated', number: 3, pull_request: ghPull(), repository: ghRepo, sender: { login: 'alice' } }) as PullRequestEvent;
  assert.deepEqual([label.action, label.labelChange], ['label', { by: 'alice' }]);
});

/** GitLab's Merge Request Hook shape, trimmed. */
const glHook = (attrs: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  object_kind: 'merge_request',
  event_type: 'merge_request',
  user: { id: 5, username: 'mallory', name: 'Mallory' },
  project: { id: 42, path_with_namespace: 'acme/shop', git_http_url: 'https://gitlab.com/acme/shop.git' },
  object_attributes: { iid: 4, action: 'open', source_branch: 'feat', target_branch: 'main', source_project_id: 77, target_project_id: 42, author_id: 5, state: 'opened', last_commit: { id: SHA }, ...attrs },
  labels: [{ id: 1, title: 'bug' }],
  ...extra,
});

test('GitLab: source and target projects, the author when they acted, labels; a label-only update is a label change', () => {
  const pr = gitlab.parse('Merge Request Hook', glHook({})) as PullRequestEvent;
  assert.deepEqual([pr.headRepo, pr.author, pr.labels, pr.headRefs], ['77', { login: 'mallory', id: 5 }, ['bug'], ['refs/merge-requests/4/head']]);
  const byOther = gitlab.parse('Merge Request Hook', { ...glHook({ action: 'update', oldrev: 'c'.repeat(40) }), user: { id: 6, username: 'alice' } }) as PullRequestEvent;
  assert.deepEqual([byOther.action, byOther.author], ['update', undefined], 'the acting user is not the author');
  const labels = gitlab.parse('Merge Request Hook', glHook({ action: 'update' }, { user: { id: 6, username: 'alice' }, changes: { labels: { previous: [{ title: 'bug' }], current: [{ title: 'bug' }, { title: 'gantry-preview' }] } } })) as PullRequestEvent;
  assert.deepEqual([labels.action, labels.labelChange], ['label', { names: ['gantry-preview'], by: 'alice' }]);
  const push = gitlab.parse('Merge Request Hook', glHook({ action: 'update', oldrev: 'c'.repeat(40) }, { changes: { labels: { previous: [], current: [{ title: 'x' }] } } })) as PullRequestEvent;
  assert.equal(push.action, 'update', 'new commits with a label change: a push');
});

test('Bitbucket: where the head is and who wrote it; no labels', () => {
  const payload = (source: string) => ({
    repository: { full_name: 'acme/shop', links: { html: { href: 'https://bitbucket.org/acme/shop' } } },
    pullrequest: { id: 2, author: { nickname: 'eve' }, source: { branch: { name: 'feat' }, commit: { hash: 'abc123def456' }, repository: { full_name: source } }, destination: { branch: { name: 'main' } } },
  });
  const forked = bitbucket.parse('pullrequest:created', payload('eve/shop')) as PullRequestEvent;
  assert.deepEqual([forked.headRepo, forked.author, forked.labels, forked.headRefs], ['eve/shop', { login: 'eve' }, [], []]);
  const own = bitbucket.parse('pullrequest:updated', payload('acme/shop')) as PullRequestEvent;
  assert.equal(own.headRepo, 'acme/shop');
});

test('decide: only the preview label re-checks a pull request; others change nothing', () => {
  const tracked: TrackedSource = { urls: new Set(['github.com/acme/shop']), branch: 'main', previewLabel: 'gantry-preview' };
  const ev = (names?: string[]) => github.parse('pull_request', { action: 'labeled', number: 7, ...(names ? { label: { name: names[0] } } : {}), pull_request: ghPull(), repository: ghRepo }) as PullRequestEvent;
  assert.equal(decide(ev(['Gantry-Preview']), tracked).action, 'preview');
  const other = decide(ev(['bug']), tracked);
  assert.equal(other.action, 'ignore');
  assert.match((other as { reason: string }).reason, /label bug is not the preview label gantry-preview/);
  assert.equal(decide(ev(), tracked).action, 'preview', 'a label change that names no label is re-checked');
});

test('the comment: endpoint addresses only when published; an untrusted pull request says why and how', () => {
  const diff = { commit: SHA, base: 'b'.repeat(40), valid: true, errors: [], summary: '+1 ~0 -0', added: [{ name: 'shop/api', changes: ['replicas 1'] }], changed: [], removed: [] };
  const hidden = commentMarkdown(7, diff, { state: 'ready', message: '1 deployment(s) ready', namespaces: ['pr-7-shop'], endpoints: [{ deployment: 'pr-7-shop/api' }], detailsAt: '/api/v1/previews/7' });
  assert.match(hidden, /\| `pr-7-shop\/api` \| _not published_ \|/);
  assert.match(hidden, /`GET \/api\/v1\/previews\/7` on the Gantry API lists them/);
  assert.doesNotMatch(hidden, /http:\/\//);
  const shown = commentMarkdown(7, diff, { state: 'ready', message: 'ready', namespaces: [], endpoints: [{ deployment: 'pr-7-shop/api', url: 'http://10.0.0.5:31000' }] });
  assert.match(shown, /\| `pr-7-shop\/api` \| http:\/\/10\.0\.0\.5:31000 \|/);
  assert.doesNotMatch(shown, /not published/);
  const waiting = commentMarkdown(7, diff, { state: 'awaiting-approval', message: 'not deployed: its head is in the fork mallory/shop. To deploy it, someone with write access adds the label gantry-preview.', namespaces: [], endpoints: [] });
  assert.match(waiting, /\*\*Plan\*\* for `aaaaaaa`/);
  assert.match(waiting, /\*\*Preview\*\* 🔒 awaiting approval: not deployed: its head is in the fork mallory\/shop\. To deploy it, someone with write access adds the label gantry-preview\./);
});
