import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState } from '../../reconciler/desired/desired-state.ts';
import { loadManifests, templateHash, type DeploymentObject } from '../../reconciler/manifests/index.ts';
import { cpuShares, dockerResources } from '../../agents/docker-spec.ts';
import { cfsQuotaUs, parseProcCgroup, v1Files, v2Files } from '../../agents/cgroup-limits.ts';
import { instanceStatus, type ContainerRun } from '../../agents/instance-status.ts';
import { runtimeLimits, type ContainerSpec } from '../../state/records/instance.ts';

/**
 * Kubernetes' resources.requests and resources.limits next to Gantry's first flat form: what each
 * manifest is allowed to say (errors at file:line), what its records hold, and what each runtime
 * makes of a record. Pure.
 */

const Mi = 1024 ** 2;

/** A deployment whose only container has `resources` written as these YAML lines (indented under it). */
const manifest = (resources: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: main
          command: ["sleep", "1000"]
${resources ? `          resources:\n${resources.replace(/^/gm, '            ')}\n` : ''}`;

function load(resources: string) {
  return loadManifests([{ path: 'web.yaml', content: manifest(resources) }]);
}

const errors = (resources: string) => load(resources).errors.map(String);

function record(resources: string) {
  const loaded = load(resources);
  assert.deepEqual(loaded.errors.map(String), []);
  const d = buildDesiredState(loaded.objects, 'c1', []).deployments[0]!;
  const c = d.template.containers[0]!;
  return { container: { cpuMilli: c.cpuMilli, memoryBytes: c.memoryBytes, ...('limits' in c ? { limits: c.limits } : {}) }, template: { cpuMilli: d.template.cpuMilli, memoryBytes: d.template.memoryBytes }, hash: d.templateHash };
}

test('records: requests are what the scheduler reserves, limits apart; a limit without a request is the request', () => {
  const cases: [string, string, { cpuMilli: number; memoryBytes: number; limits?: object }][] = [
    ['no resources', '', { cpuMilli: 0, memoryBytes: 0 }],
    // The legacy form: a record as older versions wrote it (no limits: runtimeLimits gives it its meaning).
    ['legacy flat', 'cpu: 250m\nmemory: 64Mi', { cpuMilli: 250, memoryBytes: 64 * Mi }],
    ['requests only', 'requests: { cpu: 100m, memory: 32Mi }', { cpuMilli: 100, memoryBytes: 32 * Mi, limits: {} }],
    ['limits only', 'limits: { cpu: "1", memory: 128Mi }', { cpuMilli: 1000, memoryBytes: 128 * Mi, limits: { cpuMilli: 1000, memoryBytes: 128 * Mi } }],
    ['both', 'requests: { cpu: 100m, memory: 64Mi }\nlimits: { cpu: "1", memory: 128Mi }', { cpuMilli: 100, memoryBytes: 64 * Mi, limits: { cpuMilli: 1000, memoryBytes: 128 * Mi } }],
    ['one of each', 'requests: { memory: 64Mi }\nlimits: { cpu: 500m }', { cpuMilli: 500, memoryBytes: 64 * Mi, limits: { cpuMilli: 500 } }],
    ['equal', 'requests: { cpu: 0.5 }\nlimits: { cpu: 500m }', { cpuMilli: 500, memoryBytes: 0, limits: { cpuMilli: 500 } }],
  ];
  for (const [name, resources, expected] of cases) {
    const r = record(resources);
    assert.deepEqual(r.container, expected, name);
    assert.deepEqual(r.template, { cpuMilli: expected.cpuMilli, memoryBytes: expected.memoryBytes }, `${name}: template sums are requests`);
  }
});

test('template hash: a manifest that did not change keeps the hash older versions gave it (no instance rolled by an upgrade)', () => {
  // Computed by the code before requests and limits existed.
  assert.equal(record('cpu: 250m\nmemory: 64Mi').hash, '198ac0ea3b');
  assert.equal(record('').hash, 'e130f2bb71');
  const hashes = new Set(['requests: { cpu: 100m }', 'limits: { cpu: 100m }', 'requests: { cpu: 100m }\nlimits: { cpu: 200m }', 'cpu: 100m'].map((r) => record(r).hash));
  assert.equal(hashes.size, 4, 'each form is its own template');
  const loaded = load('limits: { memory: 1Gi }').objects[0]!.manifest as DeploymentObject;
  assert.deepEqual(loaded.spec.template.spec.containers[0]!.resources, { limits: { memory: '1Gi' } }, 'normalize leaves resources as written');
  assert.equal(templateHash(loaded), record('limits: { memory: 1Gi }').hash);
});

test('errors name file:line:column and the field: request above limit, mixed forms, quantities', () => {
  const at = (line: number, col: number, pointer: string, message: string) => `web.yaml:${line}:${col} Deployment default/web /spec/template/spec/containers/0/resources/${pointer}: ${message}`;
  const cases: [string, string, string[]][] = [
    ['request above limit (cpu)', 'requests: { cpu: "2" }\nlimits: { cpu: 500m }', [at(14, 30, 'requests/cpu', 'must be at most the limit 500m (limits.cpu); a container cannot be guaranteed more than it may use')]],
    ['request above limit (memory)', 'requests:\n  memory: 256Mi\nlimits:\n  memory: 128Mi', [at(15, 23, 'requests/memory', 'must be at most the limit 128Mi (limits.memory); a container cannot be guaranteed more than it may use')]],
    ['flat and requests', 'cpu: 100m\nrequests: { memory: 64Mi }', [at(14, 13, 'cpu', 'must not be set together with requests or limits: write requests.cpu and/or limits.cpu (the flat cpu means both)')]],
    ['flat and limits', 'memory: 64Mi\nlimits: { memory: 64Mi }', [at(14, 13, 'memory', 'must not be set together with requests or limits: write requests.memory and/or limits.memory (the flat memory means both)')]],
    ['pattern', 'limits: { cpu: "1 core" }', [at(14, 28, 'limits/cpu', 'must be a cpu quantity such as "250m", "1" or "0.5"')]],
    ['maximum as a string', 'requests: { cpu: "1025" }\nlimits: { memory: "1025Ti" }', [at(14, 30, 'requests/cpu', 'must be at most 1024 cores'), at(15, 31, 'limits/memory', 'must be at most 1Pi')]],
    ['maximum as a number', 'limits: { cpu: 2000 }', [at(14, 28, 'limits/cpu', 'must be <= 1024')]],
    ['finer than 1m', 'requests: { cpu: "0.0001" }', [at(14, 30, 'requests/cpu', 'invalid cpu quantity "0.0001": finer than 1m (one thousandth of a core)')]],
    // Other resources (nvidia.com/gpu, ephemeral-storage) are Kubernetes' to define: ignored with a warning (kubernetes-manifests.test.ts).
    ['another resource', 'limits: { nvidia.com/gpu: 1 }', []],
  ];
  for (const [name, resources, expected] of cases) {
    assert.deepEqual(errors(resources), expected, name);
  }
});

const spec = (over: Partial<ContainerSpec>): ContainerSpec => ({ name: 'main', command: ['x'], args: [], env: [], ports: [], cpuMilli: 0, memoryBytes: 0, ...over });

test('what each runtime enforces: written limits, or for a record without them (flat form, older records) what that always meant', () => {
  const cases: [string, Partial<ContainerSpec>, object, object][] = [
    ['legacy record', { cpuMilli: 250, memoryBytes: 64 * Mi }, { cpuMilli: 250, memoryBytes: 64 * Mi }, {}],
    ['legacy, nothing', {}, {}, {}],
    ['requests only', { cpuMilli: 100, memoryBytes: 32 * Mi, limits: {} }, {}, {}],
    ['limits', { cpuMilli: 100, memoryBytes: 32 * Mi, limits: { cpuMilli: 1000, memoryBytes: 128 * Mi } }, { cpuMilli: 1000, memoryBytes: 128 * Mi }, { cpuMilli: 1000, memoryBytes: 128 * Mi }],
  ];
  for (const [name, over, docker, processes] of cases) {
    assert.deepEqual(runtimeLimits(spec(over), 'docker'), docker, `${name}: docker`);
    assert.deepEqual(runtimeLimits(spec(over), 'process'), processes, `${name}: process`);
  }
});

test('Docker: NanoCpus and Memory (= MemorySwap) from the limits only; the cpu request is the CPU share', () => {
  const cases: [string, Partial<ContainerSpec>, object][] = [
    ['legacy record', { cpuMilli: 250, memoryBytes: 64 * Mi }, { NanoCpus: 250_000_000, Memory: 64 * Mi, MemorySwap: 64 * Mi, CpuShares: 256 }],
    ['requests only', { cpuMilli: 100, memoryBytes: 32 * Mi, limits: {} }, { CpuShares: 102 }],
    ['limits only', { cpuMilli: 1000, memoryBytes: 128 * Mi, limits: { cpuMilli: 1000, memoryBytes: 128 * Mi } }, { NanoCpus: 1_000_000_000, Memory: 128 * Mi, MemorySwap: 128 * Mi, CpuShares: 1024 }],
    ['both', { cpuMilli: 100, memoryBytes: 64 * Mi, limits: { cpuMilli: 2000 } }, { NanoCpus: 2_000_000_000, CpuShares: 102 }],
    ['nothing', { limits: {} }, {}],
  ];
  for (const [name, over, expected] of cases) assert.deepEqual(dockerResources(spec(over)), expected, name);
  assert.deepEqual([1, 2, 100, 1000, 1500].map(cpuShares), [2, 2, 102, 1024, 1536]);
});

test('cgroups: the control files and values of each version', () => {
  assert.deepEqual(v1Files({ memoryBytes: 32 * Mi, cpuMilli: 100 }), {
    memory: [['memory.limit_in_bytes', String(32 * Mi)], ['memory.memsw.limit_in_bytes', String(32 * Mi)]],
    cpu: [['cpu.cfs_period_us', '100000'], ['cpu.cfs_quota_us', '10000']],
  });
  assert.deepEqual(v1Files({ cpuMilli: 1500 }), { cpu: [['cpu.cfs_period_us', '100000'], ['cpu.cfs_quota_us', '150000']] });
  assert.deepEqual(v2Files({ memoryBytes: 32 * Mi, cpuMilli: 250 }), [['memory.max', String(32 * Mi)], ['memory.swap.max', '0'], ['cpu.max', '25000 100000']]);
  assert.deepEqual(v2Files({}), []);
  assert.deepEqual([1, 10, 100, 4000].map(cfsQuotaUs), [1000, 1000, 10000, 400000]);
  const own = parseProcCgroup('12:cpu,cpuacct:/user.slice\n4:memory:/process_api/abc\n1:name=systemd:/\n0::/user.slice/session.scope\n');
  assert.equal(own.get('cpu'), '/user.slice');
  assert.equal(own.get('cpuacct'), '/user.slice');
  assert.equal(own.get('memory'), '/process_api/abc');
  assert.equal(own.get(''), '/user.slice/session.scope');
});

test('status: a running process whose limits are not enforced says so; reasons of ended containers are unchanged', () => {
  const run = (over: Partial<ContainerRun>): ContainerRun => ({ spec: spec({ limits: { memoryBytes: 32 * Mi } }), ports: [], restarts: 0, ran: true, backoffStep: 0, ...over });
  const proc = (limitsNotEnforced?: string) => ({ pid: 1, limitsNotEnforced, onExit() {}, unwatch() {}, stop: async () => {} });
  const input = (containers: ContainerRun[]) => ({ id: 'i', uid: 'u', node: 'n', hostIP: '127.0.0.1', containers });
  const why = 'memory limit needs a writable cgroup hierarchy (no cgroup memory hierarchy at /nowhere/memory); running without it';
  const s = instanceStatus(input([run({ proc: proc(why) })]));
  assert.deepEqual([s.phase, s.reason, s.message], ['Running', 'LimitsNotEnforced', `LimitsNotEnforced: container main: ${why}`]);
  const enforced = instanceStatus(input([run({ proc: proc() })]));
  assert.deepEqual([enforced.phase, enforced.reason, enforced.message], ['Running', undefined, undefined]);
  const oom = instanceStatus(input([run({ exitCode: 137, exitReason: 'OOMKilled', finishedAt: 1 })]));
  assert.deepEqual([oom.phase, oom.reason, oom.message], ['Failed', 'OOMKilled', 'container main exited with code 137 (OOMKilled)']);
});
