import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGitSource, GitSourceError, type CommitFiles, type GitSource } from '../../reconciler/git/source.ts';
import { createRepo, gitAsync, type TestRepo } from '../helpers/git-repo.ts';
import { waitFor } from '../helpers/wait.ts';

const text = (files: CommitFiles['files'], path: string) => {
  const file = files.find((f) => f.path === path);
  assert.ok(file, `${path} in ${files.map((f) => f.path).join(', ')}`);
  return Buffer.from(file.content).toString('utf8');
};

describe('local git source', () => {
  let dataDir: string;
  const repos: TestRepo[] = [];
  const sources: GitSource[] = [];

  async function repo(opts?: { branch?: string; bare?: boolean }): Promise<TestRepo> {
    const r = await createRepo(opts);
    repos.push(r);
    return r;
  }
  function source(repoDir: string, extra: { branch?: string; subPath?: string; pollIntervalMs?: number; maxFileBytes?: number } = {}) {
    const s = createGitSource({ repo: repoDir, branch: extra.branch ?? 'main', subPath: extra.subPath ?? '.', dataDir, ...extra });
    sources.push(s);
    return s;
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gantry-data-'));
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await Promise.all(repos.map((r) => r.cleanup()));
    await rm(dataDir, { recursive: true, force: true });
  });

  test('reads the committed tree at the branch, not the working tree or the index', async () => {
    const r = await repo();
    const sha = await r.commitFiles({ 'apps/web.yaml': 'kind: App\nname: web\n', 'README.md': '# hi\n' }, 'first');
    // Unstaged edit, a staged new file and an untracked file: none of them is desired state.
    await writeFile(join(r.dir, 'apps/web.yaml'), 'kind: App\nname: EDITED\n');
    await writeFile(join(r.dir, 'apps/staged.yaml'), 'kind: App\n');
    await gitAsync(['add', 'apps/staged.yaml'], r.dir);
    await writeFile(join(r.dir, 'untracked.json'), '{}');

    const s = source(r.dir);
    assert.equal(s.kind, 'local');
    assert.equal(await s.resolve(), sha);
    const read = await s.read(sha);
    assert.equal(read.commit, sha);
    assert.equal(read.message.trim(), 'first');
    assert.equal(read.author, 'Gantry Test <test@gantry.invalid>');
    assert.ok(Math.abs(read.timestamp - Date.now()) < 10 * 60_000, 'timestamp is in milliseconds');
    assert.deepEqual(read.files.map((f) => f.path), ['apps/web.yaml']);
    assert.equal(text(read.files, 'apps/web.yaml'), 'kind: App\nname: web\n');
  });

  test('filters by sub-path, keeps repo-relative paths, skips non-manifest files', async () => {
    const r = await repo();
    const sha = await r.commitFiles({
      'apps/web.yaml': 'a: 1\n',
      'apps/nested/api.yml': 'b: 2\n',
      'apps/nested/conf.JSON': '{"c":3}',
      'apps/notes.txt': 'no',
      'apps/script.sh': 'no',
      'other/db.yaml': 'd: 4\n',
      'root.json': '{}',
    });
    const s = source(r.dir, { subPath: './apps/' });
    assert.equal(s.describe(), `${r.dir}@main:apps`);
    const read = await s.read(await s.resolve());
    assert.equal(read.commit, sha);
    assert.deepEqual(read.files.map((f) => f.path), ['apps/nested/api.yml', 'apps/nested/conf.JSON', 'apps/web.yaml']);
    assert.equal(text(read.files, 'apps/nested/api.yml'), 'b: 2\n');

    const all = source(r.dir);
    assert.deepEqual((await all.read(sha)).files.map((f) => f.path), [
      'apps/nested/api.yml',
      'apps/nested/conf.JSON',
      'apps/web.yaml',
      'other/db.yaml',
      'root.json',
    ]);

    const missing = source(r.dir, { subPath: 'nope' });
    await assert.rejects(missing.read(sha), (err: unknown) => err instanceof GitSourceError && err.code === 'SUBPATH_NOT_FOUND');
  });

  test('reads an older commit by sha and follows the branch to new ones', async () => {
    const r = await repo();
    const first = await r.commitFiles({ 'a.yaml': 'v: 1\n' });
    const second = await r.commitFiles({ 'a.yaml': 'v: 2\n', 'b.yaml': 'x: 1\n' });
    const s = source(r.dir);
    assert.equal(await s.resolve(), second);
    assert.equal(text((await s.read(first)).files, 'a.yaml'), 'v: 1\n');
    const third = await r.commitFiles({ 'b.yaml': null });
    assert.equal(await s.resolve(), third);
    assert.deepEqual((await s.read(third)).files.map((f) => f.path), ['a.yaml']);
    await assert.rejects(s.read('0'.repeat(40)), (err: unknown) => err instanceof GitSourceError && err.code === 'COMMIT_NOT_FOUND');
  });

  test('resolves and reads after git gc packs refs and objects', async () => {
    const r = await repo();
    await r.commitFiles({ 'a.yaml': 'v: 1\n' });
    const sha = await r.commitFiles({ 'a.yaml': 'v: 2\n' });
    await gitAsync(['gc', '--quiet', '--prune=now'], r.dir);
    // The branch now lives only in packed-refs.
    assert.equal(existsSync(join(r.dir, '.git/refs/heads/main')), false);
    assert.match(await readFile(join(r.dir, '.git/packed-refs'), 'utf8'), new RegExp(`${sha} refs/heads/main`));

    const s = source(r.dir);
    assert.equal(await s.resolve(), sha);
    assert.equal(text((await s.read(sha)).files, 'a.yaml'), 'v: 2\n');
  });

  test('works on a bare repository and on a non-default branch', async () => {
    const r = await repo({ bare: true, branch: 'deploy' });
    const sha = await r.commitFiles({ 'apps/web.yaml': 'w: 1\n' });
    const s = source(r.dir, { branch: 'deploy', subPath: 'apps' });
    assert.equal(await s.resolve(), sha);
    assert.deepEqual((await s.read(sha)).files.map((f) => f.path), ['apps/web.yaml']);
  });

  test('unknown branch is BRANCH_NOT_FOUND; a plain directory is NOT_A_REPOSITORY', async () => {
    const r = await repo();
    await r.commitFiles({ 'a.yaml': 'v: 1\n' });
    await assert.rejects(source(r.dir, { branch: 'nope' }).resolve(), (err: unknown) => {
      assert.ok(err instanceof GitSourceError);
      assert.equal(err.code, 'BRANCH_NOT_FOUND');
      assert.equal(err.toJSON().code, 'BRANCH_NOT_FOUND');
      assert.match(String(err), /^GitSourceError: branch "nope" not found/);
      return true;
    });
    await assert.rejects(source(join(r.dir, 'apps-none')).resolve(), (err: unknown) => {
      return err instanceof GitSourceError && err.code === 'NOT_A_REPOSITORY';
    });
  });

  test('oversized blobs are listed with their size and empty content', async () => {
    const r = await repo();
    const big = `data: "${'x'.repeat(1024 * 1024)}"\n`;
    const sha = await r.commitFiles({ 'big.yaml': big, 'small.yaml': 'a: 1\n' });
    const s = source(r.dir);
    const read = await s.read(sha);
    const bigFile = read.files.find((f) => f.path === 'big.yaml');
    assert.ok(bigFile);
    assert.equal(bigFile.size, Buffer.byteLength(big));
    assert.equal(bigFile.content.byteLength, 0);
    assert.equal(read.files.find((f) => f.path === 'small.yaml')?.size, 5);

    const capped = await source(r.dir, { maxFileBytes: 4 }).read(sha);
    assert.deepEqual(capped.files.map((f) => [f.path, f.size, f.content.byteLength]), [
      ['big.yaml', Buffer.byteLength(big), 0],
      ['small.yaml', 5, 0],
    ]);
    assert.equal((await s.read(sha, { maxFileBytes: 5 })).files[1]?.content.byteLength, 5);
  });

  test('watch() hints soon after a commit, and close() stops all hints', async () => {
    const r = await repo();
    await r.commitFiles({ 'a.yaml': 'v: 1\n' });
    // A long poll interval: any hint within the test comes from the file watcher.
    const s = source(r.dir, { pollIntervalMs: 600_000 });
    let hints = 0;
    s.watch(() => hints++);
    await waitFor(() => hints >= 1, { what: 'the hint sent once the watcher is armed', timeoutMs: 5_000 });

    // Many commits in a row: git replaces the ref file by rename each time, and chokidar's
    // own change events miss some of those replacements (timing-dependent); every one must hint.
    for (let i = 0; i < 12; i++) {
      const before = hints;
      const sha = await r.commitFiles({ [`b${i}.yaml`]: `v: ${i}\n` });
      await waitFor(() => hints > before, { what: 'a hint after a commit', timeoutMs: 5_000 });
      assert.equal(await s.resolve(), sha);
    }
    const beforeGc = hints;
    await gitAsync(['gc', '--quiet'], r.dir);
    await r.commitFiles({ 'd.yaml': 'v: 4\n' });
    await waitFor(() => hints > beforeGc, { what: 'a hint after gc and a commit', timeoutMs: 5_000 });

    await s.close();
    const atClose = hints;
    // A second watcher on the same repo, with a fast poll, proves time passed and the
    // commit's file events were delivered: the closed source must have stayed silent.
    const control = source(r.dir, { pollIntervalMs: 20 });
    let controlHints = 0;
    control.watch(() => controlHints++);
    await waitFor(() => controlHints >= 1, { what: 'control watcher armed' });
    const beforeCommit = controlHints;
    await r.commitFiles({ 'e.yaml': 'v: 5\n' });
    await waitFor(() => controlHints >= beforeCommit + 5, { what: 'control hints' });
    await control.close();
    assert.equal(hints, atClose);
  });

  test('periodic safety hints fire without any file event', async () => {
    const r = await repo({ bare: true });
    await r.commitFiles({ 'a.yaml': 'v: 1\n' });
    const s = source(r.dir, { pollIntervalMs: 30 });
    let hints = 0;
    s.watch(() => hints++);
    await waitFor(() => hints >= 4, { what: 'periodic hints' });
    await s.close();
  });
});
