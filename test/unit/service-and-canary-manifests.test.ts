import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadManifests } from '../../reconciler/manifests/index.ts';

const lines = (...l: string[]) => l.join('\n') + '\n';
const load = (files: Record<string, string>) => loadManifests(Object.entries(files).map(([path, content]) => ({ path, content })));

test('a Service gets defaults: namespace, targetPort = port, protocol TCP', () => {
  const r = load({ 's.yaml': lines('apiVersion: v1', 'kind: Service', 'metadata: {name: web}', 'spec:', '  selector: {app: web}', '  ports: [{port: 8080}]') });
  assert.deepEqual(r.errors.map(String), []);
  const svc = r.objects[0]!.manifest;
  assert.equal(svc.kind, 'Service');
  if (svc.kind !== 'Service') return;
  assert.equal(svc.metadata.namespace, 'default');
  assert.deepEqual(svc.spec.ports, [{ port: 8080, targetPort: 8080, protocol: 'TCP' }]);
});

const cases: [string, Record<string, string>, string[]][] = [
  [
    'several ports need names, and names and ports are unique',
    { 's.yaml': lines('apiVersion: v1', 'kind: Service', 'metadata: {name: web}', 'spec:', '  selector: {app: web}', '  ports:', '    - {name: a, port: 80}', '    - {name: a, port: 80}', '    - {port: 81}') },
    [
      's.yaml:8:14 Service default/web /spec/ports/1/name: duplicate port name "a" (also /spec/ports/0)',
      's.yaml:8:23 Service default/web /spec/ports/1/port: duplicate port 80 (also /spec/ports/0)',
      "s.yaml:9:7 Service default/web /spec/ports/2: must have property 'name' when a service has several ports",
    ],
  ],
  [
    'a selector is required',
    { 's.yaml': lines('apiVersion: v1', 'kind: Service', 'metadata: {name: web}', 'spec:', '  ports: [{port: 80}]') },
    ["s.yaml:5:3 Service default/web /spec: must have required property 'selector'"],
  ],
  [
    'a Service in an undeclared namespace',
    { 's.yaml': lines('apiVersion: v1', 'kind: Service', 'metadata: {name: web, namespace: shop}', 'spec:', '  selector: {app: web}', '  ports: [{port: 80}]') },
    ['s.yaml:3:34 Service shop/web /metadata/namespace: namespace "shop" is not declared by any Namespace manifest'],
  ],
  [
    'canary steps only with type Canary; durations are checked',
    {
      'd.yaml': lines(
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: {name: web}',
        'spec:',
        '  strategy: {type: RollingUpdate, steps: [{setWeight: 20}]}',
        '  template:',
        '    metadata: {labels: {app: web}}',
        '    spec: {containers: [{name: c, command: [sleep, "1"]}]}',
        '---',
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: {name: api}',
        'spec:',
        '  strategy: {type: Canary, steps: [{pause: {duration: soon}}]}',
        '  template:',
        '    metadata: {labels: {app: api}}',
        '    spec: {containers: [{name: c, command: [sleep, "1"]}]}',
      ),
    },
    [],
  ],
];

for (const [name, files, want] of cases) {
  test(`error: ${name}`, () => {
    const errors = load(files).errors.map(String);
    if (want.length > 0) assert.deepEqual(errors.map((e) => e.split(' (did you mean')[0]), want);
    else {
      assert.equal(errors.length, 2, errors.join('\n'));
      assert.ok(errors.some((e) => /Deployment default\/api \/spec\/strategy\/steps\/0\/pause\/duration: must be a duration such as "30s", "5m" or "1h"/.test(e)), errors.join('\n'));
      assert.ok(errors.includes('d.yaml:5:35 Deployment default/web /spec/strategy/steps: must only be set when the strategy type is Canary'), errors.join('\n'));
    }
  });
}
