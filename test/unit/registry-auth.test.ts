import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { Readable } from 'node:stream';
import { ImagePuller, type PullEvent } from '../../agents/image-pull.ts';
import { authConfig, isUnauthorized, keyMatches, matchCredentials, parseDockerConfig, parseImage, redactCredentials, type RegistryCredential } from '../../agents/registry-auth.ts';
import type { ConfigVersionRecord } from '../../state/records/config.ts';

/**
 * Image pull secrets on the agent: which registry an image is pulled from, which entries of a
 * dockerconfigjson apply to it (the kubelet's keyring rules), how the Secret is read, and that the
 * puller passes the credentials to the engine and never shows them.
 */

const b64 = (s: string) => Buffer.from(s).toString('base64');
const dockerconfigjson = (auths: unknown) => ({ type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) } });

test('parseImage: the registry and repository of an image, as Docker reads a reference', () => {
  const cases: [string, string, string][] = [
    ['busybox', 'docker.io', 'library/busybox'],
    ['busybox:1.36', 'docker.io', 'library/busybox'],
    ['library/busybox@sha256:abc', 'docker.io', 'library/busybox'],
    ['team/app:v1', 'docker.io', 'team/app'],
    ['docker.io/team/app', 'docker.io', 'team/app'],
    ['index.docker.io/nginx', 'docker.io', 'library/nginx'],
    ['registry-1.docker.io/library/nginx:1', 'docker.io', 'library/nginx'],
    ['127.0.0.1:5000/gantry/pulltest:1', '127.0.0.1:5000', 'gantry/pulltest'],
    ['localhost/app', 'localhost', 'app'],
    ['localhost:5000/a/b/c:tag@sha256:def', 'localhost:5000', 'a/b/c'],
    ['Registry.Example.com/App', 'registry.example.com', 'App'],
    ['gcr.io/project/image', 'gcr.io', 'project/image'],
    ['[::1]:5000/img:2', '[::1]:5000', 'img'],
  ];
  for (const [image, registry, repository] of cases) assert.deepEqual(parseImage(image), { registry, repository }, image);
});

test('keyMatches: the kubelet\'s rules for which dockerconfigjson key applies to an image', () => {
  const cases: [key: string, image: string, matches: boolean][] = [
    ['127.0.0.1:5000', '127.0.0.1:5000/gantry/pulltest:1', true],
    ['http://127.0.0.1:5000', '127.0.0.1:5000/gantry/pulltest:1', true],
    ['https://127.0.0.1:5000/v2/', '127.0.0.1:5000/gantry/pulltest:1', true],
    ['127.0.0.1', '127.0.0.1:5000/gantry/pulltest:1', false], // ports must be equal
    ['127.0.0.1:5001', '127.0.0.1:5000/gantry/pulltest:1', false],
    ['127.0.0.1:5000', '127.0.0.1/gantry/pulltest', false],
    ['registry.example.com', 'registry.example.com/app', true],
    ['REGISTRY.example.com', 'registry.example.com/app', true],
    ['example.com', 'registry.example.com/app', false], // as many labels
    ['*.example.com', 'registry.example.com/app', true],
    ['*.example.com', 'example.com/app', false],
    ['*.example.com', 'a.b.example.com/app', false],
    ['reg*.example.com', 'registry.example.com/app', true],
    ['registry.example.com/team', 'registry.example.com/team/app', true],
    ['registry.example.com/team', 'registry.example.com/teamx/app', false], // whole segments
    ['registry.example.com/team/app', 'registry.example.com/team/app:1', true],
    ['registry.example.com/other', 'registry.example.com/team/app', false],
    ['https://index.docker.io/v1/', 'busybox', true],
    ['index.docker.io', 'team/app', true],
    ['docker.io', 'busybox:latest', true],
    ['registry-1.docker.io', 'docker.io/library/busybox', true],
    ['docker.io/team', 'team/app', true],
    ['docker.io/team', 'other/app', false],
    ['docker.io', 'gcr.io/project/image', false],
    ['gcr.io', 'busybox', false],
    ['', 'busybox', false],
  ];
  for (const [key, image, matches] of cases) assert.equal(keyMatches(key, parseImage(image)), matches, `${key} for ${image}`);
});

test('parseDockerConfig: dockerconfigjson and dockercfg entries, auth or username/password; unreadable entries are named, never shown', () => {
  const cases: { name: string; secret: { type: string; data: Record<string, string> }; credentials: [string, string, string][]; problems: RegExp[] }[] = [
    { name: 'username and password', secret: dockerconfigjson({ 'r.io': { username: 'u', password: 'p' } }), credentials: [['r.io', 'u', 'p']], problems: [] },
    { name: 'auth wins over username/password', secret: dockerconfigjson({ 'r.io': { auth: b64('a:b:c'), username: 'u', password: 'p' } }), credentials: [['r.io', 'a', 'b:c']], problems: [] },
    { name: 'an empty password', secret: dockerconfigjson({ 'r.io': { username: 'u', password: '' } }), credentials: [['r.io', 'u', '']], problems: [] },
    { name: 'several registries', secret: dockerconfigjson({ 'a.io': { auth: b64('x:y') }, 'b.io': { username: 'v', password: 'w' } }), credentials: [['a.io', 'x', 'y'], ['b.io', 'v', 'w']], problems: [] },
    { name: 'legacy dockercfg', secret: { type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify({ 'r.io': { auth: b64('u:p'), email: 'e@x' } })) } }, credentials: [['r.io', 'u', 'p']], problems: [] },
    { name: 'auth without a colon', secret: dockerconfigjson({ 'r.io': { auth: b64('no-colon-here') } }), credentials: [], problems: [/entry for "r\.io" has neither/] },
    { name: 'an entry of nothing', secret: dockerconfigjson({ 'r.io': {} }), credentials: [], problems: [/entry for "r\.io"/] },
    { name: 'no auths', secret: { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"other":1}') } }, credentials: [], problems: [/has no registries/] },
    { name: 'not JSON', secret: { type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths": {"r.io": {"password": "hunter2"') } }, credentials: [], problems: [/is not valid JSON$/] },
    { name: 'no key', secret: { type: 'kubernetes.io/dockerconfigjson', data: {} }, credentials: [], problems: [/has no key \.dockerconfigjson/] },
  ];
  for (const c of cases) {
    const r = parseDockerConfig(c.secret, 'Secret default/regcred');
    assert.deepEqual(r.credentials.map((x) => [x.key, x.username, x.password]), c.credentials, c.name);
    assert.equal(r.problems.length, c.problems.length, `${c.name}: ${r.problems.join('; ')}`);
    c.problems.forEach((p, i) => assert.match(r.problems[i]!, p, c.name));
    for (const p of r.problems) assert.ok(!/hunter2|no-colon-here/.test(p), `${c.name}: a value in ${p}`);
    for (const x of r.credentials) assert.equal(x.source, 'Secret default/regcred');
  }
});

test('matchCredentials: the most specific key first, pull secrets in order among equals, nothing for other registries', () => {
  const cred = (source: string, key: string): RegistryCredential => ({ source, key, username: `${source}@${key}`, password: 'p' });
  const all = [cred('A', 'r.io'), cred('A', 'r.io/team'), cred('B', 'r.io'), cred('B', '*.io'), cred('A', 'other.io'), cred('B', 'r.io/team/app')];
  const cases: [string, string[]][] = [
    ['r.io/team/app:1', ['B@r.io/team/app', 'A@r.io/team', 'A@r.io', 'B@r.io', 'B@*.io']],
    ['r.io/solo', ['A@r.io', 'B@r.io', 'B@*.io']],
    ['x.io/solo', ['B@*.io']],
    // Docker Hub's images are docker.io's, however written: a glob may cover them.
    ['busybox', ['B@*.io']],
    ['quay.io/x/y', ['B@*.io']],
    ['localhost:5000/a', []],
  ];
  for (const [image, want] of cases) assert.deepEqual(matchCredentials(image, all).map((c) => c.username), want, image);
  assert.deepEqual(authConfig(cred('A', 'docker.io'), 'docker.io').serveraddress, 'https://index.docker.io/v1/');
  assert.deepEqual(authConfig(cred('A', 'r.io'), '127.0.0.1:5000'), { username: 'A@r.io', password: 'p', serveraddress: '127.0.0.1:5000' });
});

test('redactCredentials and isUnauthorized: engine messages are shown without credentials, refusals recognised', () => {
  const c: RegistryCredential = { source: 'Secret default/regcred', key: 'r.io', username: 'bob', password: 'hunter22' };
  assert.equal(redactCredentials('login bob:hunter22 / Ym9iOmh1bnRlcjIy / hunter22 refused', [c]), 'login *** / *** / *** refused');
  const refused = ['unauthorized', 'unauthorized: authentication required', 'Head "http://r.io/v2/a/manifests/1": no basic auth credentials', "pull access denied for r.io/a, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", 'received unexpected HTTP status: 401 Unauthorized', 'denied: access forbidden'];
  const other = ['manifest for r.io/a:1 not found: manifest unknown', 'Get "http://r.io/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 'toomanyrequests: rate limit'];
  for (const m of refused) assert.ok(isUnauthorized(m), m);
  for (const m of other) assert.ok(!isUnauthorized(m), m);
});

/** An engine that records each pull's authconfig and answers by the password it got. */
function fakeEngine(accept: (auth: { username?: string; password?: string } | undefined) => 'ok' | 'unauthorized' | 'gone') {
  const pulls: ({ username?: string; password?: string; serveraddress?: string } | undefined)[] = [];
  const engine = {
    getImage: () => ({ inspect: async () => Promise.reject(Object.assign(new Error('no such image'), { statusCode: 404 })) }),
    pull: async (_image: string, opts: { authconfig?: { username?: string; password?: string; serveraddress?: string } }) => {
      pulls.push(opts.authconfig);
      const verdict = accept(opts.authconfig);
      // The engine's own wording of a refusal, with the password echoed to prove it is redacted.
      if (verdict === 'unauthorized') throw Object.assign(new Error('x'), { json: { message: `unauthorized: ${opts.authconfig?.password ?? 'anonymous'}` } });
      if (verdict === 'gone') throw Object.assign(new Error('x'), { json: { message: `manifest unknown (asked with ${opts.authconfig?.password})` } });
      return Readable.from([`${JSON.stringify({ status: 'Pull complete', id: 'l1' })}\n`]);
    },
  };
  return { engine: engine as unknown as Docker, pulls };
}

const record = (auths: unknown): ConfigVersionRecord => ({ kind: 'Secret', namespace: 'shop', name: 'x', version: 'v', commit: 'c', ...dockerconfigjson(auths) });

test('ImagePuller: each matching credential is tried in order; failures name the Secret and registry, never a credential', async () => {
  const secrets = (stored: Record<string, ConfigVersionRecord | undefined>) => ({
    namespace: 'shop',
    refs: Object.keys(stored).map((name) => ({ name, version: `${name}-v1` })),
    read: async (name: string, version: string) => (version === `${name}-v1` ? stored[name] : undefined),
  });
  const image = '127.0.0.1:5000/team/app:1';
  type Case = { name: string; stored: Record<string, ConfigVersionRecord | undefined>; accept: Parameters<typeof fakeEngine>[0]; tried: (string | undefined)[]; error?: string };
  const cases: Case[] = [
    { name: 'the matching entry is used', stored: { a: record({ '127.0.0.1:5000': { username: 'u', password: 'good-pass' }, 'other.io': { username: 'o', password: 'other-pass' } }) }, accept: (a) => (a?.password === 'good-pass' ? 'ok' : 'unauthorized'), tried: ['good-pass'] },
    { name: 'a refused one, then the next pull secret', stored: { a: record({ '127.0.0.1:5000': { username: 'u', password: 'bad-pass' } }), b: record({ '127.0.0.1:5000/team': { username: 'u', password: 'good-pass' } }) }, accept: (a) => (a?.password === 'good-pass' ? 'ok' : 'unauthorized'), tried: ['good-pass'] },
    { name: 'the less specific after a refused specific one', stored: { a: record({ '127.0.0.1:5000': { username: 'u', password: 'good-pass' } }), b: record({ '127.0.0.1:5000/team': { username: 'u', password: 'bad-pass' } }) }, accept: (a) => (a?.password === 'good-pass' ? 'ok' : 'unauthorized'), tried: ['bad-pass', 'good-pass'] },
    { name: 'all refused', stored: { regcred: record({ '127.0.0.1:5000': { username: 'u', password: 'bad-pass' } }) }, accept: () => 'unauthorized', tried: ['bad-pass'], error: `ImagePullFailed: pull of ${image} from 127.0.0.1:5000 failed: unauthorized (credentials from Secret shop/regcred)` },
    { name: 'another failure is not retried with other credentials, and is redacted', stored: { a: record({ '127.0.0.1:5000': { username: 'u', password: 'bad-pass' } }), b: record({ '127.0.0.1:5000': { username: 'u', password: 'good-pass' } }) }, accept: () => 'gone', tried: ['bad-pass'], error: `ImagePullFailed: pull of ${image} from 127.0.0.1:5000 failed: manifest unknown (asked with ***) (credentials from Secret shop/a)` },
    { name: 'no entry for the registry: anonymous', stored: { regcred: record({ 'other.io': { username: 'o', password: 'other-pass' } }) }, accept: (a) => (a ? 'ok' : 'unauthorized'), tried: [undefined], error: `ImagePullFailed: pull of ${image} from 127.0.0.1:5000 failed: unauthorized (no credentials for 127.0.0.1:5000 in imagePullSecrets Secret shop/regcred)` },
    { name: 'a version not stored', stored: { regcred: undefined }, accept: () => 'ok', tried: [], error: 'ImagePullFailed: image pull secret Secret shop/regcred (version regcred-v1) is not stored' },
  ];
  for (const c of cases) {
    const { engine, pulls } = fakeEngine(c.accept);
    const events: PullEvent[] = [];
    const run = new ImagePuller(engine).ensure(image, 'Always', (ev) => events.push(ev), secrets(c.stored));
    if (c.error) await assert.rejects(run, (err: Error) => (assert.equal(err.message, c.error, c.name), true));
    else await run;
    assert.deepEqual(pulls.map((p) => p?.password), c.tried, c.name);
    for (const p of pulls) if (p) assert.equal(p.serveraddress, '127.0.0.1:5000', c.name);
    for (const ev of events) assert.ok(!/-pass/.test(ev.message), `${c.name}: a credential in the event ${ev.message}`);
    if (!c.error) assert.equal(events.at(-1)?.reason, 'Pulled', c.name);
  }
});

test('ImagePuller: without pull secrets, pulls are anonymous and failures read as before', async () => {
  const { engine, pulls } = fakeEngine(() => 'unauthorized');
  await assert.rejects(new ImagePuller(engine).ensure('busybox', 'IfNotPresent', () => {}), { message: 'ImagePullFailed: unauthorized: anonymous' });
  assert.deepEqual(pulls, [undefined]);
});
