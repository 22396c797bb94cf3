import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadManifests, type ManifestFile } from '../../reconciler/manifests/index.ts';
import { buildDesiredState, diffDesired } from '../../reconciler/desired/desired-state.ts';
import { newInstanceRecord } from '../../reconciler/controller/deployment-reconciler.ts';
import { referencedVersions } from '../../state/records/config.ts';

/**
 * spec.template.spec.imagePullSecrets in the reconciler: each named Secret checked against the
 * commit (in the namespace, of a registry-credentials type, with its key and a readable content),
 * errors at file:line that never show a value, and records that name the exact version, part of
 * the template hash (a rotated pull secret rolls) and of what the config GC keeps.
 */

const PASSWORD = 'pull-pa55-never-shown';
const files = (f: Record<string, string>): ManifestFile[] => Object.entries(f).map(([path, content]) => ({ path, content }));
const text = (xs: { toString(): string }[]) => xs.map((x) => x.toString());
const b64 = (s: string) => Buffer.from(s).toString('base64');
const config = (password = PASSWORD) => JSON.stringify({ auths: { 'registry.example.com': { username: 'u', password } } });

const secret = (name: string, type: string, data: Record<string, string>, namespace = 'default') => `apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: ${namespace} }
type: ${type}
data:
${Object.entries(data).map(([k, v]) => `  ${k}: ${b64(v)}`).join('\n') || '  {}'}
`;
const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: other }\n';
const deployment = (name: string, pullSecrets: string[] | undefined) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  template:
    metadata: { labels: { app: ${name} } }
    spec:
${pullSecrets ? `      imagePullSecrets:\n${pullSecrets.map((s) => `        - name: ${s}`).join('\n')}\n` : ''}      containers:
        - name: main
          image: registry.example.com/team/app:1
          command: [sleep, "1000"]
`;

test('loader: each imagePullSecret must be a registry-credentials Secret of the namespace in the commit; errors at file:line name no value', () => {
  const cases: { name: string; files: Record<string, string>; errors: string[] }[] = [
    { name: 'dockerconfigjson', files: { 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': config() }) }, errors: [] },
    { name: 'legacy dockercfg', files: { 's.yaml': secret('regcred', 'kubernetes.io/dockercfg', { '.dockercfg': JSON.stringify({ 'r.io': { auth: b64('u:p') } }) }) }, errors: [] },
    { name: 'missing', files: {}, errors: ["web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred is not defined in this commit (an image pull secret must be in the repository, in the deployment's namespace)"] },
    { name: 'in another namespace only', files: { 'ns.yaml': NS, 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': config() }, 'other') }, errors: ["web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred is not defined in this commit (an image pull secret must be in the repository, in the deployment's namespace)"] },
    { name: 'a ConfigMap of that name', files: { 'cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: regcred }\ndata: { a: b }\n' }, errors: ["web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred is not defined in this commit (an image pull secret must be in the repository, in the deployment's namespace)"] },
    { name: 'Opaque', files: { 's.yaml': secret('regcred', 'Opaque', { '.dockerconfigjson': config() }) }, errors: ['web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred has type Opaque; an image pull secret must be kubernetes.io/dockerconfigjson with key .dockerconfigjson, or kubernetes.io/dockercfg with key .dockercfg'] },
    { name: 'the other type\'s key', files: { 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockercfg': config() }) }, errors: ['web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred (type kubernetes.io/dockerconfigjson) has no key .dockerconfigjson (its keys: .dockercfg)'] },
    { name: 'not JSON', files: { 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': `{"auths": {"r.io": {"password": "${PASSWORD}"` }) }, errors: ['web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred: key .dockerconfigjson is not valid JSON (the content is not shown)'] },
    { name: 'no auths', files: { 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': JSON.stringify({ [PASSWORD]: 1 }) }) }, errors: ['web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred: key .dockerconfigjson has no "auths" object'] },
    { name: 'an entry that is not an object', files: { 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': JSON.stringify({ auths: { 'r.io': PASSWORD } }) }) }, errors: ['web.yaml:9:17 Deployment default/web /spec/template/spec/imagePullSecrets/0/name: Secret default/regcred: key .dockerconfigjson has an entry that is not an object (registry "r.io")'] },
  ];
  for (const c of cases) {
    const res = loadManifests(files({ ...c.files, 'web.yaml': deployment('web', ['regcred']) }));
    assert.deepEqual(text(res.errors), c.errors, c.name);
    for (const e of res.errors) {
      assert.equal(e.code, /is not defined/.test(e.message) ? 'REFERENCE_NOT_FOUND' : 'INVALID_VALUE', c.name);
      assert.ok(!e.toString().includes(PASSWORD), `${c.name}: a value in ${e}`);
    }
    assert.equal(res.objects.some((o) => o.manifest.kind === 'Deployment'), c.errors.length === 0, c.name);
  }
  // Honoured now, so no "ignored" warning; its entries are LocalObjectReferences, strictly.
  const ok = loadManifests(files({ 's.yaml': secret('regcred', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': config() }), 'web.yaml': deployment('web', ['regcred']) }));
  assert.deepEqual(text(ok.warnings), []);
  const typo = loadManifests(files({ 'web.yaml': deployment('web', ['regcred']).replace('- name: regcred', '- nam: regcred') }));
  assert.match(text(typo.errors).join('\n'), /imagePullSecrets\/0.*nam/);
});

function desired(f: Record<string, string>) {
  const res = loadManifests(files(f));
  assert.deepEqual(text(res.errors), []);
  return buildDesiredState(res.objects, 'c'.repeat(40), []);
}

test('records: the pull secrets at their versions, in the template hash and configRefs; a rotation rolls exactly their users', () => {
  const base = {
    'a.yaml': secret('a', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': config() }),
    'b.yaml': secret('b', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': config('another') }),
    'web.yaml': deployment('web', ['b', 'a', 'b']),
    'plain.yaml': deployment('plain', undefined),
  };
  const before = desired(base);
  const version = (s: typeof before, name: string) => s.configs!.find((c) => c.name === name)!.version;
  const [plain, web] = before.deployments;
  // In the order written (the agent tries them so), each once.
  assert.deepEqual(web!.template.imagePullSecrets, [{ name: 'b', version: version(before, 'b') }, { name: 'a', version: version(before, 'a') }]);
  assert.deepEqual(web!.configRefs, [`default/Secret/a@${version(before, 'a')}`, `default/Secret/b@${version(before, 'b')}`]);
  assert.equal('imagePullSecrets' in plain!.template, false);
  assert.equal(plain!.configRefs, undefined);
  assert.ok(!JSON.stringify(before.deployments).includes(PASSWORD));

  const after = desired({ ...base, 'a.yaml': secret('a', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': config('rotated') }) });
  assert.notEqual(after.deployments[1]!.templateHash, web!.templateHash);
  assert.equal(after.deployments[0]!.templateHash, plain!.templateHash);
  const diff = diffDesired(before.deployments, after);
  assert.deepEqual(diff.changed.map((c) => [c.after.name, c.changes]), [
    ['web', [`template ${web!.templateHash} -> ${after.deployments[1]!.templateHash} (instances replaced)`, `Secret a ${version(before, 'a').slice(0, 8)} -> ${version(after, 'a').slice(0, 8)}`]],
  ]);

  // Instances carry them (the agent pulls with them); the GC keeps them for every revision.
  const record = newInstanceRecord(web!, { type: 'create', id: 'default.web-x-0', ordinal: 0, templateHash: web!.templateHash }, 0);
  assert.deepEqual(record.imagePullSecrets, web!.template.imagePullSecrets);
  assert.equal('imagePullSecrets' in newInstanceRecord(plain!, { type: 'create', id: 'default.plain-x-0', ordinal: 0, templateHash: plain!.templateHash }, 0), false);
  assert.deepEqual(referencedVersions('default', web!.template.containers, web!.template.imagePullSecrets), web!.configRefs);
});
