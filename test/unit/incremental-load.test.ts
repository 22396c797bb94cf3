import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { loadManifests, type LoadResult, type ManifestFile } from '../../reconciler/manifests/index.ts';
import { ManifestCache } from '../../reconciler/manifests/manifest-cache.ts';
import { DesiredBuilder, type DesiredEntry } from '../../reconciler/desired/desired-index.ts';
import { buildDesiredState, diffDesired } from '../../reconciler/desired/desired-state.ts';
import { rng } from '../../bench/fixtures.ts';

/**
 * The incremental loader (manifest-cache.ts, cross-file-index.ts) and builder (desired-index.ts)
 * against the full ones, over random series of commits: after every commit a load through the
 * cache must give exactly what a load of every file gives (objects, errors, warnings, as text), and
 * the builder the records buildDesiredState makes (but for the commit that unchanged ones keep).
 */

const oid = (content: string) => createHash('sha1').update(content).digest('hex');
const files = (repo: Map<string, string>): ManifestFile[] => [...repo].map(([path, content]) => ({ path, content, oid: oid(content) }));
const text = (r: LoadResult) => ({ objects: r.objects.map((o) => JSON.stringify(o)), errors: r.errors.map(String), warnings: r.warnings.map(String) });

const deployment = (name: string, ns: string, opts: { replicas?: number; labels?: string; selector?: string; env?: string; pull?: string } = {}) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${ns} }
spec:
  replicas: ${opts.replicas ?? 1}${opts.selector ? `\n  selector: ${opts.selector}` : ''}
  template:
    metadata: { labels: ${opts.labels ?? `{ app: ${name} }`} }
    spec:${opts.pull ? `\n      imagePullSecrets: [{ name: ${opts.pull} }]` : ''}
      containers:
        - name: main
          command: [sleep, "1000"]${opts.env ? `\n          env: [{ name: X, valueFrom: { configMapKeyRef: { name: ${opts.env}, key: k } } }]` : ''}
`;
const configMap = (name: string, ns: string, key = 'k') => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name}, namespace: ${ns} }\ndata: { ${key}: v }\n`;
const service = (name: string, ns: string, nodePort?: number) => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n  type: ${nodePort ? 'NodePort' : 'ClusterIP'}\n  selector: { app: ${name} }\n  ports: [{ port: 80${nodePort ? `, nodePort: ${nodePort}` : ''} }]\n`;
const namespace = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${name} }\n`;

/** One random change to the repository: mostly harmless edits, sometimes a conflict or an error. */
function change(repo: Map<string, string>, random: () => number, step: number): void {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const apps = [...repo.keys()].filter((p) => p.startsWith('apps/'));
  if (apps.length === 0) apps.push('apps/app-0.yaml');
  const n = Math.floor(random() * 8);
  const ns = pick(['a', 'b', 'missing']);
  const name = `d${Math.floor(random() * 12)}`;
  switch (Math.floor(random() * 16)) {
    case 0:
    case 1:
    case 2:
      repo.set(pick(apps), deployment(name, pick(['a', 'b']), { replicas: 1 + n }));
      break;
    case 3:
      repo.set(`apps/new-${step}.yaml`, deployment(name, ns));
      break;
    case 4:
      if (apps.length > 1) repo.delete(pick(apps));
      break;
    case 5:
      repo.set(pick(apps), `${deployment(`x${step}`, 'a')}---\n${deployment(`y${step}`, 'b', { replicas: n })}`);
      break;
    case 6:
      repo.set(`apps/sel-${step}.yaml`, deployment(`s${step}`, pick(['a', 'b']), { labels: `{ app: ${name}, extra: x }`, selector: pick([`{ matchLabels: { app: ${name} } }`, `{ matchExpressions: [{ key: app, operator: Exists }] }`]) }));
      break;
    case 7:
      repo.set('config/cm.yaml', configMap('cm', 'a', pick(['k', 'other'])));
      break;
    case 8:
      repo.delete('config/cm.yaml');
      break;
    case 9:
      repo.set(`apps/env-${step}.yaml`, deployment(`e${step}`, 'a', random() < 0.5 ? { env: 'cm' } : { pull: 'regcred' }));
      break;
    case 10:
      repo.set(`svc/s${n}.yaml`, service(`svc${n}`, 'a', random() < 0.5 ? 30000 + (n % 2) : undefined));
      break;
    case 11:
      repo.set(pick(apps), 'kind: Deployment\nmetadata: { name: [broken\n');
      break;
    case 12:
      repo.set('namespaces.yaml', random() < 0.5 ? `${namespace('a')}---\n${namespace('b')}` : namespace('a'));
      break;
    case 13:
      repo.set(pick(apps), deployment(name, 'a', { replicas: random() < 0.3 ? 50_000 : n }));
      break;
    case 14:
      if (random() < 0.5) repo.set('.gantryignore', `apps/${name.slice(0, 2)}*\n`);
      else repo.delete('.gantryignore');
      break;
    default: {
      // A rename: the same content at another path.
      const from = pick(apps);
      const content = repo.get(from);
      if (content === undefined) break;
      repo.delete(from);
      repo.set(`apps/renamed-${step}.yaml`, content);
    }
  }
}

test('a load through the cache gives what a load of every file gives, commit after commit', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const random = rng(seed);
    const repo = new Map<string, string>([['namespaces.yaml', `${namespace('a')}---\n${namespace('b')}`]]);
    for (let i = 0; i < 10; i++) repo.set(`apps/app-${i}.yaml`, deployment(`d${i}`, i % 2 ? 'a' : 'b'));
    const cache = new ManifestCache();
    let incrementalRuns = 0;
    let bad: string[] = [];
    for (let step = 0; step < 80; step++) {
      // After a rejected commit, usually the next one removes what was wrong (as people do).
      if (bad.length > 0 && random() < 0.7) for (const path of bad) path === 'namespaces.yaml' ? repo.set(path, `${namespace('a')}---\n${namespace('b')}`) : repo.delete(path);
      else if (step > 0) change(repo, random, step);
      const cached = loadManifests(files(repo), { cache, maxReplicas: 1000 });
      const full = loadManifests(files(repo), { maxReplicas: 1000 });
      assert.deepEqual(text(cached), text(full), `seed ${seed}, step ${step}`);
      if (cache.last.incremental) incrementalRuns++;
      bad = [...new Set(full.errors.map((e) => e.file))];
    }
    assert.ok(incrementalRuns > 20, `seed ${seed}: the incremental checks ran ${incrementalRuns} times`);
  }
});

test('the builder gives buildDesiredState\'s records, keeping the records (and commits) of unchanged objects', () => {
  const random = rng(9);
  const repo = new Map<string, string>([['namespaces.yaml', `${namespace('a')}---\n${namespace('b')}`], ['config/cm.yaml', configMap('cm', 'a')]]);
  for (let i = 0; i < 10; i++) repo.set(`apps/app-${i}.yaml`, deployment(`d${i}`, i % 2 ? 'a' : 'b', i === 3 ? { env: 'cm' } : {}));
  const cache = new ManifestCache();
  const builder = new DesiredBuilder();
  let prev = new Map<string, DesiredEntry>();
  let deltas = 0;
  const strip = (r: object) => ({ ...r, commit: undefined, commitMessage: undefined });
  for (let step = 0; step < 80; step++) {
    if (step > 0) change(repo, random, step);
    const loaded = loadManifests(files(repo), { cache, maxReplicas: 1000 });
    if (loaded.errors.length > 0) {
      for (const path of new Set(loaded.errors.map((e) => e.file))) if (path !== 'namespaces.yaml') repo.delete(path);
      continue;
    }
    const commit = `c${step}`;
    const build = builder.build(loaded.objects, commit, `commit ${step}`, prev, loaded.changes);
    if (loaded.changes?.since !== undefined) deltas++;
    const before = [...prev.values()].flatMap((e) => (e.kind === 'deployment' ? [e.record] : []));
    const expected = buildDesiredState(loaded.objects, commit, before);
    assert.deepEqual(build.desired.deployments.map(strip), expected.deployments.map(strip), `step ${step}`);
    assert.deepEqual(build.desired.namespaces.map(strip), expected.namespaces.map(strip));
    assert.deepEqual(build.desired.services!.map(strip), expected.services!.map(strip));
    assert.deepEqual(build.desired.configs!.map(strip), expected.configs!.map(strip));
    assert.deepEqual(build.diff, diffDesired(before, build.desired), `step ${step}: the diff from the changed records alone`);
    // Exactly the records that differ from the last commit's (but for their commit) are new.
    const upserted = new Set(build.upsert.map((u) => u.entry.id));
    for (const [id, e] of build.entries) {
      const p = prev.get(id);
      const same = p !== undefined && JSON.stringify(strip(p.record)) === JSON.stringify(strip(e.record));
      assert.equal(upserted.has(id), !same, `step ${step}: ${id}`);
      if (same) assert.equal(e, p, `step ${step}: ${id} keeps its entry`);
      else assert.equal(e.record.commit, commit);
    }
    assert.deepEqual(build.remove.map((e) => e.id).sort(), [...prev.keys()].filter((id) => !build.entries.has(id)).sort());
    prev = build.entries;
  }
  assert.ok(deltas > 20, `the builder worked from the changes ${deltas} times`);
});
