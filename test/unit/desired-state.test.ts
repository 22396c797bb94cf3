import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState } from '../../reconciler/desired/desired-state.ts';
import { loadManifests } from '../../reconciler/manifests/index.ts';

/** Records from manifests as loadManifests gives them (normalized): what a sync writes to Redis. */
function desired(yaml: string, current: Parameters<typeof buildDesiredState>[2] = []) {
  const loaded = loadManifests([{ path: 'apps.yaml', content: yaml }]);
  assert.deepEqual(loaded.errors.map(String), []);
  return buildDesiredState(loaded.objects, 'c1', current);
}

const minimal = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: c, command: [sleep, '100'] }]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 80 }]
`;

test('a minimal deployment and service: every default, byte for byte as stored (hashes included)', () => {
  const d = desired(minimal);
  // Key order matters: records are stored as JSON, and a change would rewrite every one of them.
  assert.equal(
    JSON.stringify(d.deployments),
    JSON.stringify([
      {
        namespace: 'default',
        name: 'web',
        commit: 'c1',
        file: 'apps.yaml',
        line: 1,
        generation: 1,
        specHash: '8bf9b275cffbfd81',
        replicas: 1,
        selector: { app: 'web' },
        strategy: { type: 'RollingUpdate', maxSurge: '25%', maxUnavailable: '25%' },
        minReadySeconds: 0,
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
        rollback: 'auto',
        templateHash: '2b0c55cf4d',
        template: {
          labels: { app: 'web' },
          containers: [{ name: 'c', command: ['sleep', '100'], args: [], env: [], ports: [], cpuMilli: 0, memoryBytes: 0 }],
          cpuMilli: 0,
          memoryBytes: 0,
          nodeSelector: {},
          restartPolicy: 'Always',
          runtime: 'process',
          terminationGracePeriodSeconds: 10,
        },
        labels: {},
        annotations: {},
      },
    ]),
  );
  assert.equal(
    JSON.stringify(d.services),
    JSON.stringify([{ namespace: 'default', name: 'web', commit: 'c1', file: 'apps.yaml', line: 10, selector: { app: 'web' }, ports: [{ port: 80, targetPort: 80 }] }]),
  );
});

test('strategies: Recreate and Canary keep the default surge bounds; canary pauses become milliseconds', () => {
  const d = desired(`apiVersion: apps/v1
kind: Deployment
metadata: { name: canary }
spec:
  strategy:
    type: Canary
    steps: [{ setWeight: 25 }, { pause: { duration: 30s } }, { pause: { duration: 2m } }, { pause: { duration: 1h } }, { pause: {} }]
  template:
    metadata: { labels: { app: canary } }
    spec:
      containers: [{ name: c, image: nginx:1 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: recreate }
spec:
  strategy: { type: Recreate }
  template:
    metadata: { labels: { app: recreate } }
    spec:
      containers: [{ name: c, command: [sleep, '1'] }]
`);
  const [canary, recreate] = d.deployments;
  assert.deepEqual(canary!.strategy, {
    type: 'Canary',
    maxSurge: '25%',
    maxUnavailable: '25%',
    steps: [{ setWeight: 25 }, { pause: { durationMs: 30_000 } }, { pause: { durationMs: 120_000 } }, { pause: { durationMs: 3_600_000 } }, { pause: {} }],
  });
  assert.deepEqual(canary!.template.containers[0], { name: 'c', image: 'nginx:1', imagePullPolicy: 'IfNotPresent', command: [], args: [], env: [], ports: [], cpuMilli: 0, memoryBytes: 0 });
  assert.equal(canary!.template.runtime, 'docker');
  assert.deepEqual(recreate!.strategy, { type: 'Recreate', maxSurge: '25%', maxUnavailable: '25%' });
});

test('generations carry over while the spec is unchanged and move when it changes', () => {
  const first = desired(minimal).deployments;
  assert.equal(desired(minimal, first).deployments[0]!.generation, 1);
  const scaled = desired(minimal.replace('spec:\n  template:', 'spec:\n  replicas: 3\n  template:'), first).deployments[0]!;
  assert.equal(scaled.replicas, 3);
  assert.equal(scaled.generation, 2);
  assert.equal(scaled.templateHash, first[0]!.templateHash, 'replicas are outside the template');
});

test('a template with an init container and a preStop hook: the record byte for byte (new fields last, only when written)', () => {
  const d = desired(`apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      terminationGracePeriodSeconds: 30
      initContainers:
        - name: migrate
          image: registry.example.com/web:1
          command: [./migrate, --up]
          resources: { requests: { cpu: "1", memory: 256Mi } }
      containers:
        - name: server
          image: registry.example.com/web:1
          ports: [{ name: http, containerPort: 8080 }]
          resources: { requests: { cpu: 250m, memory: 128Mi } }
          lifecycle:
            preStop: { httpGet: { port: http, path: /drain } }
`).deployments[0]!;
  assert.equal(
    JSON.stringify(d.template),
    JSON.stringify({
      labels: { app: 'web' },
      containers: [
        {
          name: 'server',
          image: 'registry.example.com/web:1',
          imagePullPolicy: 'IfNotPresent',
          command: [],
          args: [],
          env: [],
          ports: [{ name: 'http', containerPort: 8080 }],
          cpuMilli: 250,
          memoryBytes: 128 * 2 ** 20,
          limits: {},
          lifecycle: { preStop: { httpGet: { path: '/drain', port: 8080 } } },
        },
      ],
      // The effective request: the init container's 1 cpu and 256Mi are more than the containers' sum.
      cpuMilli: 1000,
      memoryBytes: 256 * 2 ** 20,
      nodeSelector: {},
      restartPolicy: 'Always',
      runtime: 'docker',
      terminationGracePeriodSeconds: 30,
      initContainers: [{ name: 'migrate', image: 'registry.example.com/web:1', imagePullPolicy: 'IfNotPresent', command: ['./migrate', '--up'], args: [], env: [], ports: [], cpuMilli: 1000, memoryBytes: 256 * 2 ** 20, limits: {} }],
    }),
  );
  assert.equal(d.templateHash, 'ba848d2685');
});
