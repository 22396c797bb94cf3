/**
 * git-fetch: what the reconciler does with a remote repository, beside the git CLI doing the same
 * on the same repository, in one run. One bare repository of N manifest files (1,000 and 10,000,
 * about 400 bytes each, 100 per directory), served over smart HTTP by `git http-backend` (the test
 * helper's server, in this process for both sides).
 *
 * - Gantry: RemoteGitSource (reconciler/git/remote-source.ts) resolve(), i.e. an isomorphic-git
 *   clone (first) or fetch (then) into its cache, and read() of every manifest (tree-reader.ts:
 *   tree walk, object sizes, blobs inflated), as SourceSync calls them.
 * - CLI: `git fetch` into a bare cache, then `git ls-tree -r` and `git cat-file --batch` of every
 *   blob, output read to the end.
 *
 * "first" starts from an empty cache; "next commit" fetches one new commit changing one file and
 * reads the whole tree again (a read without the parse cache, as the CLI side has none). The two
 * sides alternate, BENCH_GIT_RUNS times each (default 3); figures are medians.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { RemoteGitSource } from '../reconciler/git/remote-source.ts';
import { startGitHttpServer } from '../test/helpers/git-http-server.ts';
import { createRepo, GIT_ENV, gitAsync } from '../test/helpers/git-repo.ts';
import type { Benchmark, BenchContext, Figure } from './harness.ts';
import { median } from './stats.ts';

const RUNS = Number(process.env.BENCH_GIT_RUNS ?? 3);
const SIZES = (process.env.BENCH_GIT_FILES ?? '1000,10000').split(',').map(Number);

export const gitFetch: Benchmark = {
  name: 'git-fetch',
  description: `isomorphic-git fetch + read (RemoteGitSource) beside git fetch + ls-tree + cat-file --batch, over smart HTTP, ${SIZES.join(' and ')} files`,
  async run(ctx) {
    const figures: Figure[] = [];
    for (const n of SIZES) figures.push(...(await oneSize(ctx, n)));
    return figures;
  },
};

const manifest = (i: number, version = 1) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${i}
  namespace: ns-${Math.floor(i / 100)}
spec:
  replicas: ${1 + (i % 5)}
  template:
    metadata:
      labels: { app: app-${i} }
    spec:
      containers:
        - name: main
          image: registry.example/app-${i}:${version}
          command: ["/bin/server", "--port", "8080"]
          ports: [{ name: http, containerPort: 8080 }]
          resources: { requests: { cpu: 100m, memory: 64Mi } }
`;

async function oneSize(ctx: BenchContext, n: number): Promise<Figure[]> {
  const repo = await createRepo({ bare: true });
  ctx.defer(() => repo.cleanup());
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`ns-${String(Math.floor(i / 100)).padStart(3, '0')}/app-${i}.yaml`] = manifest(i);
  await repo.commitFiles(files, `${n} manifests`);
  const server = await startGitHttpServer({ projectRoot: dirname(repo.dir) });
  ctx.defer(() => server.close());
  const url = `${server.url}/${basename(repo.dir)}`;
  const scratch = await mkdtemp(join(tmpdir(), 'gantry-bench-git-'));
  ctx.defer(() => rm(scratch, { recursive: true, force: true }));

  const times = { isoFirst: [] as number[], cliFirst: [] as number[], isoNext: [] as number[], cliNext: [] as number[], isoReuse: [] as number[] };
  let version = 1;
  for (let r = 0; r < RUNS; r++) {
    // Fresh caches: the first fetch is a clone of the whole history (one commit per run so far).
    const source = new RemoteGitSource({ repo: url, branch: repo.branch, subPath: '.', dataDir: join(scratch, `iso-${r}`) });
    const cliCache = join(scratch, `cli-${r}.git`);
    await gitAsync(['init', '--quiet', '--bare', cliCache], scratch);

    // Blob sizes by oid, as SourceSync's parse cache knows them after a read.
    const known = new Map<string, number>();
    times.isoFirst.push(
      await timed(async () => {
        const read = await source.read(await source.resolve());
        check(n, read.files.length);
        for (const f of read.files) known.set(f.oid, f.size);
      }),
    );
    times.cliFirst.push(await timed(async () => check(n, await cliFetchRead(cliCache, url, repo.branch))));

    // One more commit upstream, changing one file: what every push to the tracked branch costs.
    const k = r % n;
    await repo.commitFiles({ [`ns-${String(Math.floor(k / 100)).padStart(3, '0')}/app-${k}.yaml`]: manifest(k, ++version) }, `bump app-${k}`);
    times.isoNext.push(await timed(async () => check(n, (await source.read(await source.resolve())).files.length)));
    times.cliNext.push(await timed(async () => check(n, await cliFetchRead(cliCache, url, repo.branch))));
    // What the reconciler really does per commit: the tree walked, only blobs it holds no parse of read.
    await repo.commitFiles({ [`ns-${String(Math.floor(k / 100)).padStart(3, '0')}/app-${k}.yaml`]: manifest(k, ++version) }, `bump app-${k} again`);
    times.isoReuse.push(await timed(async () => check(n, (await source.read(await source.resolve(), { reuse: (_path, oid) => known.get(oid) })).files.length)));
    await source.close();
  }
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])) as Record<keyof typeof times, number>;
  const label = n.toLocaleString('en-US');
  ctx.log(`${label} files: first (clone + read all) isomorphic-git ${ms(m.isoFirst)}, git CLI ${ms(m.cliFirst)}; next commit (fetch 1 change + read all) isomorphic-git ${ms(m.isoNext)}, git CLI ${ms(m.cliNext)}; with the parse cache (1 blob read) ${ms(m.isoReuse)} (n=${RUNS})`);
  return [
    { name: `git ${label} files, first fetch + read: isomorphic-git p50`, value: m.isoFirst, unit: 'ms' },
    { name: `git ${label} files, first fetch + read: git CLI p50`, value: m.cliFirst, unit: 'ms' },
    { name: `git ${label} files, first: isomorphic-git / CLI (goal <= 2)`, value: m.isoFirst / m.cliFirst, unit: 'x', digits: 2 },
    { name: `git ${label} files, next commit fetch + read: isomorphic-git p50`, value: m.isoNext, unit: 'ms' },
    { name: `git ${label} files, next commit fetch + read: git CLI p50`, value: m.cliNext, unit: 'ms' },
    { name: `git ${label} files, next commit: isomorphic-git / CLI (goal <= 2)`, value: m.isoNext / m.cliNext, unit: 'x', digits: 2 },
    { name: `git ${label} files, next commit, changed blobs only (parse cache) p50`, value: m.isoReuse, unit: 'ms' },
    { name: `git ${label} files, changed blobs only / CLI reading all`, value: m.isoReuse / m.cliNext, unit: 'x', digits: 2 },
  ];
}

const ms = (x: number) => `${x.toFixed(0)} ms`;

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function check(want: number, got: number): void {
  if (got !== want) throw new Error(`read ${got} files, expected ${want}`);
}

/** `git fetch` of the branch into the bare cache, then every blob of its tree read through `git cat-file --batch`; the number of files read. */
async function cliFetchRead(cache: string, url: string, branch: string): Promise<number> {
  await gitAsync(['fetch', '--quiet', '--no-tags', url, `+refs/heads/${branch}:refs/remotes/origin/${branch}`], cache);
  const listing = await gitAsync(['ls-tree', '-r', '-z', `refs/remotes/origin/${branch}`], cache);
  const oids = listing
    .split('\0')
    .filter((line) => line.endsWith('.yaml') && line.includes(' blob '))
    .map((line) => line.split(' ')[2]!.split('\t')[0]!);
  const bytes = await catFileBatch(cache, oids);
  if (bytes === 0) throw new Error('git cat-file --batch gave nothing');
  return oids.length;
}

/** Feeds the oids to `git cat-file --batch` and reads its whole output; resolves with its size. */
function catFileBatch(cache: string, oids: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch'], { cwd: cache, env: GIT_ENV, stdio: ['pipe', 'pipe', 'pipe'] });
    let size = 0;
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (size += chunk.length));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(size) : reject(new Error(`git cat-file --batch exited ${code}: ${stderr}`))));
    child.stdin.end(oids.join('\n') + '\n');
  });
}
