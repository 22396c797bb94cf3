import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createGitSource, GitSourceError, type GitSource } from '../../reconciler/git/source.ts';
import { ObjectSizes } from '../../reconciler/git/object-size.ts';
import { ObjectStore } from '../../reconciler/git/object-store.ts';
import { DEFAULT_COMMIT_LIMITS, readCommitFiles } from '../../reconciler/git/tree-reader.ts';
import { SourceSync } from '../../reconciler/controller/source-sync.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { Store } from '../../state/store.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { freshPrefix, testRedis } from '../helpers/redis.ts';

/**
 * Git input limits (issue 11, section 4): a blob's size is known before it is inflated, and a
 * commit past the caps on files, bytes, entries or depth is rejected whole, keeping the last good.
 */

const MiB = 1024 * 1024;
const deployment = (name: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  template:\n    metadata:\n      labels: { app: ${name} }\n    spec:\n      containers:\n        - name: main\n          command: [sleep, "1000"]\n`;

/** A shell pipeline in `cwd`, asynchronously (this process must never block on a git child). */
function sh(script: string, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', script], { cwd, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script}: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/** Commits a blob of `bytes` zeros at `path` without it ever being in this process or the working tree. */
async function commitZeros(repo: TestRepo, path: string, bytes: number, message: string): Promise<string> {
  const oid = await sh(`head -c ${bytes} /dev/zero | git hash-object -w --stdin`, repo.dir);
  await gitAsync(['update-index', '--add', '--cacheinfo', `100644,${oid},${path}`], repo.dir);
  await gitAsync(['commit', '--quiet', '-m', message], repo.dir);
  return gitAsync(['rev-parse', 'HEAD'], repo.dir);
}

/** Peak resident memory of this process so far, in bytes (it only grows). */
const peakRss = () => process.resourceUsage().maxRSS * 1024;

describe('git input limits', () => {
  const repos: TestRepo[] = [];
  const sources: GitSource[] = [];
  let dataDir: string;
  let redis: Redis;

  const repo = async () => {
    const r = await createRepo();
    repos.push(r);
    return r;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gantry-limits-git-'));
    redis = connectRedis((await testRedis()).url, 'limits-git-test');
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await Promise.all(repos.map((r) => r.cleanup()));
    await rm(dataDir, { recursive: true, force: true });
    redis?.disconnect();
  });

  test('a blob bomb (200 MiB of zeros in ~200 KiB), loose or packed, is sized, not inflated, and rejects its commit', async () => {
    const r = await repo();
    const good = await r.commitFiles({ 'deploy/web.yaml': deployment('web') }, 'good');
    const bomb = await commitZeros(r, 'deploy/bomb.yaml', 200 * MiB, 'bomb');
    const gitdir = join(r.dir, '.git');
    const read = () => readCommitFiles({ gitdir, commit: bomb, subPath: 'deploy', maxFileBytes: MiB });

    for (const layout of ['loose', 'packed']) {
      if (layout === 'packed') {
        await gitAsync(['repack', '-a', '-d', '-q'], r.dir);
        await gitAsync(['prune-packed'], r.dir);
        assert.deepEqual((await readdir(join(gitdir, 'objects'))).filter((d) => /^[0-9a-f]{2}$/.test(d)), [], 'no loose objects left');
      }
      const before = peakRss();
      const files = await read();
      const grown = peakRss() - before;
      const entry = files.files.find((f) => f.path === 'deploy/bomb.yaml');
      assert.deepEqual(entry && { size: entry.size, content: entry.content.byteLength }, { size: 200 * MiB, content: 0 }, layout);
      assert.ok(grown < 64 * MiB, `${layout}: peak memory grew by ${Math.round(grown / MiB)} MiB reading a 200 MiB blob`);
    }

    // Through the sync: rejected with FILE_TOO_LARGE, the good commit keeps serving.
    const store = new Store(redis, createKeys(freshPrefix()));
    const source = createGitSource({ repo: r.dir, branch: 'main', subPath: 'deploy', dataDir });
    sources.push(source);
    await gitAsync(['update-ref', 'refs/heads/main', good], r.dir);
    const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
    assert.equal((await sync.sync()).outcome, 'applied');
    await gitAsync(['update-ref', 'refs/heads/main', bomb], r.dir);
    const res = await sync.sync();
    assert.equal(res.outcome, 'rejected');
    const status = await store.readSourceStatus();
    assert.equal(status?.lastAppliedCommit, good);
    assert.equal(status?.rejectedCommit, bomb);
    assert.deepEqual(status?.errors, ['deploy/bomb.yaml:1:1: file is 209715200 bytes (200Mi), larger than the limit of 1048576 bytes (1Mi)']);
    assert.deepEqual((await store.readDeployments()).map((d) => d.name), ['web']);
  });

  test('object sizes from loose objects, packs and deltas agree with git cat-file, and a delta is sized without its base', async () => {
    const r = await repo();
    // Similar large blobs: repack stores some as deltas of others.
    let body = `${'line of a config file that stays the same\n'.repeat(20_000)}`;
    for (let i = 0; i < 4; i++) {
      body += `change ${i}\n`;
      await r.commitFiles({ 'deploy/big.yaml': body, 'deploy/small.yaml': `n: ${i}\n` }, `v${i}`);
    }
    await gitAsync(['repack', '-a', '-d', '-f', '-q', '--window=10', '--depth=5'], r.dir);
    await r.commitFiles({ 'deploy/loose.yaml': 'loose: yes\n' }, 'after the repack');
    const gitdir = join(r.dir, '.git');
    const pack = (await readdir(join(gitdir, 'objects', 'pack'))).find((f) => f.endsWith('.idx'))!;
    const verify = await gitAsync(['verify-pack', '-v', join(gitdir, 'objects', 'pack', pack)], r.dir);
    assert.ok(verify.split('\n').some((l) => /^[0-9a-f]{40} blob\s+\d+ \d+ \d+ \d+ [0-9a-f]{40}$/.test(l)), 'the pack holds a blob delta');

    const all = (await gitAsync(['cat-file', '--batch-all-objects', '--batch-check'], r.dir)).split('\n').map((l) => l.split(' '));
    const sizes = new ObjectSizes(gitdir);
    try {
      for (const [oid, type, size] of all) assert.equal(await sizes.sizeOf(oid!), Number(size), `${type} ${oid}`);
      assert.equal(await sizes.sizeOf('0'.repeat(40)), undefined);
    } finally {
      await sizes.close();
    }
  });

  test('the object store reads loose objects, packed ones and deltas byte for byte as git cat-file does, and caps what a delta chain inflates', async () => {
    const r = await repo();
    let body = `${'line of a config file that stays the same\n'.repeat(20_000)}`;
    for (let i = 0; i < 4; i++) {
      body += `change ${i}\n`;
      await r.commitFiles({ 'deploy/big.yaml': body, 'deploy/small.yaml': `n: ${i}\n`, [`deploy/sub/f${i}.yaml`]: `f: ${i}\n` }, `v${i}`);
    }
    await gitAsync(['repack', '-a', '-d', '-f', '-q', '--window=10', '--depth=5'], r.dir);
    await r.commitFiles({ 'deploy/loose.yaml': 'loose: yes\n' }, 'after the repack');
    const gitdir = join(r.dir, '.git');
    const all = (await gitAsync(['cat-file', '--batch-all-objects', '--batch-check'], r.dir)).split('\n').map((l) => l.split(' '));
    const store = new ObjectStore(gitdir);
    const catFile = (type: string, oid: string) =>
      new Promise<Buffer>((resolve, reject) => execFile('git', ['cat-file', type, oid], { cwd: r.dir, encoding: 'buffer', maxBuffer: 64 * MiB }, (err, out) => (err ? reject(err) : resolve(out))));
    let trees = 0;
    let packed = 0;
    for (const [oid, type, size] of all) {
      const fromPack = await store.packedSize(oid!);
      if (fromPack !== undefined) packed++;
      assert.ok(fromPack === undefined || fromPack === Number(size), `${type} ${oid}: packed size ${fromPack}, git says ${size}`);
      const obj = await store.read(oid!);
      assert.equal(obj?.type, type, `${type} ${oid}`);
      assert.ok(obj.data.equals(await catFile(type!, oid!)), `${type} ${oid}: the same bytes as git cat-file`);
      if (type === 'tree') {
        trees++;
        const listed = (await gitAsync(['ls-tree', oid!], r.dir)).split('\n').map((l) => {
          const [meta, path] = l.split('\t');
          const [mode, kind, entryOid] = meta!.split(' ');
          return { mode: mode!.padStart(6, '0'), path, oid: entryOid, type: kind };
        });
        assert.deepEqual(await store.readTree(oid!), listed);
      }
    }
    assert.ok(trees >= 3);
    assert.ok(packed > 0 && packed < all.length, 'packed and loose objects both');
    assert.equal(await store.read('0'.repeat(40)), undefined, 'not in the store: undefined, for the caller to fall back');
    // A cap below the big blob: its deltas (and the blob itself) refuse to inflate past it.
    const big = all.find(([, type, size]) => type === 'blob' && Number(size) > 100_000)!;
    await assert.rejects(new ObjectStore(gitdir, 1000).read(big[0]!), RangeError);
    // The commit's files through the store match what isomorphic-git read before.
    const head = await gitAsync(['rev-parse', 'HEAD'], r.dir);
    const read = await readCommitFiles({ gitdir, commit: head, subPath: 'deploy', maxFileBytes: MiB });
    assert.deepEqual(read.files.map((f) => f.path), ['deploy/big.yaml', 'deploy/loose.yaml', 'deploy/small.yaml', 'deploy/sub/f0.yaml', 'deploy/sub/f1.yaml', 'deploy/sub/f2.yaml', 'deploy/sub/f3.yaml']);
    assert.equal(Buffer.from(read.files[0]!.content).toString(), body);
    await assert.rejects(readCommitFiles({ gitdir, commit: head, subPath: 'deploy/nope', maxFileBytes: MiB }), (e: unknown) => e instanceof GitSourceError && e.code === 'SUBPATH_NOT_FOUND');
    await assert.rejects(readCommitFiles({ gitdir, commit: head, subPath: 'deploy/small.yaml', maxFileBytes: MiB }), (e: unknown) => e instanceof GitSourceError && e.code === 'SUBPATH_NOT_FOUND');
  });

  test('caps per commit: manifest files, total bytes, entries, depth and tree size, each a clear COMMIT_TOO_LARGE', async () => {
    assert.deepEqual(DEFAULT_COMMIT_LIMITS, { maxFiles: 10_000, maxTotalBytes: 64 * MiB, maxEntries: 100_000, maxDepth: 32, maxTreeBytes: 16 * MiB });
    const r = await repo();
    const deep = `${Array.from({ length: 5 }, (_, i) => `d${i}`).join('/')}/x.yaml`;
    const files: Record<string, string> = { 'm/a.yaml': 'a: 1\n', 'm/b.yaml': 'b: 2\n', 'm/c.yml': 'c: 3\n', 'm/notes.txt': 'x', [`m/${deep}`]: 'd: 4\n' };
    for (let i = 0; i < 20; i++) files[`m/other/f${i}.txt`] = 'not a manifest';
    const commit = await r.commitFiles(files, 'many');
    const read = (limits: Partial<typeof DEFAULT_COMMIT_LIMITS>) => readCommitFiles({ gitdir: join(r.dir, '.git'), commit, subPath: 'm', maxFileBytes: MiB, limits });
    const rejected = async (limits: Partial<typeof DEFAULT_COMMIT_LIMITS>, message: RegExp) => {
      const err = await read(limits).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof GitSourceError, `${JSON.stringify(limits)}: ${String(err)}`);
      assert.equal(err.code, 'COMMIT_TOO_LARGE');
      assert.equal(err.data.commit, commit);
      assert.match(err.message, message);
    };
    assert.equal((await read({})).files.length, 4);
    await rejected({ maxFiles: 3 }, new RegExp(`^commit ${commit.slice(0, 7)} rejected: more than 3 manifest files under "m" \\(the limit per commit\\)$`));
    await rejected({ maxTotalBytes: 12 }, /rejected: manifest files under "m" add up to more than 12 bytes \(the limit per commit\), at m\/c\.yml$/);
    await rejected({ maxEntries: 10 }, /rejected: more than 10 files and directories under "m" \(the limit per commit\)/);
    await rejected({ maxDepth: 3 }, /rejected: m\/d0\/d1\/d2\/d3 is more than 3 directories deep under "m" \(the limit\)$/);
    await rejected({ maxTreeBytes: 200 }, /rejected: directory m\/other is a tree of \d+ bytes, more than the limit of 200 bytes$/);
    assert.equal((await read({ maxFiles: 4, maxDepth: 5, maxEntries: 40 })).files.length, 4);
  });

  test('a commit past a cap is rejected through the sync like invalid manifests, and the last good one keeps serving', async () => {
    const r = await repo();
    const good = await r.commitFiles({ 'deploy/web.yaml': deployment('web') }, 'good');
    const path = `deploy/${Array.from({ length: 40 }, (_, i) => `level${i}`).join('/')}/api.yaml`;
    const tooDeep = await r.commitFiles({ 'deploy/web.yaml': null, [path]: deployment('api') }, 'too deep');
    const store = new Store(redis, createKeys(freshPrefix()));
    const source = createGitSource({ repo: r.dir, branch: 'main', subPath: 'deploy', dataDir });
    sources.push(source);
    const sync = new SourceSync({ store, source, branch: 'main', enqueue: () => {} });
    await gitAsync(['update-ref', 'refs/heads/main', good], r.dir);
    assert.equal((await sync.sync()).outcome, 'applied');
    await gitAsync(['update-ref', 'refs/heads/main', tooDeep], r.dir);
    const res = await sync.sync();
    assert.deepEqual(res, { outcome: 'rejected', commit: tooDeep, errors: [`commit ${tooDeep.slice(0, 7)} rejected: ${path.split('/').slice(0, 34).join('/')} is more than 32 directories deep under "deploy" (the limit)`], errorCount: 1 });
    const status = await store.readSourceStatus();
    assert.equal(status?.lastAppliedCommit, good);
    assert.equal(status?.rejectedCommit, tooDeep);
    assert.equal(status?.errorCount, 1);
    assert.deepEqual((await store.readDeployments()).map((d) => d.name), ['web']);
    const [event] = await store.events.read({ limit: 1, object: 'source' });
    assert.equal(event?.reason, 'CommitRejected');
    assert.match(event!.message, /1 error\(s\): commit \w+ rejected: deploy\/level0\/.* is more than 32 directories deep/);
    // Unchanged on the next look: rejected once, not re-read.
    assert.equal((await sync.sync()).outcome, 'unchanged');
  });
});
