import { test } from 'node:test';
import assert from 'node:assert/strict';
import deploymentSchema from '../../schemas/deployment.schema.json' with { type: 'json' };
import namespaceSchema from '../../schemas/namespace.schema.json' with { type: 'json' };
import { templateHash, validateManifest, type DeploymentObject } from '../../reconciler/manifests/index.ts';
import { PATTERN_MESSAGES } from '../../reconciler/manifests/validator.ts';
import { canonicalJson } from '../../reconciler/manifests/template-hash.ts';

type Schema = Record<string, unknown>;

const minimalDeployment = () => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web' },
  spec: { template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', command: ['x'] }] } } },
});
const minimalNamespace = () => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } });

/** [pointer, default] for every `default` in a schema; array items are visited at index 0. */
function schemaDefaults(root: Schema): [string, unknown][] {
  const out: [string, unknown][] = [];
  const walk = (node: Schema, pointer: string, depth: number): void => {
    if (depth > 20) return;
    if ('default' in node) out.push([pointer, node.default]);
    if (typeof node.$ref === 'string') {
      const name = node.$ref.replace('#/$defs/', '');
      walk((root.$defs as Record<string, Schema>)[name]!, pointer, depth + 1);
    }
    for (const [key, sub] of Object.entries((node.properties as Record<string, Schema> | undefined) ?? {})) {
      walk(sub, `${pointer}/${key}`, depth + 1);
    }
    if (node.items) walk(node.items as Schema, `${pointer}/0`, depth + 1);
  };
  walk(root, '', 0);
  return out;
}

function at(value: unknown, pointer: string): unknown {
  return pointer
    .split('/')
    .slice(1)
    .reduce<unknown>((v, token) => (v as Record<string, unknown> | undefined)?.[token], value);
}

test('normalize applies every default the schemas declare', () => {
  // An init container, so that the container defaults are checked under initContainers too.
  const withInit = minimalDeployment();
  Object.assign(withInit.spec.template.spec, { initContainers: [{ name: 'init', command: ['x'] }] });
  const cases: [Schema, object][] = [
    [deploymentSchema, withInit],
    [namespaceSchema, minimalNamespace()],
  ];
  for (const [schema, doc] of cases) {
    const { object, issues } = validateManifest(doc);
    assert.deepEqual(issues, []);
    const defaults = schemaDefaults(schema);
    assert.ok(defaults.length > 0);
    for (const [pointer, value] of defaults) {
      assert.deepEqual(at(object, pointer), value, `${schema.title}${pointer} should default to ${JSON.stringify(value)}`);
    }
  }
});

test('every pattern in the schemas has a readable message', () => {
  const patterns = new Set<string>();
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const pattern = (node as Schema).pattern;
    if (typeof pattern === 'string') patterns.add(pattern);
    Object.values(node).forEach(walk);
  };
  walk(deploymentSchema);
  walk(namespaceSchema);
  assert.deepEqual(
    [...patterns].filter((p) => !(p in PATTERN_MESSAGES)),
    [],
  );
});

test('validateManifest reports problems with pointers and returns no object', () => {
  const doc = minimalDeployment();
  (doc.spec as Record<string, unknown>).replicas = -1;
  assert.deepEqual(validateManifest(doc).issues, [{ code: 'SCHEMA', pointer: '/spec/replicas', message: 'must be >= 0' }]);
  assert.equal(validateManifest(doc).object, undefined);
  assert.deepEqual(validateManifest(null).issues.map((i) => i.message), [
    'a manifest must be a mapping with apiVersion, kind and metadata, not null',
  ]);
});

test('validateManifest does not modify its input', () => {
  const doc = minimalDeployment();
  const copy = structuredClone(doc);
  validateManifest(doc);
  assert.deepEqual(doc, copy);
});

function loaded(doc: object): DeploymentObject {
  const { object, issues } = validateManifest(doc);
  assert.deepEqual(issues, []);
  return object as DeploymentObject;
}

test('templateHash is 10 hex characters, stable, and ignores key order and written-out defaults', () => {
  const base = loaded(minimalDeployment());
  const hash = templateHash(base);
  assert.match(hash, /^[0-9a-f]{10}$/);
  assert.equal(templateHash(loaded(minimalDeployment())), hash);

  const reordered = minimalDeployment();
  reordered.spec.template = { spec: reordered.spec.template.spec, metadata: reordered.spec.template.metadata };
  assert.equal(templateHash(loaded(reordered)), hash);

  const explicit = minimalDeployment();
  Object.assign(explicit.spec.template.spec.containers[0]!, { args: [], env: [], ports: [] });
  Object.assign(explicit.spec.template.spec, { restartPolicy: 'Always', nodeSelector: {} });
  assert.equal(templateHash(loaded(explicit)), hash);
  // A raw, schema-valid Deployment hashes like its loaded form.
  assert.equal(templateHash(minimalDeployment() as never), hash);
});

test('canonicalJson and templateHash never change their output: it names every revision and instance', () => {
  assert.equal(canonicalJson({ b: 1, a: [undefined, null, { z: 'é', Z: '\u2028', '10': 2, '9': 3 }], c: undefined }), '{"a":[null,null,{"10":2,"9":3,"Z":"\u2028","z":"é"}],"b":1}');
  assert.equal(canonicalJson([]), '[]');
  assert.equal(canonicalJson({}), '{}');
  const d = { apiVersion: 'gantry.dev/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', command: ['node', 'server.js'] }] } } } };
  // Pinned: a different value would replace every running instance after an upgrade.
  assert.equal(templateHash(loaded(d)), '8a6e775f5e');
});

test('templateHash changes with the template and only with it', () => {
  const hash = templateHash(loaded(minimalDeployment()));
  const scaled = minimalDeployment();
  Object.assign(scaled.spec, { replicas: 5, strategy: { type: 'Recreate' } });
  Object.assign(scaled.metadata, { labels: { team: 'a' } });
  assert.equal(templateHash(loaded(scaled)), hash);

  const changed = minimalDeployment();
  changed.spec.template.spec.containers[0]!.command = ['y'];
  assert.notEqual(templateHash(loaded(changed)), hash);
  const relabeled = minimalDeployment();
  relabeled.spec.template.metadata.labels = { app: 'web2' };
  assert.notEqual(templateHash(loaded(relabeled)), hash);
});
