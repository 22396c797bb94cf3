/**
 * incremental-sync: what one commit costs SourceSync in a repository of 10,000 deployments (1,000
 * files of 10 documents, generated as parse-validate's are), on a real Git repository and a private
 * redis-server: the cold parse+validate of the whole repository, then commits that change one file
 * each, from the commit to its desired state written and its one deployment enqueued.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SourceSync, type SyncResult } from '../reconciler/controller/source-sync.ts';
import { createGitSource } from '../reconciler/git/source.ts';
import { loadManifests } from '../reconciler/manifests/index.ts';
import { ManifestCache } from '../reconciler/manifests/manifest-cache.ts';
import { createKeys } from '../state/keys.ts';
import { connectRedis } from '../state/connection.ts';
import { Store } from '../state/store.ts';
import { createRepo, gitAsync } from '../test/helpers/git-repo.ts';
import { manifestFiles } from './fixtures.ts';
import { benchRedis, collectGarbage, freshPrefix, tempDir, type Benchmark } from './harness.ts';
import { formatSummary, summarize } from './stats.ts';

const DEPLOYMENTS = 10_000;
const FILES = 1_000;
const CHANGES = Number(process.env.BENCH_CHANGES ?? 20);

const time = async <T>(fn: () => Promise<T> | T): Promise<[T, number]> => {
  const t = performance.now();
  const value = await fn();
  return [value, performance.now() - t];
};

function applied(r: SyncResult): Extract<SyncResult, { outcome: 'applied' }> {
  if (r.outcome !== 'applied') throw new Error(`sync: ${JSON.stringify(r).slice(0, 300)}`);
  return r;
}

export const incrementalSync: Benchmark = {
  name: 'incremental-sync',
  description: `SourceSync over ${DEPLOYMENTS.toLocaleString('en')} deployments in ${FILES.toLocaleString('en')} files: cold parse+validate, then one-file commits`,
  async run(ctx) {
    const files = manifestFiles(DEPLOYMENTS, FILES);
    const repo = await createRepo();
    ctx.defer(() => repo.cleanup());
    await repo.commitFiles(Object.fromEntries(files.map((f) => [`deploy/${f.path}`, Buffer.from(f.content).toString('utf8')])), 'generated');
    const redisServer = await benchRedis(ctx);
    const redis = connectRedis(redisServer.url, 'bench-incremental');
    ctx.defer(() => redis.disconnect());
    const store = new Store(redis, createKeys(freshPrefix()));
    const source = createGitSource({ repo: repo.dir, branch: 'main', subPath: 'deploy', dataDir: tempDir(ctx, 'incremental') });
    ctx.defer(() => source.close());
    const cache = new ManifestCache();
    let enqueued: string[] = [];
    const sync = new SourceSync({ store, source, branch: 'main', enqueue: (k) => enqueued.push(k), manifestCache: cache });
    ctx.log(`input: ${files.length} files under deploy/, ${DEPLOYMENTS} deployments, ${(files.reduce((s, f) => s + f.content.byteLength, 0) / 2 ** 20).toFixed(1)} MB`);

    // Warm-up, as parse-validate's: schemas compiled and the JIT settled on a slice of the input.
    loadManifests(files.slice(0, 5));
    const head = await source.resolve();
    const [read, readMs] = await time(() => source.read(head));

    // (a) The cold parse+validate of the whole repository: every file, into an empty cache.
    collectGarbage();
    const [cold, coldMs] = await time(() => loadManifests(read.files, { cache }));
    if (cold.errors.length > 0) throw new Error(`generated manifests are invalid: ${cold.errors.slice(0, 3).join('; ')}`);
    // The first sync finds every blob in that cache: it builds and writes all 10,000 records.
    const [first, firstMs] = await time(async () => applied(await sync.sync()));
    if (first.written < DEPLOYMENTS || enqueued.length !== DEPLOYMENTS) throw new Error(`first sync wrote ${first.written}, enqueued ${enqueued.length}`);
    ctx.log(`cold: read every blob ${readMs.toFixed(0)} ms, parse+validate ${coldMs.toFixed(0)} ms (${cold.objects.length} objects), first sync (cache warm) ${firstMs.toFixed(0)} ms: ${first.written} records written`);

    // (b) Commits of one file each: a Deployment's replicas in a file picked in turn.
    const syncMs: number[] = [];
    const commitMs: number[] = [];
    for (let i = 0; i < CHANGES + 1; i++) {
      const f = files[1 + ((i * 389) % FILES)]!;
      const text = Buffer.from(f.content).toString('utf8').replace(/replicas: (\d+)/, (_, n: string) => `replicas: ${Number(n) + 1 + i}`);
      await writeFile(join(repo.dir, 'deploy', f.path), text);
      await gitAsync(['add', '--all'], repo.dir);
      const [, gitMs] = await time(() => gitAsync(['commit', '--quiet', '-m', `change ${i}`], repo.dir));
      enqueued = [];
      const [r, ms] = await time(async () => applied(await sync.sync()));
      if (r.written !== 1 || r.enqueued !== 1 || enqueued.length !== 1 || cache.last.parsed !== 1) throw new Error(`change ${i}: wrote ${r.written}, enqueued ${enqueued.join(',')}, parsed ${cache.last.parsed}`);
      // The first change is a warm-up (the incremental path's first run).
      if (i === 0) continue;
      syncMs.push(ms);
      commitMs.push(gitMs);
    }
    const one = summarize(syncMs);
    ctx.log(`one-file commit -> desired state written, its deployment enqueued (ms): ${formatSummary(one)}`);
    ctx.log(`(git commit itself, not counted: p50 ${summarize(commitMs).p50.toFixed(0)} ms)`);

    // An empty commit and a resync without drift: what the steady state costs.
    await repo.commitFiles({}, 'empty');
    enqueued = [];
    const [noop, noopMs] = await time(async () => applied(await sync.sync()));
    if (noop.written !== 0 || enqueued.length !== 0) throw new Error(`an empty commit wrote ${noop.written}, enqueued ${enqueued.length}`);
    const driftMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const [repaired, ms] = await time(() => sync.repairDrift());
      if (repaired.length > 0) throw new Error(`drift found where there is none: ${repaired.slice(0, 3).join(', ')}`);
      driftMs.push(ms);
    }
    const drift = summarize(driftMs);
    ctx.log(`empty commit: ${noopMs.toFixed(1)} ms, nothing written; resync drift check (no drift, ${DEPLOYMENTS} deployments): p50 ${drift.p50.toFixed(1)} ms`);

    const ratio = one.p50 / coldMs;
    ctx.log(`ratio one-file commit p50 / cold parse+validate: ${ratio.toFixed(4)} (1/${(1 / ratio).toFixed(0)}); goals: <= 100 ms and <= 1/100`);
    return [
      { name: 'incremental: cold parse+validate 10k deployments', value: coldMs, unit: 'ms' },
      { name: 'incremental: first sync, 10k records written', value: firstMs, unit: 'ms' },
      { name: 'incremental: one-file commit p50', value: one.p50, unit: 'ms' },
      { name: 'incremental: one-file commit p95', value: one.p95, unit: 'ms' },
      { name: 'incremental: one-file commit / cold', value: ratio, unit: 'ratio', digits: 4 },
      { name: 'incremental: empty commit', value: noopMs, unit: 'ms' },
      { name: 'incremental: resync drift check p50', value: drift.p50, unit: 'ms' },
    ];
  },
};
