import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadManifests, templateHash, type ManifestFile } from '../../reconciler/manifests/index.ts';
import { buildDesiredState, diffDesired } from '../../reconciler/desired/desired-state.ts';
import { buildPreviewState } from '../../reconciler/preview/preview-state.ts';
import type { DeploymentObject } from '../../reconciler/manifests/types.ts';

/**
 * ConfigMaps and Secrets (issue 12, section 3): their shapes and checks, env valueFrom and envFrom
 * checked against the commit, references to exact content versions in records (never values), and
 * a content change that changes the template hash of exactly the deployments that use it.
 */

const SECRET_VALUE = 's3cr3t-hunter2-value';
const files = (f: Record<string, string>): ManifestFile[] => Object.entries(f).map(([path, content]) => ({ path, content }));
const text = (xs: { toString(): string }[]) => xs.map((x) => x.toString());

const configMap = (data: Record<string, string>) => `apiVersion: v1
kind: ConfigMap
metadata: { name: app-config }
data:
${Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n')}
`;
const secret = (password: string) => `apiVersion: v1
kind: Secret
metadata: { name: db }
type: Opaque
data:
  user: ${Buffer.from('admin').toString('base64')}
stringData:
  password: ${JSON.stringify(password)}
`;
const deployment = (name: string, env: string, envFrom = '') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers:
        - name: main
          command: [sleep, "1000"]
          resources: { requests: { cpu: 250m, memory: 64Mi }, limits: { cpu: "1", memory: 128Mi } }
          env:
${env}
${envFrom}`;
const refsEnv = `            - { name: LOG_LEVEL, valueFrom: { configMapKeyRef: { name: app-config, key: log-level } } }
            - { name: DB_PASSWORD, valueFrom: { secretKeyRef: { name: db, key: password } } }
            - { name: POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
            - { name: MEM_MI, valueFrom: { resourceFieldRef: { resource: limits.memory, divisor: 1Mi } } }
            - { name: CPU_M, valueFrom: { resourceFieldRef: { resource: requests.cpu, divisor: 1m } } }
            - { name: URL, value: "http://$(POD_NAME)" }`;
const envFromAll = `          envFrom:
            - { configMapRef: { name: app-config }, prefix: CFG_ }
            - secretRef: { name: db }
`;

function load(f: Record<string, string>) {
  const res = loadManifests(files(f));
  return res;
}

test('ConfigMap and Secret load in Kubernetes shape; stringData is merged over data, base64', () => {
  const res = load({ 'cm.yaml': configMap({ 'log-level': 'debug' }), 'secret.yaml': secret(SECRET_VALUE) });
  assert.deepEqual(text(res.errors), []);
  const [cm, s] = res.objects.map((o) => o.manifest);
  assert.deepEqual(cm, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config', namespace: 'default', labels: {}, annotations: {} }, data: { 'log-level': 'debug' }, binaryData: {} });
  assert.ok(s?.kind === 'Secret');
  assert.deepEqual(s.data, { user: Buffer.from('admin').toString('base64'), password: Buffer.from(SECRET_VALUE).toString('base64') });
  assert.equal(s.type, 'Opaque');
  assert.equal('stringData' in s, false);
});

test('ConfigMap and Secret errors name keys, never values', () => {
  const doc = (body: string) => `apiVersion: v1\n${body}`;
  const res = loadManifests(files({
    'short.yaml': doc(`kind: Secret\nmetadata: { name: short }\ndata:\n  short: ${SECRET_VALUE.slice(0, 5)}\n`),
    'keys.yaml': doc('kind: Secret\nmetadata: { name: keys }\ndata:\n  "bad key": aGk=\n'),
    'both.yaml': doc('kind: ConfigMap\nmetadata: { name: both }\ndata: { a: x }\nbinaryData: { a: eA== }\n'),
    'big.yaml': configMap({ big: 'x'.repeat(1024 * 1024) }),
  }), { maxFileBytes: 4 * 1024 * 1024 });
  assert.deepEqual(text(res.errors), [
    "big.yaml:1:1 ConfigMap default/app-config: its data is 1048579 bytes, more than Kubernetes' limit of 1 MiB per ConfigMap",
    'both.yaml:5:15 ConfigMap default/both /binaryData/a: key "a" is in both data and binaryData',
    'keys.yaml:5:3 Secret default/keys /data: key "bad key" must be letters, digits, \'-\', \'.\' and \'_\'',
    'short.yaml:5:10 Secret default/short /data/short: must be base64: its length is not a multiple of 4 (the value is not shown)',
  ]);
  for (const e of text(res.errors)) assert.ok(!e.includes(SECRET_VALUE.slice(0, 5)), e);
});

test('env references are checked against the commit: a missing object or key is REFERENCE_NOT_FOUND at file:line', () => {
  const res = load({
    'cm.yaml': configMap({ 'log-level': 'debug' }),
    'web.yaml': deployment('web', [
      '            - { name: A, valueFrom: { configMapKeyRef: { name: app-config, key: missing } } }',
      '            - { name: B, valueFrom: { secretKeyRef: { name: nowhere, key: k } } }',
      '            - { name: C, valueFrom: { secretKeyRef: { name: nowhere, key: k, optional: true } } }',
      '            - { name: D, value: x, valueFrom: { fieldRef: { fieldPath: metadata.name } } }',
    ].join('\n'), '          envFrom:\n            - { configMapRef: { name: app-config }, secretRef: { name: db } }\n            - { secretRef: { name: gone } }\n'),
  });
  assert.deepEqual(text(res.errors), [
    'web.yaml:17:15 Deployment default/web /spec/template/spec/containers/0/env/3: may have value or valueFrom, not both',
    'web.yaml:19:15 Deployment default/web /spec/template/spec/containers/0/envFrom/0: must have exactly one of configMapRef and secretRef',
  ]);
  const unsupported = load({ 'web.yaml': deployment('web', '            - { name: E, valueFrom: { fieldRef: { fieldPath: spec.serviceAccountName } } }') });
  assert.deepEqual(text(unsupported.errors), [
    "web.yaml:14:62 Deployment default/web /spec/template/spec/containers/0/env/0/valueFrom/fieldRef/fieldPath: must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels['<key>'], metadata.annotations['<key>'], spec.nodeName, status.podIP, status.hostIP",
  ]);
  // Shape errors first; with those fixed, the references are checked.
  const refs = load({
    'cm.yaml': configMap({ 'log-level': 'debug' }),
    'web.yaml': deployment('web', [
      '            - { name: A, valueFrom: { configMapKeyRef: { name: app-config, key: missing } } }',
      '            - { name: B, valueFrom: { secretKeyRef: { name: nowhere, key: k } } }',
      '            - { name: C, valueFrom: { secretKeyRef: { name: nowhere, key: k, optional: true } } }',
    ].join('\n'), '          envFrom:\n            - { secretRef: { name: gone } }\n            - { secretRef: { name: gone2, optional: true } }\n'),
  });
  assert.deepEqual(text(refs.errors), [
    'web.yaml:14:81 Deployment default/web /spec/template/spec/containers/0/env/0/valueFrom/configMapKeyRef/key: ConfigMap default/app-config has no key "missing" (its keys: log-level)',
    'web.yaml:15:61 Deployment default/web /spec/template/spec/containers/0/env/1/valueFrom/secretKeyRef/name: Secret default/nowhere is not defined in this commit (mark the reference optional: true if it may be missing)',
    'web.yaml:18:36 Deployment default/web /spec/template/spec/containers/0/envFrom/0/secretRef/name: Secret default/gone is not defined in this commit (mark the reference optional: true if it may be missing)',
  ]);
  assert.ok(refs.errors.every((e) => e.code === 'REFERENCE_NOT_FOUND'));
});

function desired(f: Record<string, string>) {
  const res = load(f);
  assert.deepEqual(text(res.errors), []);
  return buildDesiredState(res.objects, 'c'.repeat(40), []);
}

test('records refer to exact content versions, never to values; resourceFieldRef is computed', () => {
  const state = desired({ 'cm.yaml': configMap({ 'log-level': 'debug' }), 'secret.yaml': secret(SECRET_VALUE), 'web.yaml': deployment('web', refsEnv, envFromAll) });
  const [web] = state.deployments;
  const versions = Object.fromEntries(state.configs!.map((c) => [c.kind, c.version]));
  assert.match(versions.ConfigMap!, /^[0-9a-f]{16}$/);
  const c = web!.template.containers[0]!;
  assert.deepEqual(c.env, [
    { name: 'LOG_LEVEL', configMapKeyRef: { name: 'app-config', key: 'log-level', version: versions.ConfigMap } },
    { name: 'DB_PASSWORD', secretKeyRef: { name: 'db', key: 'password', version: versions.Secret } },
    { name: 'POD_NAME', fieldRef: { fieldPath: 'metadata.name' } },
    { name: 'MEM_MI', value: '128' },
    { name: 'CPU_M', value: '250' },
    { name: 'URL', value: 'http://$(POD_NAME)' },
  ]);
  assert.deepEqual(c.envFrom, [
    { kind: 'ConfigMap', name: 'app-config', version: versions.ConfigMap, prefix: 'CFG_' },
    { kind: 'Secret', name: 'db', version: versions.Secret },
  ]);
  assert.deepEqual(web!.configRefs, [`default/ConfigMap/app-config@${versions.ConfigMap}`, `default/Secret/db@${versions.Secret}`]);
  // Only the config versions hold values; no deployment record does, in any encoding.
  const records = JSON.stringify(state.deployments);
  for (const form of [SECRET_VALUE, Buffer.from(SECRET_VALUE).toString('base64')]) assert.ok(!records.includes(form), 'a deployment record holds the secret');
  assert.equal(state.configs!.find((v) => v.kind === 'Secret')!.data.password, Buffer.from(SECRET_VALUE).toString('base64'));
});

test('a content change changes the template hash of the deployments that use it, and the diff says which', () => {
  const base = { 'cm.yaml': configMap({ 'log-level': 'debug' }), 'secret.yaml': secret(SECRET_VALUE), 'web.yaml': deployment('web', refsEnv), 'plain.yaml': deployment('plain', '            - { name: X, value: "1" }') };
  const before = desired(base);
  const after = desired({ ...base, 'secret.yaml': secret('rotated-password') });
  const [plainBefore, webBefore] = before.deployments;
  const [plainAfter, webAfter] = after.deployments;
  assert.notEqual(webAfter!.templateHash, webBefore!.templateHash);
  assert.equal(plainAfter!.templateHash, plainBefore!.templateHash);
  // Without references the hash is what it always was: upgrading Gantry rolls nothing.
  const plainManifest = load({ 'plain.yaml': base['plain.yaml'] }).objects[0]!.manifest as DeploymentObject;
  assert.equal(plainBefore!.templateHash, templateHash(plainManifest));
  const diff = diffDesired(before.deployments, after);
  const secretVersions = [before, after].map((s) => s.configs!.find((c) => c.kind === 'Secret')!.version.slice(0, 8));
  assert.deepEqual(diff.changed.map((c) => [c.after.name, c.changes]), [
    ['web', [`template ${webBefore!.templateHash} -> ${webAfter!.templateHash} (instances replaced)`, `Secret db ${secretVersions[0]} -> ${secretVersions[1]}`]],
  ]);
  assert.ok(!JSON.stringify(diff).includes('rotated-password'));
  // An unrelated ConfigMap key changes the ConfigMap's version, so web (which uses the ConfigMap) rolls too.
  const unrelated = desired({ ...base, 'cm.yaml': configMap({ 'log-level': 'debug', other: 'x' }) });
  assert.notEqual(unrelated.deployments[1]!.templateHash, webBefore!.templateHash);
});

test('a preview copies the versions into its namespaces, where its instances look them up', () => {
  const state = desired({ 'cm.yaml': configMap({ 'log-level': 'debug' }), 'web.yaml': deployment('web', refsEnv.split('\n')[0]!) });
  const preview = buildPreviewState(state, 7, { maxReplicas: 1 }, []);
  assert.deepEqual(preview.configs.map((c) => `${c.namespace}/${c.kind}/${c.name}@${c.version}`), preview.deployments[0]!.configRefs);
  assert.match(preview.configs[0]!.namespace, /7/);
});

test('the plan of every kind, field by field: Secret values masked, instances affected named', async () => {
  const { diffObjects, maskedSecret } = await import('../../reconciler/desired/object-diff.ts');
  const nsDoc = (team: string) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { team: ${team} } }\n`;
  const svc = (port: number) => `apiVersion: v1\nkind: Service\nmetadata: { name: web }\nspec:\n  selector: { app: web }\n  ports: [{ port: ${port} }]\n`;
  const base = { 'ns.yaml': nsDoc('a'), 'cm.yaml': configMap({ 'log-level': 'debug' }), 'secret.yaml': secret(SECRET_VALUE), 'web.yaml': deployment('web', refsEnv), 'svc.yaml': svc(80) };
  const before = desired(base);
  const after = desired({
    ...base,
    'ns.yaml': nsDoc('b'),
    'cm.yaml': configMap({ 'log-level': 'info' }),
    'secret.yaml': secret('another-password'),
    'svc.yaml': svc(8080),
    'web.yaml': deployment('web', refsEnv).replace('command: [sleep, "1000"]', 'command: [sleep, "2000"]'),
    'api.yaml': deployment('api', '            - { name: X, value: "1" }'),
  });
  const rows = diffObjects(before, after);
  const [oldMask, newMask] = [SECRET_VALUE, 'another-password'].map((v) => maskedSecret(Buffer.from(v).toString('base64')));
  assert.match(oldMask, /^\(secret: 20 bytes, sha256:[0-9a-f]{8}\)$/);
  assert.deepEqual(rows.added.map((r) => [r.kind, r.name, r.changes[0]]), [['Deployment', 'default/api', '1 instance(s) created']]);
  assert.deepEqual(rows.removed, []);
  const changed = Object.fromEntries(rows.changed.map((r) => [`${r.kind} ${r.name}`, r.changes]));
  assert.deepEqual(changed['Namespace shop'], ['labels.team: "a" -> "b"']);
  assert.deepEqual(changed['ConfigMap default/app-config'], ['data.log-level: "debug" -> "info"']);
  assert.deepEqual(changed['Secret default/db'], [`data.password: "${oldMask}" -> "${newMask}"`]);
  assert.deepEqual(changed['Service default/web'], ['ports[0].port: 80 -> 8080', 'ports[0].targetPort: 80 -> 8080']);
  const web = changed['Deployment default/web']!;
  assert.equal(web[0], '1 instance(s) replaced, maxSurge 25%, maxUnavailable 25%');
  assert.ok(web.includes('template.containers[0].command[1]: "1000" -> "2000"'), web.join('\n'));
  assert.ok(web.some((c) => /^ConfigMap app-config [0-9a-f]{8} -> [0-9a-f]{8}$/.test(c)), web.join('\n'));
  assert.ok(!JSON.stringify(rows).includes('another-password') && !JSON.stringify(rows).includes(Buffer.from('another-password').toString('base64')));
});

test('the pod template annotations reach the records (fieldRef metadata.annotations reads them); none: records as before', () => {
  const annotated = deployment('web', refsEnv).replace('    metadata: { labels: { app: web } }', '    metadata: { labels: { app: web }, annotations: { team: storefront } }');
  const state = desired({ 'cm.yaml': configMap({ 'log-level': 'debug' }), 'secret.yaml': secret(SECRET_VALUE), 'web.yaml': annotated, 'plain.yaml': deployment('plain', '            - { name: X, value: "1" }') });
  assert.deepEqual(state.deployments.find((d) => d.name === 'web')!.template.annotations, { team: 'storefront' });
  assert.equal('annotations' in state.deployments.find((d) => d.name === 'plain')!.template, false);
});
