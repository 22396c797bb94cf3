/**
 * `npm run bench [-- <substring>...]`: runs the benchmarks (or those whose name contains one of the
 * substrings) one after another and prints a table of their figures. Not part of the tests.
 */
import { cpus, totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { commitToServing } from './commit-to-serving.ts';
import { Deferred, type Benchmark, type Figure } from './harness.ts';
import { parseValidate } from './parse-validate.ts';
import { planner } from './planner.ts';
import { scheduler } from './scheduler.ts';
import { rollout20 } from './rollout-20.ts';
import { webhookToServing } from './webhook-to-serving.ts';
import { benchDockerStart } from './docker-start.ts';
import { serviceProxy } from './service-proxy.ts';

// parse-validate first: its peak-RSS figure needs a process whose high-water mark is still low.
const dockerStart: Benchmark = {
  name: 'docker-start',
  description: 'container create+start to Running through the Docker driver, beside `docker run -d` of the same image',
  run: async () => (await benchDockerStart()).map((f) => ({ name: f.name, value: Number(f.value), unit: f.unit, digits: f.unit === 'x' ? 2 : 0 })),
};

const ALL: Benchmark[] = [parseValidate, planner, scheduler, commitToServing, rollout20, webhookToServing, dockerStart, serviceProxy];
ALL.push((await import('./cold-pipeline.ts')).coldPipeline); // issue 14: this code beside the code before it
ALL.push((await import('./incremental-sync.ts')).incrementalSync); // issue 14: one-file commits over 10,000 deployments
// Before swarm-scale and git-fetch: the 100 hollow agents run in this process, whose heap those
// two grow, and dockerd is still removing swarm-scale's containers when it ends.
ALL.push((await import('./scale-10k.ts')).scale10k); // issue 14: one commit of 10,000 Deployments on 100 hollow nodes
ALL.push((await import('./idle-reconciler.ts')).idleReconciler); // issue 14: the reconciler at rest holding 10,000 Deployments
ALL.push((await import('./swarm-scale.ts')).swarmScale); // issue 14: Gantry beside Docker Swarm on the same engine
ALL.push((await import('./git-fetch.ts')).gitFetch); // issue 14: isomorphic-git beside the git CLI over smart HTTP

// Lets benchmarks force a GC before memory and timing measurements (`node --expose-gc`, from inside).
setFlagsFromString('--expose-gc');
(globalThis as { gc?: () => void }).gc ??= runInNewContext('gc') as () => void;

const filters = process.argv.slice(2).filter((a) => a !== '--');
const selected = ALL.filter((b) => filters.length === 0 || filters.some((f) => b.name.includes(f)));
if (selected.length === 0) {
  console.error(`no benchmark matches ${filters.map((f) => JSON.stringify(f)).join(', ')}; names: ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(2);
}

const cpu = cpus();
console.log(`machine: ${cpu.length} cpus (${cpu[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, node ${process.version}, ${process.platform}/${process.arch}`);

// Cleanup of the running benchmark, also on Ctrl-C / SIGTERM.
let current: Deferred | undefined;
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // Ctrl-C reaches this process twice (from the terminal, and relayed by tsx): only the first
    // counts. Cleanup has its own time limits, so it always ends.
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: cleaning up`);
    // The same cleanup run the benchmark's finally waits for; exit only once it is done.
    void (current?.runAll((err) => console.error(`cleanup: ${String(err)}`)) ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const results: { bench: string; figures: Figure[]; error?: string; seconds: number }[] = [];
for (const b of selected) {
  if (interrupted) break;
  console.log(`\n== ${b.name}: ${b.description}`);
  const deferred = new Deferred();
  current = deferred;
  const t0 = performance.now();
  try {
    const figures = await b.run({ log: (line) => console.log(`   ${line}`), defer: (fn) => deferred.add(fn) });
    results.push({ bench: b.name, figures, seconds: (performance.now() - t0) / 1000 });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`   FAILED: ${message}`);
    results.push({ bench: b.name, figures: [], error: message.split('\n')[0], seconds: (performance.now() - t0) / 1000 });
  } finally {
    await deferred.runAll((err) => console.error(`   cleanup failed: ${err instanceof Error ? err.message : String(err)}`));
    current = undefined;
  }
  console.log(`   (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

function format(f: Figure): string {
  const digits = f.digits ?? (Math.abs(f.value) >= 100 ? 0 : 1);
  return f.value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const rows: [string, string, string][] = [];
for (const r of results) {
  if (r.error) rows.push([`${r.bench}: FAILED`, '-', r.error.slice(0, 60)]);
  for (const f of r.figures) rows.push([f.name, format(f), f.unit]);
}
const w0 = Math.max(4, ...rows.map((r) => r[0].length));
const w1 = Math.max(6, ...rows.map((r) => r[1].length));
console.log(`\n${'name'.padEnd(w0)}  ${'figure'.padStart(w1)}  unit`);
console.log(`${'-'.repeat(w0)}  ${'-'.repeat(w1)}  ${'-'.repeat(12)}`);
for (const [n, v, u] of rows) console.log(`${n.padEnd(w0)}  ${v.padStart(w1)}  ${u}`);
console.log(`(total ${results.reduce((s, r) => s + r.seconds, 0).toFixed(0)} s)`);
if (interrupted) await new Promise((r) => setTimeout(r, 60_000)); // the signal handler exits once cleanup is done
process.exit(interrupted ? 130 : results.some((r) => r.error) ? 1 : 0);
