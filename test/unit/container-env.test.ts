import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  expand,
  fetchConfigVersions,
  podFacts,
  resolveContainerEnv,
  resolvedSpec,
  versionKey,
  versionRefs,
  type EnvInput,
  type EnvResolution,
  type PodFacts,
} from '../../agents/container-env.ts';
import { dockerEnv } from '../../agents/docker-spec.ts';
import { containerEnv } from '../../agents/process-driver.ts';
import { configVersion, type ConfigVersionRecord, type EnvFromSpec, type EnvSpec } from '../../state/records/config.ts';
import type { ContainerSpec } from '../../state/records/instance.ts';
import { deployment, instance } from '../helpers/records.ts';

/** The kubelet's env rules (agents/container-env.ts), one table row per rule. */

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function version(kind: 'ConfigMap' | 'Secret', name: string, data: Record<string, string>, binaryData?: Record<string, string>): ConfigVersionRecord {
  const content = { kind, data, ...(binaryData ? { binaryData } : {}) };
  return { ...content, namespace: 'shop', name, version: configVersion(content), commit: 'c1' };
}

const APP = version('ConfigMap', 'app', { GREETING: 'hello', LEVEL: 'debug', 'bad key': 'x', '1st': 'y', 'dotted.ok-name': 'z' }, { BLOB: b64('bin') });
const DB = version('Secret', 'db', { password: b64('s3cr3t-pw'), user: b64('admin'), 'ümlaut': b64('u') });
const NUL = version('Secret', 'nul', { token: b64('a\0b') });
const ALL = [APP, DB, NUL];
const versions = new Map(ALL.map((v) => [versionKey(v), v]));

const pod: PodFacts = {
  name: 'web-abc-0',
  namespace: 'shop',
  uid: 'uid-1',
  labels: { app: 'web', 'app.kubernetes.io/name': 'web' },
  annotations: { note: 'n' },
  nodeName: 'node-1',
  podIP: '127.0.0.2',
  hostIP: '127.0.0.2',
};

const cm = (key: string, over: Partial<{ name: string; version: string; optional: boolean }> = {}) => ({ name: 'app', key, version: APP.version, ...over });
const sec = (key: string, over: Partial<{ name: string; version: string; optional: boolean }> = {}) => ({ name: 'db', key, version: DB.version, ...over });

function run(env: EnvSpec[], opts: { envFrom?: EnvFromSpec[]; command?: string[]; args?: string[]; services?: Record<string, string> } = {}): EnvResolution {
  const input: EnvInput = {
    container: { env, ...(opts.envFrom ? { envFrom: opts.envFrom } : {}), command: opts.command ?? [], args: opts.args ?? [] },
    versions,
    pod,
    ...(opts.services ? { services: opts.services } : {}),
  };
  return resolveContainerEnv(input);
}

function envOf(r: EnvResolution): Record<string, string> {
  assert.ok(r.ok, r.ok ? '' : r.error);
  return Object.fromEntries(r.env.map((e) => [e.name, e.value]));
}

const cases: { name: string; env: EnvSpec[]; envFrom?: EnvFromSpec[]; services?: Record<string, string>; want: Record<string, string> }[] = [
  { name: 'literal', env: [{ name: 'A', value: 'x' }], want: { A: 'x' } },
  { name: 'empty literal', env: [{ name: 'A', value: '' }], want: { A: '' } },
  { name: 'configMapKeyRef', env: [{ name: 'G', configMapKeyRef: cm('GREETING') }], want: { G: 'hello' } },
  { name: 'secretKeyRef is base64-decoded', env: [{ name: 'PW', secretKeyRef: sec('password') }], want: { PW: 's3cr3t-pw' } },
  { name: 'configMapKeyRef does not read binaryData', env: [{ name: 'B', configMapKeyRef: cm('BLOB', { optional: true }) }], want: {} },
  { name: 'optional ref without a version (absent from the commit) is skipped', env: [{ name: 'X', secretKeyRef: { name: 'gone', key: 'k', optional: true } }], want: {} },
  { name: 'a ref without a version and not optional is skipped too', env: [{ name: 'X', configMapKeyRef: { name: 'gone', key: 'k' } }], want: {} },
  { name: 'optional ref to a version not stored is skipped', env: [{ name: 'X', secretKeyRef: sec('password', { version: 'ffffffffffffffff', optional: true }) }], want: {} },
  { name: 'optional ref to a missing key is skipped', env: [{ name: 'X', secretKeyRef: sec('nope', { optional: true }) }], want: {} },
  {
    name: 'envFrom ConfigMap: valid keys only',
    env: [],
    envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version }],
    want: { GREETING: 'hello', LEVEL: 'debug', 'dotted.ok-name': 'z' },
  },
  {
    name: 'envFrom Secret with prefix: decoded, prefixed; a prefix can make a key valid',
    env: [],
    envFrom: [{ kind: 'Secret', name: 'db', version: DB.version, prefix: 'DB_' }],
    want: { DB_password: 's3cr3t-pw', DB_user: 'admin' },
  },
  {
    name: 'a prefix validates with the key: "1st" is valid behind P_',
    env: [],
    envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version, prefix: 'P_' }],
    want: { P_GREETING: 'hello', P_LEVEL: 'debug', 'P_dotted.ok-name': 'z', P_1st: 'y' },
  },
  { name: 'envFrom optional and missing version is skipped', env: [], envFrom: [{ kind: 'Secret', name: 'gone', optional: true }], want: {} },
  { name: 'envFrom optional, version not stored, is skipped', env: [], envFrom: [{ kind: 'Secret', name: 'db', version: '0000000000000000', optional: true }], want: {} },
  {
    name: 'override order: envFrom, later envFrom, then env in order',
    env: [
      { name: 'GREETING', value: 'from env' },
      { name: 'LEVEL', configMapKeyRef: cm('GREETING') },
      { name: 'LEVEL', value: 'last wins' },
    ],
    envFrom: [
      { kind: 'ConfigMap', name: 'app', version: APP.version },
      { kind: 'Secret', name: 'db', version: DB.version },
    ],
    want: { GREETING: 'from env', LEVEL: 'last wins', 'dotted.ok-name': 'z', password: 's3cr3t-pw', user: 'admin' },
  },
  {
    name: 'every fieldRef path',
    env: [
      { name: 'N', fieldRef: { fieldPath: 'metadata.name' } },
      { name: 'NS', fieldRef: { fieldPath: 'metadata.namespace' } },
      { name: 'UID', fieldRef: { fieldPath: 'metadata.uid' } },
      { name: 'L', fieldRef: { fieldPath: "metadata.labels['app.kubernetes.io/name']" } },
      { name: 'L0', fieldRef: { fieldPath: "metadata.labels['missing']" } },
      { name: 'AN', fieldRef: { fieldPath: "metadata.annotations['note']" } },
      { name: 'AN0', fieldRef: { fieldPath: "metadata.annotations['missing']" } },
      { name: 'NODE', fieldRef: { fieldPath: 'spec.nodeName' } },
      { name: 'PIP', fieldRef: { fieldPath: 'status.podIP' } },
      { name: 'PIPS', fieldRef: { fieldPath: 'status.podIPs' } },
      { name: 'HIP', fieldRef: { fieldPath: 'status.hostIP' } },
      { name: 'HIPS', fieldRef: { fieldPath: 'status.hostIPs' } },
    ],
    want: { N: 'web-abc-0', NS: 'shop', UID: 'uid-1', L: 'web', L0: '', AN: 'n', AN0: '', NODE: 'node-1', PIP: '127.0.0.2', PIPS: '127.0.0.2', HIP: '127.0.0.2', HIPS: '127.0.0.2' },
  },
  {
    name: '$(VAR) in values: defined before (envFrom included), services as fallback, $$ escapes, unknown stays',
    env: [
      { name: 'A', value: 'a' },
      { name: 'B', value: '$(A)-$(GREETING)-$(LATER)-$$(A)-$$-$(WEB_SERVICE_HOST)-$(A' },
      { name: 'LATER', value: 'l' },
      { name: 'C', value: '$(A)$(A)x$' },
      { name: 'P', value: '$(PW)' },
      { name: 'PW', secretKeyRef: sec('password') },
      { name: 'Q', value: '$(PW)' },
      { name: 'PROTO', value: '$(constructor)' },
    ],
    envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version }],
    services: { WEB_SERVICE_HOST: '10.0.0.1' },
    want: {
      GREETING: 'hello',
      LEVEL: 'debug',
      'dotted.ok-name': 'z',
      A: 'a',
      B: 'a-hello-$(LATER)-$(A)-$-10.0.0.1-$(A',
      LATER: 'l',
      C: 'aax$',
      P: '$(PW)',
      PW: 's3cr3t-pw',
      Q: 's3cr3t-pw',
      PROTO: '$(constructor)',
    },
  },
];

for (const c of cases) {
  test(`env: ${c.name}`, () => {
    assert.deepEqual(envOf(run(c.env, { envFrom: c.envFrom, services: c.services })), c.want);
  });
}

const errors: { name: string; env: EnvSpec[]; envFrom?: EnvFromSpec[]; args?: string[]; want: string }[] = [
  { name: 'missing key of a Secret', env: [{ name: 'PW', secretKeyRef: sec('passwd') }], want: 'secret shop/db has no key "passwd"' },
  { name: 'missing key of a ConfigMap', env: [{ name: 'X', configMapKeyRef: cm('NOPE') }], want: 'configmap shop/app has no key "NOPE"' },
  { name: 'binaryData key is not data', env: [{ name: 'X', configMapKeyRef: cm('BLOB') }], want: 'configmap shop/app has no key "BLOB"' },
  { name: 'version not stored', env: [{ name: 'PW', secretKeyRef: sec('password', { version: 'ffffffffffffffff' }) }], want: 'secret shop/db version ffffffffffffffff is not stored' },
  { name: 'envFrom version not stored', env: [], envFrom: [{ kind: 'ConfigMap', name: 'app', version: '0123456789abcdef' }], want: 'configmap shop/app version 0123456789abcdef is not stored' },
  { name: 'fieldRef spec.serviceAccountName', env: [{ name: 'SA', fieldRef: { fieldPath: 'spec.serviceAccountName' } }], want: 'env SA: fieldRef spec.serviceAccountName is not supported' },
  { name: 'fieldRef nonsense', env: [{ name: 'X', fieldRef: { fieldPath: 'metadata.labels' } }], want: 'env X: fieldRef metadata.labels is not supported' },
  { name: 'a NUL from a Secret', env: [{ name: 'T', secretKeyRef: { name: 'nul', key: 'token', version: NUL.version } }], want: 'env T: variable T holds a NUL byte' },
  { name: 'a NUL from envFrom', env: [], envFrom: [{ kind: 'Secret', name: 'nul', version: NUL.version }], want: 'envFrom secret shop/nul: variable token holds a NUL byte' },
  { name: 'a NUL expanded into args', env: [{ name: 'T', value: 'x' }], args: ['ok', '$(T)\0'], want: 'args[1] holds a NUL byte' },
];

const SECRET_VALUES = ['s3cr3t-pw', 'admin', 'hello', 'a\0b', b64('s3cr3t-pw')];

for (const c of errors) {
  test(`env error: ${c.name}; the message names no value`, () => {
    const r = run(c.env, { envFrom: c.envFrom, args: c.args });
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.error.startsWith(c.want), !r.ok ? r.error : '');
    for (const v of SECRET_VALUES) assert.ok(!(!r.ok && r.error.includes(v)), `value leaked into "${!r.ok && r.error}"`);
  });
}

test('envFrom: invalid keys are skipped with one warning naming the keys, sorted, never values', () => {
  const r = run([], { envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version }, { kind: 'Secret', name: 'db', version: DB.version }] });
  assert.ok(r.ok);
  assert.deepEqual(r.warnings, [
    { reason: 'InvalidEnvironmentVariableNames', message: 'keys [1st, bad key] from the envFrom configmap shop/app were skipped since they are not valid environment variable names' },
    { reason: 'InvalidEnvironmentVariableNames', message: 'keys [ümlaut] from the envFrom secret shop/db were skipped since they are not valid environment variable names' },
  ]);
  assert.ok(!JSON.stringify(r.warnings).includes('hello') && !JSON.stringify(r.warnings).includes("'x'"));
});

test('$(VAR) expansion follows Kubernetes (third_party/forked/golang/expansion)', () => {
  const vars: Record<string, string> = { VAR_A: 'A', VAR_B: 'B', EMPTY: '' };
  const lookup = (n: string) => (Object.hasOwn(vars, n) ? vars[n] : undefined);
  const table: [string, string][] = [
    ['$(VAR_A)', 'A'],
    ['___$(VAR_A)___', '___A___'],
    ['$(VAR_A)-$(VAR_B)', 'A-B'],
    ['$(VAR_A)$(VAR_B)', 'AB'],
    ['$(UNKNOWN)', '$(UNKNOWN)'],
    ['$$(VAR_A)', '$(VAR_A)'],
    ['$$$(VAR_A)', '$A'],
    ['$$$$(VAR_A)', '$$(VAR_A)'],
    ['$$', '$'],
    ['$', '$'],
    ['foo$', 'foo$'],
    ['$VAR_A', '$VAR_A'],
    ['$(VAR_A', '$(VAR_A'],
    ['$(', '$('],
    ['$()', '$()'],
    ['$(EMPTY)x', 'x'],
    ['$(VAR_A)))', 'A))'],
    ['(VAR_A)', '(VAR_A)'],
    ['é$(VAR_A)😀$', 'éA😀$'],
  ];
  for (const [input, want] of table) assert.equal(expand(input, lookup), want, input);
});

test('command and args expand against the resolved env (and services), as Kubernetes does', () => {
  const r = run([{ name: 'PW', secretKeyRef: sec('password') }, { name: 'MODE', value: 'fast' }], {
    envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version }],
    command: ['/bin/$(MODE)', '$(UNSET)'],
    args: ['--greeting=$(GREETING)', '--mode=$$(MODE)', '--svc=$(WEB_SERVICE_PORT)', '--pw=$(PW)'],
    services: { WEB_SERVICE_PORT: '8000' },
  });
  assert.ok(r.ok);
  assert.deepEqual(r.command, ['/bin/fast', '$(UNSET)']);
  assert.deepEqual(r.args, ['--greeting=hello', '--mode=$(MODE)', '--svc=8000', '--pw=s3cr3t-pw']);
});

test('the versions to fetch: every ref with a version, once each', () => {
  const refs = versionRefs({
    env: [
      { name: 'A', value: 'x' },
      { name: 'B', secretKeyRef: sec('password') },
      { name: 'C', secretKeyRef: sec('user') },
      { name: 'D', configMapKeyRef: { name: 'gone', key: 'k', optional: true } },
      { name: 'E', fieldRef: { fieldPath: 'metadata.name' } },
    ],
    envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version }, { kind: 'Secret', name: 'gone', optional: true }],
  });
  assert.deepEqual(refs, [{ kind: 'ConfigMap', name: 'app', version: APP.version }, { kind: 'Secret', name: 'db', version: DB.version }]);
});

test('fetching: a failure or no answer is an error naming the version, never hanging', async () => {
  const spec = { env: [{ name: 'B', secretKeyRef: sec('password') }] as EnvSpec[] };
  const ok = await fetchConfigVersions('shop', spec, async (_ns, kind, name, v) => versions.get(versionKey({ kind, name, version: v })));
  assert.equal(ok.get(versionKey(DB)), DB);
  await assert.rejects(
    fetchConfigVersions('shop', spec, async () => {
      throw new Error('connection is closed');
    }),
    { message: `reading secret shop/db version ${DB.version}: connection is closed` },
  );
  await assert.rejects(
    fetchConfigVersions('shop', spec, () => new Promise(() => {}), 50),
    { message: `reading secret shop/db version ${DB.version}: Redis did not answer within 0.05s` },
  );
});

test('pod facts: the name is the id without its namespace; uid, labels, node and addresses', () => {
  const { record } = instance(deployment({ namespace: 'shop', templateHash: 'abc12' }), 3);
  assert.equal(record.id, 'shop.web-abc12-3');
  const facts = podFacts(record, 'node-9', '127.0.0.5');
  assert.deepEqual(facts, { name: 'web-abc12-3', namespace: 'shop', uid: record.uid, labels: { app: 'web' }, annotations: {}, nodeName: 'node-9', podIP: '127.0.0.5', hostIP: '127.0.0.5' });
  // The pod template's annotations, when the record has them.
  assert.deepEqual(podFacts({ ...record, annotations: { team: 'storefront' } }, 'node-9', '127.0.0.5').annotations, { team: 'storefront' });
});

test('the runtimes get the resolved spec: literal env, no envFrom, expanded command and args', () => {
  const spec: ContainerSpec = {
    name: 'main',
    command: ['run', '$(MODE)'],
    args: ['$(PW)'],
    env: [{ name: 'MODE', value: 'm' }, { name: 'PW', secretKeyRef: sec('password') }],
    envFrom: [{ kind: 'ConfigMap', name: 'app', version: APP.version }],
    ports: [{ name: 'http', containerPort: 8080 }],
    cpuMilli: 0,
    memoryBytes: 0,
  };
  const r = resolveContainerEnv({ container: spec, versions, pod });
  assert.ok(r.ok);
  const resolved = resolvedSpec(spec, r);
  assert.equal(resolved.envFrom, undefined);
  assert.deepEqual(resolved.command, ['run', 'm']);
  const ports = [{ name: 'http', containerPort: 8080, hostPort: 31000 }];
  const identity = { GANTRY_INSTANCE_ID: 'shop.web-x-0', PORT: 'not-this' };
  const docker = dockerEnv(resolved, ports, identity);
  assert.ok(docker.includes('PW=s3cr3t-pw') && docker.includes('GREETING=hello') && docker.includes('PORT_HTTP=8080'));
  // Gantry's identity still wins over the container's env.
  assert.ok(docker.includes('PORT=not-this'));
  const proc = containerEnv(resolved, ports, {});
  assert.equal(proc.PW, 's3cr3t-pw');
  assert.equal(proc.PORT, '31000');
});
