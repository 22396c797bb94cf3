import type { Redis } from 'ioredis';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRepo, type TestRepo } from '../helpers/git-repo.ts';
import { startFakeGitHost, type FakeGitHost, type FakeHostKind } from '../helpers/fake-git-host.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { createGitHostClient } from '../../reconciler/git-host/rest-clients.ts';
import { PrReporter } from '../../reconciler/git-host/pr-reporter.ts';
import { LocalGitSource } from '../../reconciler/git/local-source.ts';
import { gitAsync } from '../helpers/git-repo.ts';

/**
 * Reporting to Git hosts over real HTTP, against the fake host: GitHub, Gitea and GitLab shapes,
 * the comment kept in place through Redis, and tokens that never show in errors. Also the local
 * source's fetchRef, which the pull-request flow relies on.
 */

const TOKEN = 'host-t0ken-value-123';
const SHA = 'f'.repeat(40);
const hosts: FakeGitHost[] = [];
let store: Store;
let redis: Redis;
let repo: TestRepo;

before(async () => {
  const { url } = await testRedis();
  redis = connectRedis(url, 'git-host-test');
  store = new Store(redis, createKeys(freshPrefix()));
  repo = await createRepo();
});

after(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  redis.disconnect();
  await repo.cleanup();
});

async function host(kind: FakeHostKind): Promise<FakeGitHost> {
  const h = await startFakeGitHost({ kind, token: TOKEN });
  hosts.push(h);
  return h;
}

for (const kind of ['github', 'gitea', 'gitlab'] as const) {
  test(`${kind}: commit statuses and a comment created then edited, with the host's auth`, async () => {
    const h = await host(kind);
    process.env.GH_TEST_TOKEN = TOKEN;
    const client = createGitHostClient({ kind, apiUrl: h.url, tokenEnv: 'GH_TEST_TOKEN' });
    const repoName = kind === 'gitlab' ? '42' : 'acme/shop';
    await client.setStatus(repoName, SHA, { context: 'gantry/plan', state: 'failure', description: `x`.repeat(300) });
    await client.setStatus(repoName, SHA, { context: 'gantry/preview', state: 'pending', description: 'deploying' });
    assert.deepEqual(h.statuses.map((s) => [s.repo, s.sha, s.context, s.state]), [[repoName, SHA, 'gantry/plan', 'failure'], [repoName, SHA, 'gantry/preview', 'pending']]);
    assert.ok(h.statuses[0]!.description.length <= (kind === 'gitlab' ? 255 : 140));
    if (kind === 'gitlab') assert.equal(h.calls[0]!.body!.state, 'failed', 'GitLab says failed');
    const id = await client.createComment(repoName, 7, 'one');
    assert.equal(await client.updateComment(repoName, 7, id, 'two'), true);
    assert.equal(await client.updateComment(repoName, 7, '999999', 'three'), false, 'a deleted comment is reported, not thrown');
    assert.deepEqual(h.comments.get(Number(id))!.versions, ['one', 'two']);
    assert.ok(h.calls.every((c) => c.authorized));
    const expected = kind === 'gitlab' ? ['POST /projects/42/statuses/', 'POST /projects/42/merge_requests/7/notes', 'PUT /projects/42/merge_requests/7/notes/'] : ['POST /repos/acme/shop/statuses/', 'POST /repos/acme/shop/issues/7/comments', 'PATCH /repos/acme/shop/issues/comments/'];
    for (const e of expected) assert.ok(h.calls.some((c) => `${c.method} ${c.path}`.startsWith(e)), `${e} in ${h.calls.map((c) => c.path).join(', ')}`);
  });
}

test('a rejected or missing token fails with a message that never contains it', async () => {
  const h = await host('github');
  process.env.GH_WRONG_TOKEN = 'wrong-but-secret-token';
  const wrong = createGitHostClient({ kind: 'github', apiUrl: h.url, tokenEnv: 'GH_WRONG_TOKEN' });
  await assert.rejects(wrong.setStatus('acme/shop', SHA, { context: 'c', state: 'success', description: 'd' }), (err: Error) => {
    assert.match(err.message, /HTTP 401: Bad credentials/);
    assert.ok(!err.message.includes('wrong-but-secret-token'));
    return true;
  });
  delete process.env.GH_NO_TOKEN;
  const none = createGitHostClient({ kind: 'github', apiUrl: h.url, tokenEnv: 'GH_NO_TOKEN' });
  await assert.rejects(none.createComment('acme/shop', 1, 'x'), /no Git host token: set \$GH_NO_TOKEN/);
  assert.throws(() => createGitHostClient({ kind: 'gitea', tokenEnv: 'X' }), /--git-host gitea needs --git-host-api/);
});

test('PrReporter keeps one comment per pull request, edited in place, recreated if deleted, forgotten on close', async () => {
  const h = await host('github');
  process.env.GH_TEST_TOKEN = TOKEN;
  const logs: string[] = [];
  const reporter = new PrReporter(createGitHostClient({ kind: 'github', apiUrl: h.url, tokenEnv: 'GH_TEST_TOKEN' }), store, (l) => logs.push(l));
  // Concurrent reports for one pull request still make one comment.
  await Promise.all([reporter.comment('acme/shop', 3, 'v1'), reporter.comment('acme/shop', 3, 'v2')]);
  await reporter.comment('acme/shop', 3, 'v3');
  assert.equal(h.comments.size, 1);
  const [first] = [...h.comments.values()];
  assert.deepEqual(first!.versions, ['v1', 'v2', 'v3']);
  assert.equal(await redis.get(store.keys.prComment(3)), String(first!.id));
  h.deleteComment(first!.id);
  await reporter.comment('acme/shop', 3, 'v4');
  assert.equal(h.comments.size, 1);
  const [second] = [...h.comments.values()];
  assert.notEqual(second!.id, first!.id);
  await reporter.finalComment('acme/shop', 3, 'closed');
  assert.deepEqual(second!.versions, ['v4', 'closed']);
  assert.equal(await redis.exists(store.keys.prComment(3)), 0);
  // A host that fails is logged, token-free, and does not throw.
  const failing = new PrReporter(createGitHostClient({ kind: 'github', apiUrl: 'http://127.0.0.1:1/api/v3', tokenEnv: 'GH_TEST_TOKEN' }), store, (l) => logs.push(l));
  await failing.status('acme/shop', SHA, { context: 'gantry/plan', state: 'success', description: 'ok' });
  assert.ok(logs.some((l) => l.includes('commit status gantry/plan=success') && l.includes('failed')), logs.join('\n'));
  assert.ok(!logs.join('\n').includes(TOKEN));
});

test('a local source reads any ref or sha: refs/pull/N/head, a branch, a short sha; unknown ones are named', async () => {
  const base = await repo.commitFiles({ 'a.yaml': 'x: 1\n' }, 'base');
  await gitAsync(['checkout', '-q', '-b', 'feature'], repo.workDir);
  await repo.commitFiles({ 'a.yaml': 'x: 2\n' }, 'feature');
  const feature = await gitAsync(['rev-parse', 'HEAD'], repo.workDir);
  await gitAsync(['checkout', '-q', 'main'], repo.workDir);
  await gitAsync(['update-ref', 'refs/pull/4/head', feature], repo.workDir);
  const source = new LocalGitSource({ repo: repo.dir, branch: 'main', subPath: '.', dataDir: repo.dir });
  assert.equal(await source.fetchRef('refs/pull/4/head'), feature);
  assert.equal(await source.fetchRef('feature'), feature);
  assert.equal(await source.fetchRef(feature.slice(0, 8)), feature);
  assert.equal(await source.fetchRef(base), base);
  await assert.rejects(source.fetchRef('refs/pull/5/head'), (err: Error & { code?: string }) => err.code === 'BRANCH_NOT_FOUND' && /ref "refs\/pull\/5\/head" not found/.test(err.message));
  await assert.rejects(source.fetchRef('0123456789abcdef0123456789abcdef01234567'), (err: Error & { code?: string }) => err.code === 'COMMIT_NOT_FOUND');
  for (const bad of ['', '--upload-pack=x', 'a..b', 'a b', 'refs/heads/']) await assert.rejects(source.fetchRef(bad), (err: Error & { code?: string }) => err.code === 'INVALID_CONFIG');
  await source.close();
});
