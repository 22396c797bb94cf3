/**
 * parse-validate: loadManifests (YAML parse, positions, JSON Schema validation, checks, defaults)
 * over 10,000 generated Deployment documents in 100 multi-document files, as a commit of a large
 * repository reaches SourceSync.
 */
import { loadManifests } from '../reconciler/manifests/index.ts';
import { manifestFiles, NAMESPACES } from './fixtures.ts';
import { collectGarbage, type Benchmark } from './harness.ts';
import { median } from './stats.ts';

const DEPLOYMENTS = 10_000;
const FILES = 100;
const RUNS = 2;

const mb = (bytes: number) => bytes / (1024 * 1024);

export const parseValidate: Benchmark = {
  name: 'parse-validate',
  description: `loadManifests over ${DEPLOYMENTS.toLocaleString('en')} Deployment documents in ${FILES} files`,
  async run(ctx) {
    const files = manifestFiles(DEPLOYMENTS, FILES);
    const bytes = files.reduce((s, f) => s + f.content.byteLength, 0);
    ctx.log(`input: ${files.length} files, ${DEPLOYMENTS} deployments + ${NAMESPACES.length} namespaces, ${mb(bytes).toFixed(1)} MB`);

    // Warm-up: compiles the schemas (module load) and lets the JIT settle on a slice of the input.
    loadManifests(files.slice(0, 5));

    // Peak memory of one call: the process's maxRSS high-water mark after it, minus RSS before it.
    // This is the first run after a GC, so the high-water mark it leaves is its own (run.ts runs this
    // benchmark first, before anything else raised the mark).
    collectGarbage();
    const rssBefore = process.memoryUsage.rss();
    const maxRssBefore = process.resourceUsage().maxRSS * 1024;
    const t0 = performance.now();
    const first = loadManifests(files);
    const firstMs = performance.now() - t0;
    const maxRssAfter = process.resourceUsage().maxRSS * 1024;
    if (first.errors.length > 0) throw new Error(`generated manifests are invalid: ${first.errors.slice(0, 3).join('; ')}`);
    const deployments = first.objects.filter((o) => o.manifest.kind === 'Deployment').length;
    if (deployments !== DEPLOYMENTS) throw new Error(`expected ${DEPLOYMENTS} deployments, loaded ${deployments}`);
    const peakDelta = maxRssAfter - rssBefore;
    const peakTrusted = maxRssAfter > maxRssBefore;

    const times = [firstMs];
    for (let i = 1; i < RUNS; i++) {
      collectGarbage();
      const t = performance.now();
      loadManifests(files);
      times.push(performance.now() - t);
    }
    const ms = median(times);
    ctx.log(`runs (ms): ${times.map((t) => t.toFixed(0)).join(', ')}; median ${ms.toFixed(0)} ms`);
    ctx.log(`peak RSS delta of one call: ${mb(peakDelta).toFixed(0)} MB (RSS ${mb(rssBefore).toFixed(0)} -> peak ${mb(maxRssAfter).toFixed(0)} MB)${peakTrusted ? '' : ' (lower bound: an earlier peak was higher)'}`);
    return [
      { name: 'parse+validate throughput', value: DEPLOYMENTS / (ms / 1000), unit: 'manifests/s' },
      { name: 'parse+validate throughput', value: mb(bytes) / (ms / 1000), unit: 'MB/s', digits: 2 },
      { name: 'parse+validate 10k deployments', value: ms, unit: 'ms' },
      { name: 'parse+validate peak RSS delta', value: mb(peakDelta), unit: 'MB' },
    ];
  },
};
