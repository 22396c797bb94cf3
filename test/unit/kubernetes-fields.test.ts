import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKubernetesFields, OUTPUT_PATH } from '../../scripts/gen-kubernetes-fields.ts';
import {
  KUBERNETES_KINDS,
  KUBERNETES_ROOTS,
  KUBERNETES_TYPES,
  KUBERNETES_TYPES_VERSION,
  type FieldType,
} from '../../reconciler/manifests/kubernetes/fields.generated.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HINT = 'kubernetes-types or the generator changed without regenerating: run `npm run gen:kubernetes`';

test('fields.generated.ts matches what the generator produces', async () => {
  const actual = await readFile(path.join(ROOT, OUTPUT_PATH), 'utf8').catch(() => undefined);
  assert.ok(actual !== undefined, `${OUTPUT_PATH} is missing; ${HINT}`);
  assert.ok(actual === generateKubernetesFields(), `${OUTPUT_PATH} is out of date; ${HINT}`);
});

test('generation is deterministic', () => {
  assert.equal(generateKubernetesFields(), generateKubernetesFields());
});

test('the version is the installed package version', async () => {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'node_modules/kubernetes-types/package.json'), 'utf8')) as { version: string };
  assert.equal(KUBERNETES_TYPES_VERSION, pkg.version);
});

function includesAll(apiVersion: string, kinds: string[]): void {
  const known = KUBERNETES_KINDS[apiVersion];
  assert.ok(known, `no apiVersion ${apiVersion}`);
  for (const kind of kinds) assert.ok(known.includes(kind), `${apiVersion} has no kind ${kind}`);
}

test('KUBERNETES_KINDS lists the real groups and kinds', () => {
  includesAll('apps/v1', ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ControllerRevision', 'DeploymentList']);
  includesAll('v1', ['Service', 'ConfigMap', 'Secret', 'Namespace', 'ServiceAccount', 'Pod']);
  includesAll('networking.k8s.io/v1', ['Ingress', 'NetworkPolicy']);
  includesAll('rbac.authorization.k8s.io/v1', ['Role', 'RoleBinding']);
  includesAll('policy/v1', ['PodDisruptionBudget']);
  includesAll('autoscaling/v2', ['HorizontalPodAutoscaler']);
  includesAll('batch/v1', ['Job', 'CronJob']);
  assert.equal(KUBERNETES_KINDS['gantry.dev/v1'], undefined);
  assert.equal(KUBERNETES_KINDS['core/v1'], undefined, "the core group's apiVersion is 'v1'");
  assert.ok(!KUBERNETES_KINDS['v1']!.includes('Deployment'));
});

test('KUBERNETES_ROOTS maps each root kind to its type', () => {
  assert.equal(KUBERNETES_ROOTS['apps/v1/Deployment'], 'apps/v1.Deployment');
  assert.equal(KUBERNETES_ROOTS['v1/Service'], 'core/v1.Service');
  assert.equal(KUBERNETES_ROOTS['batch/v1/CronJob'], 'batch/v1.CronJob');
  assert.equal(KUBERNETES_ROOTS['v1/PersistentVolumeClaim'], 'core/v1.PersistentVolumeClaim');
  for (const [root, type] of Object.entries(KUBERNETES_ROOTS)) {
    assert.ok(KUBERNETES_TYPES[type], `${root} → ${type}, which is not in KUBERNETES_TYPES`);
    const [apiVersion, kind] = [root.slice(0, root.lastIndexOf('/')), root.slice(root.lastIndexOf('/') + 1)];
    assert.ok(KUBERNETES_KINDS[apiVersion]?.includes(kind), `${root} is not in KUBERNETES_KINDS`);
  }
});

test('every type a field names is in the table', () => {
  const check = (where: string, f: FieldType): void => {
    if (typeof f !== 'string') return check(where, 'array' in f ? f.array : f.map);
    if (f !== 'scalar' && f !== 'any') assert.ok(KUBERNETES_TYPES[f], `${where} names ${f}, which is not in KUBERNETES_TYPES`);
  };
  for (const [type, fields] of Object.entries(KUBERNETES_TYPES)) {
    for (const [name, f] of Object.entries(fields)) check(`${type}.${name}`, f);
  }
});

/** The fields of a type; fails when it is not in the table. */
function fields(type: string): Readonly<Record<string, FieldType>> {
  const found = KUBERNETES_TYPES[type];
  assert.ok(found, `no type ${type}`);
  return found;
}

/** Follows fields from a type, stepping through arrays and maps, to the type at the end. */
function walk(type: string, ...path: string[]): FieldType {
  let at: FieldType = type;
  for (const name of path) {
    while (typeof at !== 'string') at = 'array' in at ? at.array : at.map;
    const f: FieldType | undefined = fields(at)[name];
    assert.ok(f !== undefined, `${at} has no field ${name}`);
    at = f;
  }
  return at;
}

const hasFields = (type: string, names: string[]): void => {
  const known = fields(type);
  for (const name of names) assert.ok(name in known, `${type} has no field ${name}`);
};

test('a Deployment reaches its containers and their fields', () => {
  const containers = walk('apps/v1.Deployment', 'spec', 'template', 'spec', 'containers');
  assert.deepEqual(containers, { array: 'core/v1.Container' });
  hasFields('core/v1.Container', ['name', 'image', 'env', 'envFrom', 'resources', 'securityContext', 'lifecycle', 'ports']);
  assert.equal(walk('apps/v1.Deployment', 'spec', 'template', 'metadata'), 'meta/v1.ObjectMeta');
  assert.equal(walk('batch/v1.CronJob', 'spec', 'jobTemplate', 'spec', 'template', 'spec'), 'core/v1.PodSpec');
});

test('Container.resources has limits and requests as maps of scalars', () => {
  assert.equal(fields('core/v1.Container').resources, 'core/v1.ResourceRequirements');
  assert.deepEqual(fields('core/v1.ResourceRequirements').limits, { map: 'scalar' });
  assert.deepEqual(fields('core/v1.ResourceRequirements').requests, { map: 'scalar' });
});

test('PodSpec, ObjectMeta, Service, Secret and ConfigMap have their real fields', () => {
  hasFields('core/v1.PodSpec', ['affinity', 'tolerations', 'serviceAccountName', 'volumes', 'initContainers', 'containers']);
  assert.deepEqual(fields('core/v1.PodSpec').tolerations, { array: 'core/v1.Toleration' });
  hasFields('meta/v1.ObjectMeta', ['labels', 'annotations', 'name', 'namespace']);
  assert.deepEqual(fields('meta/v1.ObjectMeta').labels, { map: 'scalar' });
  assert.deepEqual(fields('meta/v1.ObjectMeta').annotations, { map: 'scalar' });
  hasFields('core/v1.ServiceSpec', ['ports', 'selector', 'type', 'clusterIP']);
  assert.deepEqual(fields('core/v1.ServiceSpec').selector, { map: 'scalar' });
  assert.deepEqual(fields('core/v1.ServiceSpec').ports, { array: 'core/v1.ServicePort' });
  hasFields('core/v1.Secret', ['data', 'stringData', 'type', 'immutable']);
  assert.deepEqual(fields('core/v1.Secret').data, { map: 'scalar' });
  hasFields('core/v1.ConfigMap', ['data', 'binaryData', 'immutable']);
});

test('a misspelled field is not a Kubernetes field', () => {
  assert.ok(!('contianers' in fields('core/v1.PodSpec')));
  assert.ok(!('imagee' in fields('core/v1.Container')));
  assert.ok(!('replica' in fields('apps/v1.DeploymentSpec')));
});

test('IntOrString, Quantity and Time fields are scalars; free-form fields are any', () => {
  assert.equal(fields('core/v1.ServicePort').targetPort, 'scalar');
  assert.equal(fields('apps/v1.RollingUpdateDeployment').maxSurge, 'scalar');
  assert.equal(fields('apps/v1.RollingUpdateDeployment').maxUnavailable, 'scalar');
  assert.equal(fields('core/v1.EmptyDirVolumeSource').sizeLimit, 'scalar');
  assert.equal(fields('meta/v1.ObjectMeta').creationTimestamp, 'scalar');
  assert.equal(fields('meta/v1.ManagedFieldsEntry').fieldsV1, 'any');
});

test('only types reachable from the roots are tabulated', () => {
  assert.equal(KUBERNETES_TYPES['apps/v1.ReplicaSet'], undefined);
  assert.equal(KUBERNETES_TYPES['core/v1.Node'], undefined);
  assert.ok(Object.keys(KUBERNETES_TYPES).every((name) => /^[a-z/0-9]+\.[A-Z]\w*$/.test(name)), 'names are module.Type');
});
