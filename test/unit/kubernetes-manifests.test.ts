import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadManifests, templateHash, type ManifestFile } from '../../reconciler/manifests/index.ts';
import { ignoredBy, parseIgnoreFile } from '../../reconciler/manifests/ignore-file.ts';
import { planMarkdown, planText } from '../../reconciler/preview/plan-report.ts';

/**
 * Kubernetes manifests as they are (issue 12, section 1 and the field rules of section 2): the
 * Kubernetes apiVersions, the deprecated gantry.dev/v1 alias, kinds Kubernetes defines but Gantry
 * does not run (ignored, listed), fields it does not honour (dropped, with a warning), and what
 * Kubernetes does not define (errors), with .gantryignore and gantry.dev/skip to skip files.
 */

const files = (f: Record<string, string>): ManifestFile[] => Object.entries(f).map(([path, content]) => ({ path, content }));
const text = (xs: { toString(): string }[]) => xs.map((x) => x.toString());

const guestbook = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
  creationTimestamp: null
spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: guestbook-ui
  template:
    metadata:
      labels:
        app: guestbook-ui
    spec:
      serviceAccountName: guestbook
      affinity:
        podAntiAffinity: {}
      tolerations:
        - key: dedicated
          operator: Exists
      containers:
        - image: gcr.io/heptio-images/ks-guestbook-demo:0.2
          name: guestbook-ui
          securityContext:
            runAsNonRoot: true
          ports:
            - containerPort: 80
status: {}
`;

test('apps/v1 Deployment and v1 Service load; fields Kubernetes defines but Gantry ignores are warnings at file:line', () => {
  const res = loadManifests(files({
    'guestbook/deploy.yaml': guestbook,
    'guestbook/svc.yaml': 'apiVersion: v1\nkind: Service\nmetadata:\n  name: guestbook-ui\nspec:\n  selector: { app: guestbook-ui }\n  ports:\n    - port: 80\n      targetPort: 80\n',
  }));
  assert.deepEqual(text(res.errors), []);
  assert.deepEqual(res.objects.map((o) => `${o.manifest.apiVersion} ${o.manifest.kind} ${o.manifest.metadata.name}`), ['apps/v1 Deployment guestbook-ui', 'v1 Service guestbook-ui']);
  assert.deepEqual(text(res.warnings), [
    'guestbook/deploy.yaml:5:3 Deployment default/guestbook-ui /metadata/creationTimestamp: ignored: Gantry does not implement /metadata/creationTimestamp',
    'guestbook/deploy.yaml:17:7 Deployment default/guestbook-ui /spec/template/spec/serviceAccountName: ignored: Gantry does not implement /spec/template/spec/serviceAccountName',
    'guestbook/deploy.yaml:18:7 Deployment default/guestbook-ui /spec/template/spec/affinity: ignored: Gantry does not implement /spec/template/spec/affinity',
    'guestbook/deploy.yaml:20:7 Deployment default/guestbook-ui /spec/template/spec/tolerations: ignored: Gantry does not implement /spec/template/spec/tolerations',
    'guestbook/deploy.yaml:26:11 Deployment default/guestbook-ui /spec/template/spec/containers/0/securityContext: ignored: Gantry does not implement /spec/template/spec/containers/0/securityContext',
    'guestbook/deploy.yaml:30:1 Deployment default/guestbook-ui /status: ignored: Gantry does not implement /status',
  ]);
  assert.ok(res.warnings.every((w) => w.code === 'IGNORED_FIELD'));
  // Dropped from what is stored and hashed: the object is what Gantry honours.
  const d = res.objects[0]!.manifest;
  assert.ok(d.kind === 'Deployment');
  assert.equal('affinity' in d.spec.template.spec, false);
  assert.equal('status' in d, false);
});

test('gantry.dev/v1 is the deprecated alias: the same object and template hash, plus a warning', () => {
  const legacy = guestbook.replace('apiVersion: apps/v1', 'apiVersion: gantry.dev/v1');
  const a = loadManifests(files({ 'a.yaml': guestbook }));
  const b = loadManifests(files({ 'a.yaml': legacy }));
  assert.deepEqual(b.errors, []);
  assert.deepEqual(b.objects[0]!.manifest, a.objects[0]!.manifest);
  assert.equal(templateHash(b.objects[0]!.manifest as never), templateHash(a.objects[0]!.manifest as never));
  assert.deepEqual(text(b.warnings.filter((w) => w.code === 'DEPRECATED_API_VERSION')), [
    'a.yaml:1:13 Deployment default/guestbook-ui /apiVersion: apiVersion "gantry.dev/v1" is deprecated: write "apps/v1", the Kubernetes apiVersion of Deployment (read as that)',
  ]);
});

test('kinds Kubernetes defines but Gantry does not run are listed as ignored, never an error, not applied', () => {
  const kinds: Array<[string, string]> = [
    ['v1', 'ServiceAccount'],
    ['rbac.authorization.k8s.io/v1', 'Role'],
    ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
    ['policy/v1', 'PodDisruptionBudget'],
    ['networking.k8s.io/v1', 'Ingress'],
    ['autoscaling/v2', 'HorizontalPodAutoscaler'],
    ['apps/v1', 'StatefulSet'],
  ];
  // Their fields are not checked (Gantry does not read them), and the same name twice is no duplicate.
  const body = kinds.map(([v, k]) => `apiVersion: ${v}\nkind: ${k}\nmetadata:\n  name: web\nspec:\n  anything: [1, 2]\n`).join('---\n');
  const res = loadManifests(files({ 'extras.yaml': body, 'again.yaml': 'apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: web, namespace: not-declared }\n' }));
  assert.deepEqual(text(res.errors), []);
  assert.deepEqual(res.objects, []);
  assert.deepEqual(text(res.warnings), [
    'again.yaml:1:1 ServiceAccount not-declared/web: ignored: Gantry does not run ServiceAccount (v1); the object is listed, not applied',
    ...kinds.map(([v, k], i) => `extras.yaml:${1 + i * 7}:1 ${k} default/web: ignored: Gantry does not run ${k} (${v}); the object is listed, not applied`),
  ]);
  assert.ok(res.warnings.every((w) => w.code === 'IGNORED_KIND'));
  assert.deepEqual(res.warnings.map((w) => w.apiVersion).slice(1, 3), ['v1', 'rbac.authorization.k8s.io/v1']);
});

test('fields Kubernetes does not define are errors with file:line and a suggestion; so are unknown kinds', () => {
  const typo = guestbook.replace('      tolerations:', '      tolerationz:').replace('          ports:', '          portz:');
  const res = loadManifests(files({ 'a.yaml': typo, 'crd.yaml': 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: { name: r }\n' }));
  assert.deepEqual(text(res.errors), [
    'a.yaml:20:7 Deployment default/guestbook-ui /spec/template/spec: unknown field "tolerationz": Kubernetes does not define it here (did you mean "tolerations"?)',
    'a.yaml:28:11 Deployment default/guestbook-ui /spec/template/spec/containers/0: unknown field "portz": Kubernetes does not define it here (did you mean "ports"?)',
    'crd.yaml:2:7 Rollout default/r /kind: Rollout (argoproj.io/v1alpha1) is not a kind Kubernetes defines (a typo, or a custom resource Gantry cannot run); list its file in .gantryignore, or annotate the object gantry.dev/skip: "true", to have Gantry skip it',
  ]);
  assert.deepEqual(res.objects, []);
});

test('.gantryignore and the gantry.dev/skip annotation skip files and objects, listed as skipped', () => {
  const res = loadManifests(files({
    '.gantryignore': '# custom resources: not for Gantry\ncrds/\n*.helm.yaml\n',
    'crds/rollout.yaml': 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\n',
    'apps/chart.helm.yaml': '{{ .Values.broken',
    'apps/web.yaml': guestbook,
    'apps/special/.gantryignore': '!keep.helm.yaml\n',
    'apps/special/keep.helm.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: { name: kept }\n',
    'apps/extra.yaml': 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  annotations: { gantry.dev/skip: "true" }\n',
  }));
  assert.deepEqual(text(res.errors), []);
  assert.deepEqual(res.objects.map((o) => o.manifest.metadata.name), ['kept', 'guestbook-ui']);
  assert.deepEqual(text(res.warnings.filter((w) => w.code === 'SKIPPED')), [
    'apps/chart.helm.yaml:1:1: skipped: matches "*.helm.yaml" in .gantryignore',
    'apps/extra.yaml:1:1 Widget default/w: skipped: Widget (example.com/v1) annotated gantry.dev/skip: "true"',
    'crds/rollout.yaml:1:1: skipped: matches "crds/" in .gantryignore',
  ]);
});

test('.gantryignore patterns: anchoring, directories, ** and negation', () => {
  const root = parseIgnoreFile('.gantryignore', 'crds/\n/top.yaml\nsecret-*.yaml\ndocs/**/*.json\n!secret-ok.yaml\n');
  const nested = parseIgnoreFile('team/.gantryignore', 'local.yaml\n');
  const cases: Array<[string, string | undefined]> = [
    ['crds/a.yaml', 'crds/'],
    ['x/crds/a.yaml', 'crds/'],
    ['crds.yaml', undefined],
    ['top.yaml', '/top.yaml'],
    ['x/top.yaml', undefined],
    ['secret-db.yaml', 'secret-*.yaml'],
    ['a/b/secret-db.yaml', 'secret-*.yaml'],
    ['secret-ok.yaml', undefined],
    ['docs/a/b/c.json', 'docs/**/*.json'],
    ['docs/c.json', 'docs/**/*.json'],
    ['team/local.yaml', 'local.yaml'],
    ['local.yaml', undefined],
  ];
  for (const [file, pattern] of cases) assert.equal(ignoredBy(file, [root, nested])?.pattern, pattern, file);
});

test('the plan lists warnings after the changes, in text and in Markdown', () => {
  const diff = {
    commit: 'a'.repeat(40), base: 'b'.repeat(40), valid: true, errors: [], summary: '+1 ~0 -0',
    warnings: ['sa.yaml:1:1 ServiceAccount default/web: ignored: Gantry does not run ServiceAccount (v1); the object is listed, not applied'], warningCount: 1,
    added: [{ name: 'default/web', changes: ['replicas 1'] }], changed: [], removed: [],
  };
  assert.equal(planText(diff), [
    'commit aaaaaaa against bbbbbbb: +1 ~0 -0',
    '+ Deployment default/web: replicas 1',
    '1 warning(s) (listed, not applied):',
    '  sa.yaml:1:1 ServiceAccount default/web: ignored: Gantry does not run ServiceAccount (v1); the object is listed, not applied',
  ].join('\n'));
  assert.match(planMarkdown(diff), /<details><summary>1 warning\(s\): ignored objects and fields, listed but not applied<\/summary>\n\n```\nsa\.yaml:1:1 ServiceAccount default\/web: ignored: Gantry does not run ServiceAccount \(v1\)/);
});

test('a key of a Kubernetes map that Gantry reads only some keys of is ignored, not an error', () => {
  const withStorage = guestbook.replace('          ports:\n', '          resources:\n            requests: { cpu: 100m, ephemeral-storage: 1Gi }\n          ports:\n');
  const res = loadManifests(files({ 'a.yaml': withStorage }));
  assert.deepEqual(text(res.errors), []);
  assert.ok(text(res.warnings).includes('a.yaml:29:36 Deployment default/guestbook-ui /spec/template/spec/containers/0/resources/requests/ephemeral-storage: ignored: Gantry does not implement /spec/template/spec/containers/0/resources/requests/ephemeral-storage'), text(res.warnings).join('\n'));
});
