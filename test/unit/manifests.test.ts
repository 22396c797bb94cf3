import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadManifests, type ManifestErrorCode, type ManifestFile } from '../../reconciler/manifests/index.ts';

const lines = (...l: string[]) => `${l.join('\n')}\n`;

/** A valid deployment; `spec` lines are indented under `spec:` (line 5 onwards). */
function deployment(name: string, ...spec: string[]): string {
  return lines('apiVersion: gantry.dev/v1', 'kind: Deployment', 'metadata:', `  name: ${name}`, 'spec:', ...spec);
}

const TEMPLATE = [
  '  template:',
  '    metadata:',
  '      labels: {app: web}',
  '    spec:',
  '      containers:',
  '        - name: web',
  '          command: [node, server.js]',
];

const namespace = (name: string) => lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata:', `  name: ${name}`);

interface ErrorCase {
  name: string;
  files: Record<string, string | Uint8Array>;
  options?: Parameters<typeof loadManifests>[1];
  errors: [ManifestErrorCode, string][];
}

const errorCases: ErrorCase[] = [
  {
    name: 'YAML syntax error, with the position the yaml library gives',
    files: { 'apps/web.yaml': lines('apiVersion: gantry.dev/v1', 'kind: [Deployment', 'metadata: {}') },
    errors: [['YAML_SYNTAX', 'apps/web.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]']],
  },
  {
    name: 'duplicate keys in a mapping',
    files: { 'a.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'kind: Namespace') },
    errors: [['YAML_SYNTAX', 'a.yaml:3:1: Map keys must be unique']],
  },
  {
    name: 'a document that is not a mapping',
    files: { 'a.yaml': lines('- apiVersion: gantry.dev/v1', '  kind: Namespace') },
    errors: [['SCHEMA', 'a.yaml:1:1: a manifest must be a mapping with apiVersion, kind and metadata, not a sequence']],
  },
  {
    name: 'a scalar document',
    files: { 'a.yaml': lines('just text') },
    errors: [['SCHEMA', 'a.yaml:1:1: a manifest must be a mapping with apiVersion, kind and metadata, not a string']],
  },
  {
    name: 'missing apiVersion',
    files: { 'a.yaml': lines('kind: Namespace', 'metadata: {name: team-a}') },
    errors: [['UNKNOWN_API_VERSION', `a.yaml:1:1 Namespace team-a: must have required property 'apiVersion' (such as "apps/v1" or "v1")`]],
  },
  {
    name: 'an apiVersion that is not the kind\'s',
    files: { 'a.yaml': lines('apiVersion: apps/v1beta2', 'kind: Deployment', 'metadata: {name: web}') },
    errors: [['UNKNOWN_API_VERSION', 'a.yaml:1:13 Deployment default/web /apiVersion: unknown apiVersion "apps/v1beta2" for Deployment; expected "apps/v1"']],
  },
  {
    name: 'an apiVersion Kubernetes does not define, for a kind it does',
    files: { 'a.yaml': lines('apiVersion: networking/v1', 'kind: Ingress', 'metadata: {name: web}') },
    errors: [['UNKNOWN_API_VERSION', 'a.yaml:1:13 Ingress default/web /apiVersion: Kubernetes defines no apiVersion "networking/v1"; Ingress is "networking.k8s.io/v1"']],
  },
  {
    name: 'a misspelled kind, with a suggestion and the way to skip a file',
    files: { 'a.yaml': lines('apiVersion: apps/v1', 'kind: Deploymnet', 'metadata: {name: web}') },
    errors: [['UNKNOWN_KIND', 'a.yaml:2:7 Deploymnet default/web /kind: Kubernetes defines no kind "Deploymnet" in apps/v1 (did you mean "Deployment"?); list its file in .gantryignore, or annotate the object gantry.dev/skip: "true", to have Gantry skip it']],
  },
  {
    name: 'a custom resource is an error by default',
    files: { 'a.yaml': lines('apiVersion: argoproj.io/v1alpha1', 'kind: Rollout', 'metadata: {name: web}') },
    errors: [['UNKNOWN_KIND', 'a.yaml:2:7 Rollout default/web /kind: Rollout (argoproj.io/v1alpha1) is not a kind Kubernetes defines (a typo, or a custom resource Gantry cannot run); list its file in .gantryignore, or annotate the object gantry.dev/skip: "true", to have Gantry skip it']],
  },
  {
    name: 'an unknown kind in the deprecated dialect lists its kinds',
    files: { 'a.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Ingress', 'metadata: {name: web}') },
    errors: [['UNKNOWN_KIND', 'a.yaml:2:7 Ingress default/web /kind: unknown kind "Ingress" in gantry.dev/v1 (deprecated), which has only Namespace, ConfigMap, Secret, Deployment, Service']],
  },
  {
    name: 'missing kind',
    files: { 'a.yaml': lines('apiVersion: gantry.dev/v1', 'metadata: {name: web}') },
    errors: [['UNKNOWN_KIND', "a.yaml:1:1: must have required property 'kind' (Gantry runs Namespace, ConfigMap, Secret, Deployment, Service)"]],
  },
  {
    name: 'duplicate objects name both files and lines',
    files: {
      'apps/web.yaml': lines('# the web app', '---', ...deployment('web', ...TEMPLATE).trimEnd().split('\n')),
      'apps/other.yaml': deployment('web', ...TEMPLATE),
    },
    errors: [['DUPLICATE', 'apps/web.yaml:3:1 Deployment default/web: duplicate Deployment default/web, also defined at apps/other.yaml:1:1']],
  },
  {
    name: 'duplicate namespaces',
    files: { 'ns.yaml': `${namespace('team-a')}---\n${namespace('team-a')}` },
    errors: [['DUPLICATE', 'ns.yaml:6:1 Namespace team-a: duplicate Namespace team-a, also defined at ns.yaml:1:1']],
  },
  {
    name: 'more aliases than the limit',
    files: {
      'a.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata:', '  name: &n team-a', '  labels: {a: *n, b: *n, c: *n}'),
    },
    options: { maxAliasCount: 2 },
    errors: [['ALIAS_LIMIT', 'a.yaml:5:29: document has more than 2 aliases']],
  },
  {
    name: 'an alias bomb: few aliases, huge expansion',
    files: {
      'bomb.yaml': lines(
        'a: &a [x, x, x, x, x, x, x, x, x]',
        'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
        'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
        'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      ),
    },
    errors: [['ALIAS_LIMIT', 'bomb.yaml:1:1: aliases expand beyond the limit of 100 (an alias bomb?)']],
  },
  {
    name: 'an alias to an unknown anchor',
    files: { 'a.yaml': lines('apiVersion: gantry.dev/v1', 'kind: *kind') },
    errors: [['YAML_SYNTAX', 'a.yaml:2:7: unresolved alias *kind']],
  },
  {
    name: 'files over the size cap are rejected without parsing',
    files: { 'big.yaml': `${'#'.repeat(2048)}\n: not yaml [` },
    options: { maxFileBytes: 1024 },
    errors: [['FILE_TOO_LARGE', 'big.yaml:1:1: file is 2061 bytes (2.0Ki), larger than the limit of 1024 bytes (1Ki)']],
  },
  {
    name: 'invalid UTF-8',
    files: { 'a.yaml': new Uint8Array([0x6b, 0x3a, 0x20, 0xff, 0xfe]) },
    errors: [['YAML_SYNTAX', 'a.yaml:1:1: file is not valid UTF-8 text']],
  },
  {
    name: 'a deployment in an undeclared namespace',
    files: { 'a.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Deployment', 'metadata:', '  name: web', '  namespace: team-a', 'spec:', ...TEMPLATE) },
    errors: [['NAMESPACE_NOT_DECLARED', 'a.yaml:5:14 Deployment team-a/web /metadata/namespace: namespace "team-a" is not declared by any Namespace manifest']],
  },
  {
    name: 'schema errors: type, enum, unknown property with a suggestion',
    files: {
      'apps/web.yaml': deployment(
        'web',
        '  replicas: two',
        '  replicaz: 2',
        '  template:',
        '    metadata:',
        '      labels: {app: web}',
        '    spec:',
        '      restartPolicy: Sometimes',
        '      containers: [{name: web, command: [x]}]',
      ),
    },
    errors: [
      ['SCHEMA', 'apps/web.yaml:6:13 Deployment default/web /spec/replicas: must be integer'],
      ['SCHEMA', 'apps/web.yaml:7:3 Deployment default/web /spec: unknown field "replicaz": Kubernetes does not define it here (did you mean "replicas"?)'],
      ['SCHEMA', 'apps/web.yaml:12:22 Deployment default/web /spec/template/spec/restartPolicy: must be equal to one of: Always, OnFailure, Never'],
    ],
  },
  {
    name: 'missing required properties point at the parent object',
    files: { 'a.yaml': deployment('web', '  template:', '    metadata: {labels: {app: web}}', '    spec:', '      nodeSelector: {}') },
    errors: [['SCHEMA', "a.yaml:9:7 Deployment default/web /spec/template/spec: must have required property 'containers'"]],
  },
  {
    name: 'a container needs a command when it has no image',
    files: { 'a.yaml': deployment('web', '  template:', '    metadata: {labels: {app: web}}', '    spec:', '      containers:', '        - name: web') },
    errors: [
      [
        'SCHEMA',
        "a.yaml:10:11 Deployment default/web /spec/template/spec/containers/0: must have required property 'command' (a container without an image must have a command)",
      ],
    ],
  },
  {
    name: 'names must be DNS labels (a namespace on a Namespace is ignored, as Kubernetes does)',
    files: { 'ns.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata:', '  name: Team_A', '  namespace: default') },
    errors: [
      ['SCHEMA', "ns.yaml:4:9 Namespace Team_A /metadata/name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"],
    ],
  },
  {
    name: 'label keys and values',
    files: { 'ns.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata:', '  name: team-a', '  labels:', '    Bad Key: x', '    ok: 1') },
    errors: [
      [
        'SCHEMA',
        `ns.yaml:6:5 Namespace team-a /metadata/labels: key "Bad Key" must be a label key: an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
      ],
      ['SCHEMA', 'ns.yaml:7:9 Namespace team-a /metadata/labels/ok: must be string'],
    ],
  },
  {
    name: 'invalid cpu and memory quantities',
    files: {
      'a.yaml': deployment(
        'web',
        '  template:',
        '    metadata: {labels: {app: web}}',
        '    spec:',
        '      containers:',
        '        - {name: a, command: [x], resources: {cpu: 2 cores, memory: 64MB}}',
        '        - {name: b, command: [x], resources: {cpu: 0.0001, memory: 1.5Ki}}',
      ),
    },
    errors: [
      ['SCHEMA', 'a.yaml:10:52 Deployment default/web /spec/template/spec/containers/0/resources/cpu: must be a cpu quantity such as "250m", "1" or "0.5"'],
      ['SCHEMA', 'a.yaml:10:69 Deployment default/web /spec/template/spec/containers/0/resources/memory: must be a memory quantity such as "128974848", "64Mi" or "1G"'],
    ],
  },
  {
    name: 'quantities the schema accepts but that do not parse',
    files: {
      'a.yaml': deployment(
        'web',
        '  template:',
        '    metadata: {labels: {app: web}}',
        '    spec:',
        '      containers:',
        '        - {name: b, command: [x], resources: {cpu: 0.0001, memory: 1.3Ki}}',
      ),
    },
    errors: [
      ['INVALID_VALUE', 'a.yaml:10:52 Deployment default/web /spec/template/spec/containers/0/resources/cpu: invalid cpu quantity 0.0001: finer than 1m (one thousandth of a core)'],
      ['INVALID_VALUE', 'a.yaml:10:68 Deployment default/web /spec/template/spec/containers/0/resources/memory: invalid memory quantity "1.3Ki": not a whole number of bytes'],
    ],
  },
  {
    name: 'selector labels must match the template labels',
    files: {
      'a.yaml': deployment(
        'web',
        '  selector:',
        '    matchLabels: {app: api, app.kubernetes.io/part-of: shop}',
        ...TEMPLATE,
      ),
    },
    errors: [
      ['INVALID_VALUE', "a.yaml:7:24 Deployment default/web /spec/selector/matchLabels/app: selector label app=api does not match the template's label app=web"],
      [
        'INVALID_VALUE',
        "a.yaml:7:56 Deployment default/web /spec/selector/matchLabels/app.kubernetes.io~1part-of: selector label app.kubernetes.io/part-of=shop is not among the template's labels",
      ],
    ],
  },
  {
    name: 'container names, port names and container ports are unique',
    files: {
      'a.yaml': deployment(
        'web',
        '  template:',
        '    metadata: {labels: {app: web}}',
        '    spec:',
        '      containers:',
        '        - name: web',
        '          command: [x]',
        '          ports: [{name: http, containerPort: 80}, {name: http, containerPort: 80}]',
        '        - {name: web, image: nginx}',
      ),
    },
    errors: [
      ['INVALID_VALUE', 'a.yaml:12:59 Deployment default/web /spec/template/spec/containers/0/ports/1/name: duplicate port name "http" in container "web", also used by /spec/template/spec/containers/0/ports/0'],
      ['INVALID_VALUE', 'a.yaml:12:80 Deployment default/web /spec/template/spec/containers/0/ports/1/containerPort: duplicate containerPort 80 in container "web", also used by /spec/template/spec/containers/0/ports/0'],
      ['INVALID_VALUE', 'a.yaml:13:18 Deployment default/web /spec/template/spec/containers/1/name: duplicate container name "web", also used by /spec/template/spec/containers/0'],
    ],
  },
  {
    name: 'rolling update settings',
    files: {
      'a.yaml': deployment('web', '  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}', ...TEMPLATE),
      'b.yaml': deployment('api', '  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}}', ...TEMPLATE),
      'c.yaml': deployment('db', '  strategy: {rollingUpdate: {maxUnavailable: 150%, maxSurge: 10}}', ...TEMPLATE),
    },
    errors: [
      ['INVALID_VALUE', 'a.yaml:6:30 Deployment default/web /spec/strategy/rollingUpdate: must not be set when the strategy type is Recreate'],
      ['INVALID_VALUE', 'b.yaml:6:29 Deployment default/api /spec/strategy/rollingUpdate: maxSurge and maxUnavailable must not both be 0: the rollout could never replace an instance'],
      ['INVALID_VALUE', 'c.yaml:6:46 Deployment default/db /spec/strategy/rollingUpdate/maxUnavailable: must not be more than 100%'],
    ],
  },
  {
    name: 'errors in JSON files point into the JSON',
    files: {
      'apps/web.json': JSON.stringify(
        [
          { apiVersion: 'gantry.dev/v1', kind: 'Namespace', metadata: { name: 'team-a' } },
          { apiVersion: 'gantry.dev/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'team-a' }, spec: { replicas: -1 } },
        ],
        null,
        2,
      ),
    },
    errors: [
      ['SCHEMA', "apps/web.json:16:13 Deployment team-a/web /spec: must have required property 'template'"],
      ['SCHEMA', 'apps/web.json:17:19 Deployment team-a/web /spec/replicas: must be >= 0'],
    ],
  },
  {
    name: 'a JSON file with more than one document',
    files: { 'a.json': '{"a": 1}\n---\n{"b": 2}\n' },
    errors: [['YAML_SYNTAX', 'a.json:2:1: a JSON file must hold one object or an array of objects']],
  },
  {
    name: 'one bad document never hides errors in the others',
    files: {
      'all.yaml': [
        lines('apiVersion: gantry.dev/v1', 'kind: [Namespace'),
        lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata: {name: ok}'),
        lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata: {name: BAD}'),
      ].join('---\n'),
      'other.yaml': lines('kind: Ingress'),
    },
    errors: [
      ['YAML_SYNTAX', 'all.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]'],
      ['SCHEMA', "all.yaml:10:18 Namespace BAD /metadata/name: must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"],
      ['UNKNOWN_API_VERSION', `other.yaml:1:1 Ingress: must have required property 'apiVersion' (such as "apps/v1" or "v1")`],
    ],
  },
];

function toFiles(files: Record<string, string | Uint8Array>): ManifestFile[] {
  return Object.entries(files).map(([path, content]) => ({ path, content }));
}

for (const c of errorCases) {
  test(`error: ${c.name}`, () => {
    const result = loadManifests(toFiles(c.files), c.options);
    assert.deepEqual(
      result.errors.map((e) => [e.code, e.toString()]),
      c.errors,
    );
  });
}

test('errors serialize to JSON with their one-line text', () => {
  const { errors } = loadManifests(toFiles({ 'a.yaml': deployment('web', '  replicas: x', ...TEMPLATE) }));
  assert.deepEqual(JSON.parse(JSON.stringify(errors)), [
    {
      code: 'SCHEMA',
      file: 'a.yaml',
      line: 6,
      column: 13,
      kind: 'Deployment',
      namespace: 'default',
      name: 'web',
      pointer: '/spec/replicas',
      message: 'must be integer',
      text: 'a.yaml:6:13 Deployment default/web /spec/replicas: must be integer',
    },
  ]);
});

test('toString stays on one line whatever the user wrote', () => {
  const { errors } = loadManifests(toFiles({ 'a.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata: {name: "a\\nb"}') }));
  assert.equal(errors.length, 1);
  assert.doesNotMatch(errors[0]!.toString(), /\n/);
  assert.match(errors[0]!.toString(), /^a\.yaml:3:18 Namespace a\\nb \/metadata\/name: must be a DNS label/);
});

test('defaults are applied to a minimal deployment', () => {
  const { objects, errors } = loadManifests(toFiles({ 'web.yaml': deployment('web', ...TEMPLATE) }));
  assert.deepEqual(errors, []);
  assert.deepEqual(objects, [
    {
      file: 'web.yaml',
      line: 1,
      column: 1,
      manifest: {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'default', labels: {}, annotations: {} },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
          minReadySeconds: 0,
          revisionHistoryLimit: 10,
          progressDeadlineSeconds: 600,
          rollback: 'auto',
          template: {
            metadata: { labels: { app: 'web' }, annotations: {} },
            spec: {
              containers: [{ name: 'web', command: ['node', 'server.js'], args: [], env: [], ports: [] }],
              nodeSelector: {},
              restartPolicy: 'Always',
              terminationGracePeriodSeconds: 10,
            },
          },
        },
      },
    },
  ]);
});

test('what the user wrote is kept; defaults only fill gaps', () => {
  const { objects, errors } = loadManifests(
    toFiles({
      'ns.yaml': lines('apiVersion: gantry.dev/v1', 'kind: Namespace', 'metadata: {name: team-a, labels: {tier: x}}', 'spec: {}'),
      'web.yaml': deployment(
        'web',
        '  replicas: 0',
        '  strategy: {type: Recreate}',
        '  selector: {matchLabels: {app: web}}',
        '  template:',
        '    metadata: {labels: {app: web, tier: front}}',
        '    spec:',
        '      restartPolicy: Never',
        '      terminationGracePeriodSeconds: 0',
        '      containers:',
        '        - name: web',
        '          image: nginx',
        '          args: [-g, daemon off;]',
        '          env: [{name: MODE, value: prod}]',
        '          ports: [{name: http, containerPort: 80, protocol: TCP}]',
        '          resources: {cpu: 250m, memory: 64Mi}',
      ),
    }),
  );
  assert.deepEqual(errors, []);
  const [ns, web] = objects.map((o) => o.manifest);
  assert.deepEqual(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { tier: 'x' }, annotations: {} }, spec: {} });
  assert.ok(web?.kind === 'Deployment');
  assert.equal(web.spec.replicas, 0);
  assert.deepEqual(web.spec.strategy, { type: 'Recreate' });
  assert.deepEqual(web.spec.selector, { matchLabels: { app: 'web' } });
  assert.deepEqual(web.spec.template.spec.containers[0], {
    name: 'web',
    image: 'nginx',
    args: ['-g', 'daemon off;'],
    env: [{ name: 'MODE', value: 'prod' }],
    ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }],
    resources: { cpu: '250m', memory: '64Mi' },
  });
  assert.equal(web.spec.template.spec.restartPolicy, 'Never');
  assert.equal(web.spec.template.spec.terminationGracePeriodSeconds, 0);
});

test('multi-document YAML, JSON objects and arrays, sorted by kind, namespace and name', () => {
  const { objects, errors } = loadManifests(
    toFiles({
      'z/apps.yaml': [
        '---\n# empty documents are skipped\n',
        deployment('web', ...TEMPLATE).replace('metadata:\n', 'metadata:\n  namespace: team-b\n'),
        deployment('api', ...TEMPLATE),
        '',
      ].join('---\n'),
      'a/namespaces.json': JSON.stringify([
        { apiVersion: 'gantry.dev/v1', kind: 'Namespace', metadata: { name: 'team-b' } },
        { apiVersion: 'gantry.dev/v1', kind: 'Namespace', metadata: { name: 'team-a' } },
      ]),
      'b/one.json': JSON.stringify({
        apiVersion: 'gantry.dev/v1',
        kind: 'Deployment',
        metadata: { name: 'db', namespace: 'team-a' },
        spec: { template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'postgres' }] } } },
      }),
    }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(
    objects.map((o) => `${o.file}:${o.line}:${o.column} ${o.manifest.kind} ${o.manifest.kind === 'Deployment' ? `${o.manifest.metadata.namespace}/` : ''}${o.manifest.metadata.name}`),
    [
      'a/namespaces.json:1:81 Namespace team-a',
      'a/namespaces.json:1:2 Namespace team-b',
      'z/apps.yaml:18:1 Deployment default/api',
      'b/one.json:1:1 Deployment team-a/db',
      'z/apps.yaml:4:1 Deployment team-b/web',
    ],
  );
});

test('files that are not .yaml, .yml or .json are ignored', () => {
  const { objects, errors } = loadManifests(
    toFiles({
      'README.md': '# not a manifest: [',
      'apps/notes.txt': 'kind: Service',
      'apps/web.yaml.orig': 'kind: Service',
      'apps/ns.yml': namespace('team-a'),
    }),
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(
    objects.map((o) => o.file),
    ['apps/ns.yml'],
  );
});

test('an empty file, or one with only comments, holds no manifests', () => {
  const result = loadManifests(toFiles({ 'a.yaml': '', 'b.yaml': '# nothing yet\n', 'c.yaml': '---\n---\n' }));
  assert.deepEqual(result, { objects: [], errors: [], warnings: [] });
});

test('YAML anchors and merge keys work, and manifests do not share objects', () => {
  const { objects, errors } = loadManifests(
    toFiles({
      'a.yaml': deployment(
        'web',
        '  template:',
        '    metadata: {labels: {app: web}}',
        '    spec:',
        '      containers:',
        '        - &base {name: a, command: [x], env: &env [{name: A, value: "1"}]}',
        '        - <<: *base',
        '          name: b',
        '          env: *env',
      ),
    }),
  );
  assert.deepEqual(errors, []);
  const d = objects[0]!.manifest;
  assert.ok(d.kind === 'Deployment');
  const [a, b] = d.spec.template.spec.containers;
  assert.deepEqual(b, { name: 'b', command: ['x'], env: [{ name: 'A', value: '1' }], args: [], ports: [] });
  assert.notEqual(a.env, b!.env);
});

test('errors inside merged or aliased values point where the value was written', () => {
  const { errors } = loadManifests(
    toFiles({
      'a.yaml': deployment(
        'web',
        '  template:',
        '    metadata: {labels: {app: web}}',
        '    spec:',
        '      containers:',
        '        - &base {name: a, command: [x], ports: [{containerPort: 0}]}',
        '        - <<: *base',
        '          name: b',
      ),
    }),
  );
  assert.deepEqual(
    errors.map((e) => e.toString()),
    [
      'a.yaml:10:65 Deployment default/web /spec/template/spec/containers/0/ports/0/containerPort: must be >= 1',
      'a.yaml:10:65 Deployment default/web /spec/template/spec/containers/1/ports/0/containerPort: must be >= 1',
    ],
  );
});
