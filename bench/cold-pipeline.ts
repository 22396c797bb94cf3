/**
 * cold-pipeline: a commit of 10,000 Deployments read from nothing, through the pure core:
 * loadManifests (parse, validate, checks, defaults), buildDesiredState and computePlan of every
 * deployment against no instances. Run by this code and by the code as it was before issue 14
 * (commit c14b17f, taken from this repository's history with `git archive`), alternately in the
 * same process on the same input, so the speed-up is a ratio of one run. Without that history
 * (a shallow clone) it says so and measures this code alone.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { manifestFiles } from './fixtures.ts';
import { collectGarbage, tempDir, type Benchmark, type Figure } from './harness.ts';
import { median } from './stats.ts';

const DEPLOYMENTS = 10_000;
const FILES = 100;
const RUNS = 3;
/** The last commit before issue 14's work: "today's code" of its table. */
const BEFORE_ISSUE_14 = 'c14b17f42033e0085a0f1400cf18cabc758dfaa2';

const root = new URL('..', import.meta.url).pathname;

type ManifestFile = { path: string; content: Uint8Array };
/** The three pure steps, as both versions of the code export them. */
interface Core {
  loadManifests(files: ManifestFile[]): { objects: { manifest: unknown; file: string; line: number }[]; errors: unknown[] };
  buildDesiredState(objects: unknown[], commit: string, current: unknown[]): { deployments: unknown[] };
  computePlan(desired: unknown, actual: unknown[]): unknown[];
}

async function coreAt(dir: string): Promise<Core> {
  const manifests = (await import(join(dir, 'reconciler/manifests/index.ts'))) as Pick<Core, 'loadManifests'>;
  const desired = (await import(join(dir, 'reconciler/desired/desired-state.ts'))) as Pick<Core, 'buildDesiredState'>;
  const plan = (await import(join(dir, 'reconciler/plan/compute-plan.ts'))) as Pick<Core, 'computePlan'>;
  return { loadManifests: manifests.loadManifests, buildDesiredState: desired.buildDesiredState, computePlan: plan.computePlan };
}

/** One cold pass; returns its time and checks that it read what it was given. */
function pass(core: Core, files: ManifestFile[]): number {
  const t0 = performance.now();
  const loaded = core.loadManifests(files);
  const { deployments } = core.buildDesiredState(loaded.objects, 'c1', []);
  let actions = 0;
  for (const d of deployments) actions += core.computePlan(d, []).length;
  const ms = performance.now() - t0;
  if (loaded.errors.length > 0) throw new Error(`generated manifests are invalid: ${String(loaded.errors[0])}`);
  if (deployments.length !== DEPLOYMENTS || actions < DEPLOYMENTS) throw new Error(`expected ${DEPLOYMENTS} deployments planned, got ${deployments.length} (${actions} actions)`);
  return ms;
}

/** The code before issue 14 in a directory of its own (its imports resolve to this checkout's node_modules). */
function baselineCode(dir: string): string | undefined {
  if (spawnSync('git', ['-C', root, 'cat-file', '-e', `${BEFORE_ISSUE_14}^{commit}`]).status !== 0) return undefined;
  const tar = execFileSync('git', ['-C', root, 'archive', '--format=tar', BEFORE_ISSUE_14], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

export const coldPipeline: Benchmark = {
  name: 'cold-pipeline',
  description: `parse+validate+plan of ${DEPLOYMENTS.toLocaleString('en')} Deployments from nothing: this code beside the code before issue 14`,
  async run(ctx) {
    const files = manifestFiles(DEPLOYMENTS, FILES);
    const current = await coreAt(root);
    const dir = baselineCode(tempDir(ctx, 'before-14'));
    if (!dir) ctx.log(`commit ${BEFORE_ISSUE_14.slice(0, 7)} is not in this clone's history (shallow?): the code before issue 14 is not measured`);
    const before = dir ? await coreAt(dir) : undefined;

    // Warm-up of both on a slice: schemas compiled, the JIT settled.
    current.loadManifests(files.slice(0, 5));
    before?.loadManifests(files.slice(0, 5));
    const now: number[] = [];
    const then: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      collectGarbage();
      now.push(pass(current, files));
      if (!before) continue;
      collectGarbage();
      then.push(pass(before, files));
    }
    ctx.log(`this code (ms): ${now.map((t) => t.toFixed(0)).join(', ')}`);
    const figures: Figure[] = [{ name: 'cold parse+validate+plan 10k: this code', value: median(now), unit: 'ms' }];
    if (before) {
      ctx.log(`code before issue 14 (ms): ${then.map((t) => t.toFixed(0)).join(', ')}`);
      const speedup = median(then) / median(now);
      ctx.log(`speed-up ${speedup.toFixed(2)}× (goal >= 3×)`);
      figures.push({ name: 'cold parse+validate+plan 10k: code before issue 14', value: median(then), unit: 'ms' }, { name: 'cold parse+validate+plan speed-up', value: speedup, unit: 'x', digits: 2 });
    }
    return figures;
  },
};
