import type { Redis } from 'ioredis';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startFakeGitHostWithPulls, type FakeGitHostWithPulls, type FakePull } from '../helpers/fake-git-host-prs.ts';
import type { FakeHostKind } from '../helpers/fake-git-host.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { createGitHostClient } from '../../reconciler/git-host/rest-clients.ts';
import { PullRequestGate } from '../../reconciler/preview/pr-gate.ts';
import { DEFAULT_TRUST_POLICY } from '../../reconciler/preview/pr-trust.ts';
import { DeliveryLog } from '../../reconciler/webhooks/delivery-log.ts';
import type { PullRequestEvent } from '../../reconciler/webhooks/webhook-event.ts';
import type { ProviderName } from '../../state/records/preview.ts';

/**
 * Trust checked at the Git host over real HTTP, with real Redis: the three REST dialects' reads
 * (pull request, label events, access), the gate that combines them (label approvals bound to a
 * head, closed and moved pull requests), and webhook deliveries known by id and by body.
 */

const TOKEN = 'trust-t0ken-value-42';
const SHA1 = '1'.repeat(40);
const SHA2 = '2'.repeat(40);
const hosts: FakeGitHostWithPulls[] = [];
let redis: Redis;
let store: Store;

before(async () => {
  const { url } = await testRedis();
  redis = connectRedis(url, 'pr-trust-test');
  store = new Store(redis, createKeys(freshPrefix()));
  process.env.PR_TRUST_TEST_TOKEN = TOKEN;
});

after(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  redis.disconnect();
});

async function host(kind: FakeHostKind) {
  const h = await startFakeGitHostWithPulls({ kind, token: TOKEN });
  hosts.push(h);
  return { h, client: createGitHostClient({ kind, apiUrl: h.url, tokenEnv: 'PR_TRUST_TEST_TOKEN' }) };
}

const names = (kind: FakeHostKind) => (kind === 'gitlab' ? { base: '42', fork: '77' } : { base: 'acme/shop', fork: 'mallory/shop' });

function forkPull(kind: FakeHostKind, n: number, over: Partial<FakePull> = {}): FakePull {
  const { base, fork } = names(kind);
  return { repo: base, number: n, state: 'open', headSha: SHA1, headRef: 'feat', headRepo: fork, baseRepo: base, author: 'mallory', ...(kind === 'github' ? { authorAssociation: 'NONE' } : {}), labels: [], ...over };
}

/** The event a webhook would bring; the gate re-reads everything that matters from the host. */
function event(kind: FakeHostKind, n: number): PullRequestEvent {
  return { type: 'pull-request', action: 'open', rawAction: 'opened', number: n, repo: { urls: [], apiName: names(kind).base }, baseBranch: 'main', headBranch: 'feat', headSha: SHA1, headRefs: [], merged: false };
}

for (const kind of ['github', 'gitea', 'gitlab'] as const) {
  test(`${kind}: the pull request, who added a label and people's access are read from the API`, async () => {
    const { h, client } = await host(kind);
    const { base, fork } = names(kind);
    h.setPull(forkPull(kind, 5, { labels: ['bug'] }));
    const info = await client.getPullRequest(base, 5);
    assert.deepEqual({ ...info, author: { login: info!.author.login } }, {
      state: 'open',
      headSha: SHA1,
      headRepo: fork,
      baseRepo: base,
      author: { login: 'mallory' },
      ...(kind === 'github' ? { authorAssociation: 'NONE' } : {}),
      labels: ['bug'],
    });
    if (kind === 'gitlab') assert.equal(info!.author.id, h.userId('mallory'), 'GitLab names users by id');
    assert.equal(await client.getPullRequest(base, 6), undefined, 'unknown: undefined');

    // Many label events (more than one page): the newest add of that label counts.
    for (let i = 0; i < 120; i++) h.addLabel(base, 5, `noise-${i}`, 'bot');
    h.addLabel(base, 5, 'gantry-preview', 'tom');
    h.removeLabel(base, 5, 'gantry-preview', 'tom');
    h.addLabel(base, 5, 'gantry-preview', 'alice');
    const ev = await client.lastLabeled(base, 5, 'Gantry-Preview');
    assert.equal(ev?.user.login, 'alice');
    assert.equal(await client.lastLabeled(base, 5, 'absent'), undefined);

    h.setAccess(base, 'alice', 'write');
    h.setAccess(base, 'ada', 'admin');
    h.setAccess(base, 'tom', 'read');
    assert.equal(await client.accessOf(base, ev!.user), 'write');
    assert.equal(await client.accessOf(base, { login: 'ada', id: h.userId('ada') }), 'admin');
    assert.equal(await client.accessOf(base, { login: 'tom', id: h.userId('tom') }), 'read');
    assert.equal(await client.accessOf(base, { login: 'mallory', id: h.userId('mallory') }), 'none');

    h.pull(base, 5)!.state = 'merged';
    assert.equal((await client.getPullRequest(base, 5))!.state, 'merged');
    h.setPull(forkPull(kind, 8, { headRepo: null, state: 'closed' }));
    assert.deepEqual([(await client.getPullRequest(base, 8))!.headRepo, (await client.getPullRequest(base, 8))!.state], [null, 'closed']);
    assert.ok(h.calls.every((c) => c.authorized));
  });

  test(`${kind}: the gate trusts a label only from enough access, and only for the head it approved`, async () => {
    const { h, client } = await host(kind);
    const { base } = names(kind);
    const n = { github: 11, gitea: 21, gitlab: 31 }[kind];
    const gate = new PullRequestGate({ host: client, store }, DEFAULT_TRUST_POLICY);
    const provider: ProviderName = kind;
    h.setPull(forkPull(kind, n));
    const check = async (commit = SHA1) => {
      const r = await gate.check(event(kind, n), provider, commit);
      assert.equal(r.kind, 'checked', JSON.stringify(r));
      return r.kind === 'checked' ? r.decision : undefined!;
    };

    let d = await check();
    assert.equal(d.trusted, false);
    assert.match(d.trusted ? '' : d.reason, new RegExp(`its head is in the fork ${names(kind).fork}`));

    // The author added the label themself: not enough.
    h.setAccess(base, 'mallory', 'read');
    h.addLabel(base, n, 'gantry-preview', 'mallory');
    d = await check();
    assert.equal(d.trusted, false);
    assert.match(d.trusted ? '' : d.reason, /added by @mallory, who has read access \(write needed\)/);

    // A maintainer adds it again: trusted, for this head.
    h.setAccess(base, 'alice', kind === 'gitlab' ? 'maintain' : 'write');
    h.removeLabel(base, n, 'gantry-preview', 'mallory');
    h.addLabel(base, n, 'gantry-preview', 'alice');
    d = await check();
    assert.equal(d.trusted, true, JSON.stringify(d));
    assert.equal(d.trusted && d.rule, 'label');
    assert.equal((await store.previews.readApproval(n))?.commit, SHA1);
    assert.equal((await check()).trusted, true, 'asked again: the same approval');

    // The author pushes more commits: the approval does not carry over.
    h.pull(base, n)!.headSha = SHA2;
    d = await check(SHA2);
    assert.equal(d.trusted, false);
    assert.match(d.trusted ? '' : `${d.reason} / ${d.allow}`, /commits were pushed after @alice added the label gantry-preview \/ .*removes the label gantry-preview and adds it again/);
    h.removeLabel(base, n, 'gantry-preview', 'alice');
    assert.equal((await check(SHA2)).trusted, false, 'label removed');
    h.addLabel(base, n, 'gantry-preview', 'alice');
    assert.equal((await check(SHA2)).trusted, true, 'added again: approves the new head');

    // The fetched commit is not the host's head: wait for its own event. Closed: nothing runs.
    assert.deepEqual(await gate.check(event(kind, n), provider, SHA1), { kind: 'moved', head: SHA2 });
    assert.equal(await gate.closed(event(kind, n), () => {}), false, 'open at the host: a close is stale');
    h.pull(base, n)!.state = 'closed';
    assert.equal((await gate.check(event(kind, n), provider, SHA2)).kind, 'gone');
    assert.equal(await gate.closed(event(kind, n), () => {}), true);
    assert.equal((await gate.check(event(kind, 999), provider, SHA2)).kind, 'gone', 'unknown to the host');
  });
}

test('gate: GitLab and Gitea authors are trusted by their access, GitHub ones by author_association', async () => {
  for (const kind of ['gitlab', 'gitea', 'github'] as const) {
    const { h, client } = await host(kind);
    const { base } = names(kind);
    const gate = new PullRequestGate({ host: client, store }, DEFAULT_TRUST_POLICY);
    h.setPull(forkPull(kind, 41, { author: 'dev', ...(kind === 'github' ? { authorAssociation: 'COLLABORATOR' } : {}) }));
    h.setPull(forkPull(kind, 42, { author: 'rep', ...(kind === 'github' ? { authorAssociation: 'CONTRIBUTOR' } : {}) }));
    h.setPull(forkPull(kind, 43, { author: 'own', headRepo: base, ...(kind === 'github' ? { authorAssociation: 'NONE' } : {}) }));
    h.setAccess(base, 'dev', 'write');
    h.setAccess(base, 'rep', 'triage');
    const decision = async (n: number) => {
      const r = await gate.check(event(kind, n), kind, SHA1);
      return r.kind === 'checked' ? r.decision : assert.fail(JSON.stringify(r));
    };
    const dev = await decision(41);
    assert.deepEqual([dev.trusted, dev.trusted && dev.rule], [true, 'author'], kind);
    const rep = await decision(42);
    assert.equal(rep.trusted, false, kind);
    assert.match(rep.trusted ? '' : rep.reason, kind === 'github' ? /@rep is CONTRIBUTOR/ : /@rep has (triage|read) access/);
    const own = await decision(43);
    assert.deepEqual([own.trusted, own.trusted && own.rule], [true, 'same-repo'], kind);
  }
});

test('gate: without a host only the payload counts; an unreachable host deploys nothing but does not hold up a close', async () => {
  const payloadOnly = new PullRequestGate({ store }, DEFAULT_TRUST_POLICY);
  const ev = { ...event('github', 51), headRepo: 'mallory/shop', author: { login: 'mallory' }, authorAssociation: 'MEMBER' };
  const r = await payloadOnly.check(ev, 'github', SHA1);
  assert.deepEqual([r.kind, r.kind === 'checked' && r.decision.trusted, r.kind === 'checked' && r.checked], ['checked', true, false]);
  const none = await payloadOnly.check({ ...ev, authorAssociation: 'NONE' }, 'github', SHA1);
  assert.match(none.kind === 'checked' && !none.decision.trusted ? none.decision.allow : '', /needs the Git host's API \(--git-host\)/);
  assert.equal(await payloadOnly.closed(ev, () => {}), true);

  const down = new PullRequestGate({ host: createGitHostClient({ kind: 'github', apiUrl: 'http://127.0.0.1:1/api/v3', tokenEnv: 'PR_TRUST_TEST_TOKEN' }), store }, DEFAULT_TRUST_POLICY);
  await assert.rejects(down.check(ev, 'github', SHA1), (err: Error & { code?: string }) => err.code === 'GIT_HOST_UNREACHABLE' && !err.message.includes(TOKEN));
  const logs: string[] = [];
  assert.equal(await down.closed(ev, (l) => logs.push(l)), true);
  assert.match(logs.join('\n'), /cannot check at the Git host that it is closed/);
});

test('deliveries: a replayed body under a new delivery id is a duplicate; a failed one is forgotten by id and body', async () => {
  const log = new DeliveryLog(store, 60);
  const body = Buffer.from(JSON.stringify({ action: 'labeled', number: 7 }));
  assert.equal(await log.claim('github', 'id-1', body), true);
  assert.equal(await log.claim('github', 'id-1', body), false, 'same id');
  assert.equal(await log.claim('github', 'id-2', body), false, 'same body, new id: a replay');
  assert.equal(await log.claim('github', 'id-1', Buffer.from('{"other":1}')), false, 'same id, other body');
  assert.equal(await log.claim('github', 'id-3', Buffer.from('{"other":2}')), true);
  assert.equal(await log.claim('gitlab', 'id-2', body), true, 'per provider');
  await log.forget('github', 'id-1', body);
  assert.equal(await log.claim('github', 'id-1', body), true, 'forgotten: the redelivery is acted on');
  // Ids alone (no body) are still claimed as before.
  assert.equal(await log.claim('github', 'id-4'), true);
  assert.equal(await log.claim('github', 'id-4'), false);
});
