import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createGitSource, type GitSource } from '../../reconciler/git/source.ts';
import { SourceSync } from '../../reconciler/controller/source-sync.ts';
import { installErrorHandler } from '../../reconciler/api/http-error.ts';
import { registerPreviewRoutes } from '../../reconciler/preview/routes.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { startGitHttpServer, type GitHttpServer } from '../helpers/git-http-server.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * GET /api/v1/plan?ref= cannot make Gantry fetch arbitrary refs over and over (issue 11, section
 * 4): fetches of refs it does not know yet take from a token bucket; past it, 429 with a code and
 * Retry-After, and no request reaches the Git server. Known refs are never limited.
 */

let redis: Redis;
let repo: TestRepo;
let server: GitHttpServer;
let source: GitSource;
let app: FastifyInstance;
let dataDir: string;

const deployment = `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    metadata:\n      labels: { app: web }\n    spec:\n      containers:\n        - name: main\n          command: [sleep, "1000"]\n`;

before(async () => {
  redis = connectRedis((await testRedis()).url, 'limits-plan-test');
  dataDir = await mkdtemp(join(tmpdir(), 'gantry-limits-plan-'));
  repo = await createRepo({ bare: true });
  await repo.commitFiles({ 'web.yaml': deployment }, 'initial');
  await gitAsync(['push', '--quiet', 'origin', 'HEAD:refs/heads/feature'], repo.workDir);
  server = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
  source = createGitSource({ repo: `${server.url}/${basename(repo.dir)}`, branch: 'main', subPath: '.', dataDir });
  const store = new Store(redis, createKeys(freshPrefix()));
  // A small bucket that does not refill within the test: 3 fetches of unknown refs, then 429.
  const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {}, refFetchLimit: { burst: 3, perMinute: 0.001 } });
  assert.equal((await sync.sync()).outcome, 'applied');
  app = Fastify();
  installErrorHandler(app, 'api');
  registerPreviewRoutes(app, { sync });
  await app.ready();
});
after(async () => {
  await app?.close();
  await source?.close();
  await server?.close();
  await repo?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
  redis?.disconnect();
});

const plan = async (ref: string) => {
  const res = await app.inject({ method: 'GET', url: `/api/v1/plan?ref=${encodeURIComponent(ref)}` });
  return { status: res.statusCode, body: res.json() as { code?: string; error?: string; valid?: boolean }, retryAfter: res.headers['retry-after'] };
};

test('unknown refs are fetched a few times, then refused with 429 FETCH_RATE_LIMITED until the bucket refills', async () => {
  assert.equal((await plan('refs/heads/feature')).status, 200, 'a ref not fetched before takes a token');
  assert.equal((await plan('refs/pull/1/head')).status, 404);
  assert.equal((await plan('refs/pull/2/head')).status, 404);
  const before = server.requests;
  const limited = await plan('refs/pull/3/head');
  assert.equal(limited.status, 429);
  assert.equal(limited.body.code, 'FETCH_RATE_LIMITED');
  assert.match(limited.body.error!, /^too many fetches of refs not fetched before \(at most 3 at once, 0\.001 a minute\): try again in \d+s$/);
  assert.ok(Number(limited.retryAfter) >= 1, `Retry-After: ${String(limited.retryAfter)}`);
  assert.equal(server.requests, before, 'a refused fetch never reaches the Git server');
  assert.equal((await plan('refs/tags/v1')).status, 429);

  // Not limited: the tracked branch, a ref fetched before, a sha already here, and no ref at all.
  assert.equal((await plan('main')).status, 200);
  assert.equal((await plan('refs/heads/feature')).status, 200);
  const head = await gitAsync(['rev-parse', 'HEAD'], repo.workDir);
  assert.equal((await plan(head)).status, 200);
  assert.equal((await plan(head.slice(0, 10))).status, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/plan' })).statusCode, 200);
  // A sha that is not here would need a fetch of every branch: limited like an unknown ref.
  assert.equal((await plan('0123456789abcdef0123456789abcdef01234567')).status, 429);
});
