import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { constants as zlib, deflateRawSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { createGitSource, type GitSource } from '../../reconciler/git/source.ts';
import { SourceSync } from '../../reconciler/controller/source-sync.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { startGitHttpServer, type GitHttpServer } from '../helpers/git-http-server.ts';
import { createRepo, GIT_ENV, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * Limits on what a fetch from a remote may bring (issue 11, section 4; reconciler/git/pack-guard.ts),
 * over real smart HTTP (git http-backend): a 2 KiB-per-MiB pack holding a blob of 2 GiB of zeros is
 * stopped at the blob's header, costs no memory, keeps nothing, and the last good commit serves on.
 */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const deployment = (name: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  template:\n    metadata:\n      labels: { app: ${name} }\n    spec:\n      containers:\n        - name: main\n          command: [sleep, "1000"]\n`;

/** Runs git with `input` on stdin; stdout. */
function gitWithInput(args: string[], cwd: string, input: Buffer | string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: GIT_ENV });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`git ${args.join(' ')}: ${err}`))));
    // git may exit without reading stdin (commit-tree -m): its close, not EPIPE, decides.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * Puts into the repository at `gitdir` a pack holding one blob of `bytes` zeros, without anyone
 * deflating gigabytes: a full flush makes every 64 MiB of zeros the same deflate blocks, so the
 * stream is one block repeated, an empty final block and the Adler-32 of n zeros ((n mod 65521)
 * << 16 | 1). git index-pack checks and indexes it (streaming). Returns the blob's id.
 */
async function packZeroBlob(gitdir: string, bytes: number): Promise<string> {
  const chunk = 64 * MiB;
  assert.equal(bytes % chunk, 0);
  const block = deflateRawSync(Buffer.alloc(chunk), { finishFlush: zlib.Z_FULL_FLUSH });
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((bytes % 65521) << 16) | 1) >>> 0);
  const header = [0xb0 | (bytes % 16)];
  for (let rest = Math.floor(bytes / 16); rest > 0; rest = Math.floor(rest / 128)) {
    header.push((rest % 128) | (rest >= 128 ? 0x80 : 0));
  }
  if (header.length === 1) header[0]! &= 0x7f;
  const packHead = Buffer.alloc(12);
  packHead.write('PACK', 0, 'latin1');
  packHead.writeUInt32BE(2, 4);
  packHead.writeUInt32BE(1, 8);
  const body = Buffer.concat([packHead, Buffer.from(header), Buffer.from([0x78, 0x01]), ...Array(bytes / chunk).fill(block), deflateRawSync(Buffer.alloc(0)), adler]);
  const pack = Buffer.concat([body, createHash('sha1').update(body).digest()]);
  const packHash = (await gitWithInput(['index-pack', '--stdin'], gitdir, pack)).split(/\s+/).pop()!;
  const index = await gitWithInput(['show-index'], gitdir, await readFile(join(gitdir, 'objects', 'pack', `pack-${packHash}.idx`)));
  return index.split(' ')[1]!;
}

/** A commit on top of `parent` whose deploy/ holds web.yaml and bomb.yaml (the blob `bombOid`). */
async function commitWithBlob(gitdir: string, parent: string, bombOid: string): Promise<string> {
  const deploy = await gitAsync(['rev-parse', `${parent}:deploy`], gitdir);
  const entries = (await gitAsync(['ls-tree', deploy], gitdir)).split('\n');
  const tree = await gitWithInput(['mktree'], gitdir, `${[...entries, `100644 blob ${bombOid}\tbomb.yaml`].join('\n')}\n`);
  const root = await gitWithInput(['mktree'], gitdir, `040000 tree ${tree}\tdeploy\n`);
  const commit = await gitWithInput(['commit-tree', root, '-p', parent, '-m', 'a blob of 2 GiB of zeros'], gitdir, '');
  await gitAsync(['update-ref', 'refs/heads/main', commit], gitdir);
  return commit;
}

const peakRss = () => process.resourceUsage().maxRSS * 1024;

describe('fetch limits over smart HTTP', () => {
  let repo: TestRepo;
  let server: GitHttpServer;
  let redis: Redis;
  const dirs: string[] = [];
  const sources: GitSource[] = [];
  const tempDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'gantry-fetch-limits-'));
    dirs.push(d);
    return d;
  };

  before(async () => {
    repo = await createRepo({ bare: true });
    server = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
    redis = connectRedis((await testRedis()).url, 'fetch-limits-test');
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await server?.close();
    await repo?.cleanup();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    redis?.disconnect();
  });

  test('a 2 GiB blob bomb is stopped at its header: no memory, nothing kept, the last good commit serves on', async () => {
    // A history with deltas first: an honest pack of every kind of entry passes the guard.
    let body = 'a line of a config file that stays the same\n'.repeat(4000);
    let good = '';
    for (let i = 0; i < 4; i++) {
      body += `change ${i}\n`;
      good = await repo.commitFiles({ 'deploy/web.yaml': deployment('web'), 'deploy/big.txt': body }, `v${i}`);
    }
    const dataDir = await tempDir();
    const source = createGitSource({ repo: `${server.url}/${basename(repo.dir)}`, branch: 'main', subPath: 'deploy', dataDir });
    sources.push(source);
    const store = new Store(redis, createKeys(freshPrefix()));
    const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
    assert.deepEqual(await sync.sync().then((r) => [r.outcome, 'commit' in r && r.commit]), ['applied', good]);
    const cacheDir = join(dataDir, 'git-cache', (await readdir(join(dataDir, 'git-cache')))[0]!);
    const packs = async () => (await readdir(join(cacheDir, 'objects', 'pack'))).sort();
    const [firstPack] = (await packs()).filter((f) => f.endsWith('.pack'));
    const verify = await gitAsync(['verify-pack', '-v', join(cacheDir, 'objects', 'pack', firstPack!)], cacheDir);
    assert.ok(verify.split('\n').some((l) => /^[0-9a-f]{40} blob\s+\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(l)), 'the fetched pack held deltas');
    const packsBefore = await packs();

    const bombOid = await packZeroBlob(repo.dir, 2 * GiB);
    const bomb = await commitWithBlob(repo.dir, good, bombOid);
    assert.equal(await gitAsync(['cat-file', '-s', bombOid], repo.dir), String(2 * GiB));

    const rssBefore = peakRss();
    const res = await sync.sync();
    const grown = peakRss() - rssBefore;
    assert.equal(res.outcome, 'failed');
    assert.match(
      (res as { error: string }).error,
      /^fetching http:\/\/127\.0\.0\.1:\d+\/repo\.git@main:deploy stopped: pack entry \d \(blob\) declares 2 GiB, more than the limit of 128 MiB per object \(nothing fetched was kept; the commit before it keeps serving\)$/,
    );
    assert.ok(grown < 64 * MiB, `peak memory grew by ${Math.round(grown / MiB)} MiB fetching a 2 GiB blob`);
    assert.deepEqual(await packs(), packsBefore, 'no pack of the stopped fetch was written');
    const status = await store.readSourceStatus();
    assert.equal(status?.lastAppliedCommit, good);
    assert.match(status?.lastFetchError ?? '', /declares 2 GiB/);
    assert.deepEqual((await store.readDeployments()).map((d) => d.name), ['web']);
    const [event] = await store.events.read({ limit: 1, object: 'source' });
    assert.equal(event?.reason, 'FetchFailed');

    // The bomb rewritten out of the branch: the next sync fetches and applies.
    await gitAsync(['update-ref', 'refs/heads/main', good], repo.dir);
    const fixed = await repo.commitFiles({ 'deploy/api.yaml': deployment('api') }, 'without the bomb');
    assert.notEqual(bomb, fixed);
    assert.deepEqual(await sync.sync().then((r) => [r.outcome, 'commit' in r && r.commit]), ['applied', fixed]);
    assert.deepEqual((await store.readDeployments()).map((d) => d.name).sort(), ['api', 'web']);
    assert.equal((await store.readSourceStatus())?.lastFetchError, undefined);

    // A configured limit: a pack past maxPackBytes is stopped too, as the history is (a cache of its own: another data dir).
    const small = createGitSource({ repo: `${server.url}/${basename(repo.dir)}`, branch: 'main', subPath: 'deploy', dataDir: await tempDir(), fetchLimits: { maxPackBytes: 1024 } });
    sources.push(small);
    await assert.rejects(small.resolve(), (err: Error & { code?: string; data?: Record<string, unknown> }) => {
      assert.equal(err.code, 'FETCH_TOO_LARGE');
      assert.equal(err.data?.limit, 'maxPackBytes');
      assert.match(err.message, /stopped: the (pack|response) is larger than 1 KiB/);
      return true;
    });
  });
});
