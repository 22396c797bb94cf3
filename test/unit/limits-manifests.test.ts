import assert from 'node:assert/strict';
import { test } from 'node:test';
import deploymentSchema from '../../schemas/deployment.schema.json' with { type: 'json' };
import { loadManifests } from '../../reconciler/manifests/index.ts';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_REPLICAS, HARD_MAX_REPLICAS } from '../../reconciler/manifests/limits.ts';

/**
 * Limits on what a manifest may ask for (issue 11, section 4): each bad value is an error naming
 * file:line:col, object and field, never a value that overflows a timer or stalls the reconciler.
 */

const deployment = (spec: string, container = '', top = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
${spec}
  template:
    metadata:
      labels: { app: web }
    spec:
${top}      containers:
        - name: main
          command: ["sleep", "1000"]
${container}`;

const texts = (text: string, opts = {}) => loadManifests([{ path: 'web.yaml', content: text }], opts).errors.map((e) => e.toString());

test('replicas: the schema holds the hard maximum, the reconciler its configurable cap, each with a clear error', () => {
  assert.equal(deploymentSchema.$defs.deploymentSpec.properties.replicas.maximum, HARD_MAX_REPLICAS);
  assert.equal(DEFAULT_MAX_REPLICAS, 10_000);
  assert.deepEqual(texts(deployment('  replicas: 1000000000')), ['web.yaml:6:13 Deployment default/web /spec/replicas: must be <= 1000000']);
  assert.deepEqual(texts(deployment('  replicas: 10001')), [
    "web.yaml:6:13 Deployment default/web /spec/replicas: must be at most 10000, the reconciler's limit on replicas (--max-replicas)",
  ]);
  assert.deepEqual(texts(deployment('  replicas: 10000')), []);
  assert.deepEqual(texts(deployment('  replicas: 10001'), { maxReplicas: 50_000 }), []);
  assert.deepEqual(texts(deployment('  replicas: 6'), { maxReplicas: 5 }), [
    "web.yaml:6:13 Deployment default/web /spec/replicas: must be at most 5, the reconciler's limit on replicas (--max-replicas)",
  ]);
});

test('probe timings are at most 3600 s, so no probe timer can overflow', () => {
  const probe = (fields: string) => deployment('  replicas: 1', `          readinessProbe:\n            tcpSocket: { port: 80 }\n${fields}`);
  assert.deepEqual(texts(probe('            periodSeconds: 3000000\n')), ['web.yaml:16:28 Deployment default/web /spec/template/spec/containers/0/readinessProbe/periodSeconds: must be <= 3600']);
  assert.deepEqual(texts(probe('            timeoutSeconds: 3601\n')), ['web.yaml:16:29 Deployment default/web /spec/template/spec/containers/0/readinessProbe/timeoutSeconds: must be <= 3600']);
  assert.deepEqual(texts(probe('            initialDelaySeconds: 99999999999\n')), [
    'web.yaml:16:34 Deployment default/web /spec/template/spec/containers/0/readinessProbe/initialDelaySeconds: must be <= 3600',
  ]);
  assert.deepEqual(texts(probe('            periodSeconds: 3600\n            timeoutSeconds: 3600\n            initialDelaySeconds: 3600\n')), []);
});

test('other durations fed to timers: grace period, minReadySeconds, progress deadline, canary pauses', () => {
  assert.deepEqual(texts(deployment('  minReadySeconds: 3601\n  progressDeadlineSeconds: 86401', '', '      terminationGracePeriodSeconds: 100000\n')), [
    'web.yaml:6:20 Deployment default/web /spec/minReadySeconds: must be <= 3600',
    'web.yaml:7:28 Deployment default/web /spec/progressDeadlineSeconds: must be <= 86400',
    'web.yaml:12:38 Deployment default/web /spec/template/spec/terminationGracePeriodSeconds: must be <= 3600',
  ]);
  const canary = (duration: string) => deployment(`  strategy:\n    type: Canary\n    steps:\n      - setWeight: 10\n      - pause: { duration: ${duration} }`);
  assert.deepEqual(texts(canary('168h')), []);
  assert.deepEqual(texts(canary('169h')), [
    'web.yaml:10:28 Deployment default/web /spec/strategy/steps/1/pause/duration: must be at most 168h (a week); a pause without a duration waits for `gantry rollout promote`',
  ]);
  assert.equal(texts(canary('99999999999999999999999s')).length, 1);
});

test('ports are 1-65535; cpu at most 1024 cores and memory at most 1Pi, however written', () => {
  const container = (extra: string) => deployment('  replicas: 1', extra);
  assert.deepEqual(texts(container('          ports: [{ containerPort: 0 }, { containerPort: 65536 }]\n')), [
    'web.yaml:14:36 Deployment default/web /spec/template/spec/containers/0/ports/0/containerPort: must be >= 1',
    'web.yaml:14:58 Deployment default/web /spec/template/spec/containers/0/ports/1/containerPort: must be <= 65535',
  ]);
  const resources = (cpu: string, memory: string) => texts(container(`          resources: { cpu: ${cpu}, memory: ${memory} }\n`));
  assert.deepEqual(resources('1024', '"1024Ti"'), []);
  assert.deepEqual(resources('"1025"', '"1025Ti"'), [
    'web.yaml:14:29 Deployment default/web /spec/template/spec/containers/0/resources/cpu: must be at most 1024 cores',
    'web.yaml:14:45 Deployment default/web /spec/template/spec/containers/0/resources/memory: must be at most 1Pi',
  ]);
  assert.deepEqual(resources('"1024001m"', '1'), ['web.yaml:14:29 Deployment default/web /spec/template/spec/containers/0/resources/cpu: must be at most 1024 cores']);
  assert.deepEqual(resources('1', '1125899906842625'), ['web.yaml:14:40 Deployment default/web /spec/template/spec/containers/0/resources/memory: must be <= 1125899906842624']);
  assert.deepEqual(resources('2000', '1'), ['web.yaml:14:29 Deployment default/web /spec/template/spec/containers/0/resources/cpu: must be <= 1024']);
});

test('strings and lists that were unbounded have a maximum length', () => {
  const long = (n: number) => 'x'.repeat(n);
  const errors = texts(
    deployment(
      '  replicas: 1',
      `          image: ${long(1025)}\n          env: [{ name: A, value: ${long(32769)} }]\n          workingDir: /${long(4096)}\n          args: [${long(32769)}]\n`,
    ).replace('  name: web\n', `  name: web\n  annotations: { a: ${long(32769)}, ${long(318)}: b }\n`),
  );
  assert.deepEqual(
    errors.map((e) => e.replace(/^web\.yaml:\d+:\d+ Deployment default\/web /, '')),
    [
      '/metadata/annotations/a: must NOT have more than 32768 characters',
      `/metadata/annotations: key "${long(318)}" must NOT have more than 317 characters`,
      '/spec/template/spec/containers/0/image: must NOT have more than 1024 characters',
      '/spec/template/spec/containers/0/env/0/value: must NOT have more than 32768 characters',
      '/spec/template/spec/containers/0/workingDir: must NOT have more than 4096 characters',
      '/spec/template/spec/containers/0/args/0: must NOT have more than 32768 characters',
    ],
  );
  const containers = Array.from({ length: 65 }, (_, i) => `        - { name: c${i}, command: [x] }`).join('\n');
  const many = `apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    metadata: { labels: { app: web } }\n    spec:\n      containers:\n${containers}\n`;
  assert.deepEqual(texts(many), ['web.yaml:9:9 Deployment default/web /spec/template/spec/containers: must NOT have more than 64 items']);
});

test('deep nesting is one clear error, never a stack overflow: 10,000 levels of [ ], { } or indentation', () => {
  const deep = [
    ['flow sequences', 'a.yaml', `${'['.repeat(10_000)}${']'.repeat(10_000)}`],
    ['flow maps', 'b.yaml', `${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)}`],
    ['JSON', 'c.json', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`],
    ['block sequences on one line', 'd.yaml', `${'- '.repeat(10_000)}x\n`],
    ['indented maps', 'e.yaml', `${Array.from({ length: 1000 }, (_, i) => `${' '.repeat(i)}a:`).join('\n')} 1\n`],
    // Half a million levels in a 1 MiB file.
    ['the deepest a file may be', 'f.yaml', `${'['.repeat(500_000)}${']'.repeat(500_000)}`],
  ] as const;
  for (const [what, path, content] of deep) {
    const { errors, objects } = loadManifests([{ path, content }]);
    assert.equal(objects.length, 0, what);
    assert.equal(errors.length, 1, `${what}: ${errors.slice(0, 3).join(' | ')}`);
    assert.equal(errors[0]!.code, 'NESTING_TOO_DEEP', what);
    assert.match(errors[0]!.toString(), new RegExp(`^${path.replace('.', '\\.')}:\\d+:\\d+: collections nest deeper than the limit of ${DEFAULT_MAX_DEPTH} levels`), what);
  }
});

test('nesting up to the limit is left to the schema; one level more is rejected, also through aliases', () => {
  const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
  const annotate = (value: string) => deployment('  replicas: 1').replace('  name: web\n', `  name: web\n  labels: ${value}\n`);
  // The document itself is 1 level and `metadata` another, so 62 more fit in 64.
  const [within] = texts(annotate(nested(62)));
  assert.match(within!, /\/metadata\/labels: must be object$/);
  const [beyond, ...rest] = loadManifests([{ path: 'web.yaml', content: annotate(nested(63)) }]).errors;
  assert.deepEqual(rest, []);
  assert.equal(beyond!.code, 'NESTING_TOO_DEEP');
  // 40 levels under an anchor, used 40 levels down: each half fits, together they do not.
  const viaAlias = `a: &deep ${nested(40)}\nb: ${'['.repeat(40)}*deep${']'.repeat(40)}\n`;
  const [alias] = loadManifests([{ path: 'x.yaml', content: viaAlias }]).errors;
  assert.equal(alias!.code, 'NESTING_TOO_DEEP');
  assert.match(alias!.message, /through an alias/);
  assert.deepEqual(loadManifests([{ path: 'x.yaml', content: 'a: &x [1]\nb: *x\n' }]).errors.map((e) => e.code), ['UNKNOWN_API_VERSION', 'UNKNOWN_KIND']);
});
