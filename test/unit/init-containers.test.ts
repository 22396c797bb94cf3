import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState } from '../../reconciler/desired/desired-state.ts';
import { diffObjects } from '../../reconciler/desired/object-diff.ts';
import { loadManifests } from '../../reconciler/manifests/index.ts';
import { podRequests } from '../../reconciler/manifests/resources.ts';
import { referencedVersions } from '../../state/records/config.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';

/**
 * spec.template.spec.initContainers on the reconciler side: what a manifest may say (errors at
 * file:line:column, as the API server would reject it), the records, the effective request the
 * scheduler reserves, and the hash and plan rows. Pure.
 */

const CONFIGS = `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { url: "postgres://db" }
`;

/** web.yaml: init containers one per line from line 8 (flow style), then the app containers one per line. */
function web(init: string[], containers = ['{ name: main, command: [sleep, "1000"] }'], extra: string[] = []): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata: { name: web }',
    'spec:',
    '  template:',
    '    metadata: { labels: { app: web } }',
    '    spec:',
    ...extra.map((e) => `      ${e}`),
    ...(init.length > 0 ? ['      initContainers:', ...init.map((c) => `        - ${c}`)] : []),
    '      containers:',
    ...containers.map((c) => `        - ${c}`),
    '',
  ].join('\n');
}

const load = (text: string) => loadManifests([{ path: 'configs.yaml', content: CONFIGS }, { path: 'web.yaml', content: text }]);

function record(text: string): DeploymentRecord {
  const loaded = load(text);
  assert.deepEqual(loaded.errors.map(String), []);
  return buildDesiredState(loaded.objects, 'c1', []).deployments[0]!;
}

/** `web.yaml:L:C Deployment default/web POINTER: MESSAGE`, at the first `token` on the first line holding `line`. */
function located(text: string, line: string, token: string, pointer: string, message: string): string {
  const lines = text.split('\n');
  const n = lines.findIndex((l) => l.includes(line));
  const column = lines[n]!.indexOf(token, lines[n]!.indexOf(line)) + 1;
  assert.ok(n >= 0 && column > 0, `${token} is on the line of ${line}`);
  return `web.yaml:${n + 1}:${column} Deployment default/web ${pointer}: ${message}`;
}

const I = '/spec/template/spec/initContainers';

test('records: init containers in order, with env, mounts and pull policy as containers; absent when none', () => {
  const r = record(web(['{ name: migrate, image: "busybox:1.36", command: [sh, -c, "echo ok"], env: [{ name: DB, valueFrom: { configMapKeyRef: { name: cfg, key: url } } }], volumeMounts: [{ name: scratch, mountPath: /work }] }', '{ name: seed, command: ["true"], workingDir: /tmp }'], undefined, ['volumes: [{ name: scratch, emptyDir: {} }]']));
  const version = r.template.initContainers![0]!.env[0]! as { configMapKeyRef: { version: string } };
  assert.deepEqual(r.template.initContainers, [
    { name: 'migrate', image: 'busybox:1.36', imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'echo ok'], args: [], env: [{ name: 'DB', configMapKeyRef: { name: 'cfg', key: 'url', version: version.configMapKeyRef.version } }], ports: [], cpuMilli: 0, memoryBytes: 0, volumeMounts: [{ name: 'scratch', mountPath: '/work' }] },
    { name: 'seed', command: ['true'], args: [], env: [], ports: [], workingDir: '/tmp', cpuMilli: 0, memoryBytes: 0 },
  ]);
  // An image on an init container alone makes the pod Docker's: one runtime per pod.
  assert.equal(r.template.runtime, 'docker');
  // The ConfigMap only an init container reads is in the template hash and kept by the config GC.
  assert.deepEqual(r.configRefs, [`default/ConfigMap/cfg@${version.configMapKeyRef.version}`]);
  assert.deepEqual(referencedVersions('default', [...r.template.containers, ...r.template.initContainers!]), r.configRefs);

  const none = record(web([]));
  assert.ok(!('initContainers' in none.template));
  // `initContainers: []` is none, as in Kubernetes: same record, same hashes.
  const empty = record(web([]).replace('      containers:', '      initContainers: []\n      containers:'));
  assert.equal(JSON.stringify(empty), JSON.stringify(none));
  // Written-out defaults hash like implicit ones, as for containers.
  const implicit = record(web(['{ name: seed, command: ["true"] }']));
  const explicit = record(web(['{ name: seed, command: ["true"], args: [], env: [], ports: [] }']));
  assert.equal(explicit.templateHash, implicit.templateHash);
  assert.notEqual(implicit.templateHash, none.templateHash);
});

test("the scheduler's request is Kubernetes' effective request: max(sum of containers, largest init container)", () => {
  const res = (cpu: string, memory: string) => `resources: { requests: { cpu: ${cpu}, memory: ${memory} } }`;
  const cases: [string, string[], string[], { cpuMilli: number; memoryBytes: number }][] = [
    ['no init containers: the sum', [], [`{ name: a, command: [x], ${res('250m', '64Mi')} }`, `{ name: b, command: [x], ${res('250m', '64Mi')} }`], { cpuMilli: 500, memoryBytes: 128 * 2 ** 20 }],
    ['a larger init container wins', [`{ name: i, command: [x], ${res('2', '1Gi')} }`], [`{ name: a, command: [x], ${res('500m', '64Mi')} }`], { cpuMilli: 2000, memoryBytes: 2 ** 30 }],
    ['each resource apart: cpu from the init container, memory from the sum', [`{ name: i, command: [x], ${res('1', '16Mi')} }`, `{ name: j, command: [x], ${res('100m', '32Mi')} }`], [`{ name: a, command: [x], ${res('200m', '64Mi')} }`], { cpuMilli: 1000, memoryBytes: 64 * 2 ** 20 }],
    ['init containers are not summed', [`{ name: i, command: [x], ${res('300m', '1Mi')} }`, `{ name: j, command: [x], ${res('300m', '1Mi')} }`], [`{ name: a, command: [x], ${res('400m', '2Mi')} }`], { cpuMilli: 400, memoryBytes: 2 * 2 ** 20 }],
  ];
  for (const [name, init, containers, expected] of cases) {
    const t = record(web(init, containers)).template;
    assert.deepEqual({ cpuMilli: t.cpuMilli, memoryBytes: t.memoryBytes }, expected, name);
  }
  assert.deepEqual(podRequests([]), { cpuMilli: 0, memoryBytes: 0 });
});

test('errors at file:line:column: names across both lists, probes, hooks, sidecars, references, mounts, ports', () => {
  const cases: [string, string, string, string, string][] = [
    ['an init container named like a container (reported at the init container, naming the other)', '{ name: main, command: [x] }', 'name: main, command: [x] }', 'main', `${I}/0/name`],
    ['a readinessProbe', '{ name: a, command: [x], readinessProbe: { exec: { command: [x] } } }', 'readinessProbe', 'readinessProbe', `${I}/0/readinessProbe`],
    ['a livenessProbe', '{ name: a, command: [x], livenessProbe: { tcpSocket: { port: 1 } } }', 'livenessProbe', 'livenessProbe', `${I}/0/livenessProbe`],
    ['a startupProbe', '{ name: a, command: [x], startupProbe: { exec: { command: [x] } } }', 'startupProbe', 'startupProbe', `${I}/0/startupProbe`],
    ['lifecycle hooks', '{ name: a, command: [x], lifecycle: { preStop: { sleep: { seconds: 1 } } } }', 'lifecycle', 'lifecycle', `${I}/0/lifecycle`],
    ['restartPolicy Always: a sidecar', '{ name: a, command: [x], restartPolicy: Always }', 'restartPolicy', 'restartPolicy', `${I}/0/restartPolicy`],
    ['restartPolicy of another value', '{ name: a, command: [x], restartPolicy: Never }', 'restartPolicy', 'restartPolicy', `${I}/0/restartPolicy`],
    ['a ConfigMap the commit lacks', '{ name: a, command: [x], env: [{ name: X, valueFrom: { configMapKeyRef: { name: gone, key: k } } }] }', 'name: gone', 'gone', `${I}/0/env/0/valueFrom/configMapKeyRef/name`],
    ['a key the ConfigMap lacks', '{ name: a, command: [x], envFrom: [{ configMapRef: { name: cfg } }], env: [{ name: X, valueFrom: { configMapKeyRef: { name: cfg, key: nope } } }] }', 'key: nope', 'nope', `${I}/0/env/0/valueFrom/configMapKeyRef/key`],
    ['a mount of an undeclared volume', '{ name: a, command: [x], volumeMounts: [{ name: data, mountPath: /d }] }', 'name: data', 'data', `${I}/0/volumeMounts/0/name`],
    ['an unknown resourceFieldRef container', '{ name: a, command: [x], env: [{ name: X, valueFrom: { resourceFieldRef: { containerName: nope, resource: limits.cpu } } }] }', 'containerName: nope', 'nope', `${I}/0/env/0/valueFrom/resourceFieldRef/containerName`],
    ['a request above its limit', '{ name: a, command: [x], resources: { requests: { cpu: "2" }, limits: { cpu: "1" } } }', 'cpu: "2"', '"2"', `${I}/0/resources/requests/cpu`],
    ['a hostPort twice in one init container', '{ name: a, command: [x], ports: [{ name: p, containerPort: 1, hostPort: 8080 }, { name: q, containerPort: 2, hostPort: 8080 }] }', 'name: q', '8080', `${I}/0/ports/1/hostPort`],
  ];
  const messages: Record<string, string> = {
    [`${I}/0/name`]: 'duplicate container name "main", also used by /spec/template/spec/containers/0',
    [`${I}/0/readinessProbe`]: 'must not be set on an init container: it runs to completion before the containers start, so it is never probed (Kubernetes rejects it too)',
    [`${I}/0/livenessProbe`]: 'must not be set on an init container: it runs to completion before the containers start, so it is never probed (Kubernetes rejects it too)',
    [`${I}/0/startupProbe`]: 'must not be set on an init container: it runs to completion before the containers start, so it is never probed (Kubernetes rejects it too)',
    [`${I}/0/lifecycle`]: 'must not be set on an init container: it runs to completion before the containers start, so it has no hooks (Kubernetes rejects it too)',
    [`${I}/0/env/0/valueFrom/configMapKeyRef/name`]: 'ConfigMap default/gone is not defined in this commit (mark the reference optional: true if it may be missing)',
    [`${I}/0/env/0/valueFrom/configMapKeyRef/key`]: 'ConfigMap default/cfg has no key "nope" (its keys: url)',
    [`${I}/0/volumeMounts/0/name`]: 'no volume "data" in spec.template.spec.volumes (it has none)',
    [`${I}/0/env/0/valueFrom/resourceFieldRef/containerName`]: 'no container "nope" in this pod',
    [`${I}/0/resources/requests/cpu`]: 'must be at most the limit 1 (limits.cpu); a container cannot be guaranteed more than it may use',
    [`${I}/0/ports/1/hostPort`]: 'duplicate hostPort 8080/TCP, also used by /spec/template/spec/initContainers/0/ports/0: both could not bind it',
  };
  for (const [name, init, line, token, pointer] of cases) {
    const text = web([init]);
    const message = pointer.endsWith('restartPolicy')
      ? init.includes('Always')
        ? 'restartPolicy: Always (a sidecar container, Kubernetes 1.28) is not supported by Gantry: an init container must run to completion before the containers start; run the sidecar as one of containers instead'
        : 'must not be set (Kubernetes allows only Always, a sidecar container, which Gantry does not support), not "Never"'
      : messages[pointer]!;
    const result = load(text);
    assert.deepEqual(result.errors.map(String), [located(text, line, token, pointer, message)], name);
    // Refused whole, not dropped with an "ignored" warning.
    assert.deepEqual(result.warnings.map(String), [], name);
  }
  const twice = web(['{ name: a, command: [x] }', '{ name: a, command: [y] }']);
  assert.deepEqual(load(twice).errors.map(String), [located(twice, '{ name: a, command: [y]', 'a, command', `${I}/1/name`, `duplicate container name "a", also used by ${I}/0`)]);
});

test('what init containers may do that containers running together may not: the same hostPort, one at a time', () => {
  const port = (n: number) => `{ name: i${n}, command: [x], ports: [{ containerPort: 80, hostPort: 8080 }] }`;
  assert.deepEqual(load(web([port(1), port(2)])).errors.map(String), []);
  // A sidecar written as a container is fine; a field Kubernetes defines and Gantry does not still warns.
  const ignored = load(web(['{ name: a, command: [x], securityContext: { runAsUser: 1 } }']));
  assert.deepEqual(ignored.errors.map(String), []);
  assert.deepEqual(ignored.warnings.map((w) => w.message), [`ignored: Gantry does not implement ${I}/0/securityContext`]);
});

test('plans show init container changes field by field', () => {
  const before = record(web(['{ name: migrate, image: "app:1", command: [migrate] }']));
  const after = record(web(['{ name: migrate, image: "app:2", command: [migrate] }']));
  const none = record(web([]));
  const row = (b: DeploymentRecord, a: DeploymentRecord) => diffObjects({ namespaces: [], deployments: [b] }, { namespaces: [], deployments: [a] }).changed[0]!.changes;
  assert.deepEqual(row(before, after), ['1 instance(s) replaced, maxSurge 25%, maxUnavailable 25%', 'template.initContainers[0].image: "app:1" -> "app:2"']);
  assert.deepEqual(row(none, before)[1], 'template.initContainers: (none) -> [{"name":"migrate","image":"app:1","imagePullPolicy":"IfNotPresent","command"...');
  assert.equal(row(none, before).length, 3, 'the runtime changes too');
});
