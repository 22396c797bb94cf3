import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PodFacts } from '../../agents/container-env.ts';
import { dockerMounts, downwardFileText, formatDownwardMap, goQuote, processVolumeEnv, volumeEnvName, type PreparedVolume } from '../../agents/pod-volumes.ts';
import type { MountSpec } from '../../state/records/instance.ts';

/** The pure parts of pod volumes (agents/pod-volumes.ts): how each runtime reaches a prepared volume, and downwardAPI file text. */

const PREPARED: PreparedVolume[] = [
  { name: 'cache', kind: 'emptyDir', hostPath: '/data/i/volumes/cache', tmpfs: false },
  { name: 'scratch', kind: 'emptyDir', hostPath: '/dev/shm/gantry-s/u1/scratch', tmpfs: true, sizeLimitBytes: 1024 },
  { name: 'app-config', kind: 'configMap', hostPath: '/data/i/volumes/app-config', tmpfs: false },
  { name: 'creds', kind: 'secret', hostPath: '/dev/shm/gantry-s/u1/creds', tmpfs: true },
  { name: 'info', kind: 'downwardAPI', hostPath: '/data/i/volumes/info', tmpfs: false },
  { name: 'logs', kind: 'hostPath', hostPath: '/var/log/web:1', tmpfs: false },
];

const mounts = (...m: MountSpec[]) => ({ name: 'main', volumeMounts: m });

test('dockerMounts: binds each volume (or its subPath) at mountPath; configMap, secret and downwardAPI always read-only', () => {
  const cases: [string, MountSpec[], { Source: string; Target: string; ReadOnly: boolean }[]][] = [
    ['no mounts', [], []],
    ['emptyDir read-write', [{ name: 'cache', mountPath: '/tmp/cache' }], [{ Source: '/data/i/volumes/cache', Target: '/tmp/cache', ReadOnly: false }]],
    ['emptyDir readOnly', [{ name: 'cache', mountPath: '/c', readOnly: true }], [{ Source: '/data/i/volumes/cache', Target: '/c', ReadOnly: true }]],
    ['tmpfs emptyDir', [{ name: 'scratch', mountPath: '/scratch' }], [{ Source: '/dev/shm/gantry-s/u1/scratch', Target: '/scratch', ReadOnly: false }]],
    ['configMap without readOnly is read-only', [{ name: 'app-config', mountPath: '/etc/web' }], [{ Source: '/data/i/volumes/app-config', Target: '/etc/web', ReadOnly: true }]],
    ['secret is read-only', [{ name: 'creds', mountPath: '/run/creds' }], [{ Source: '/dev/shm/gantry-s/u1/creds', Target: '/run/creds', ReadOnly: true }]],
    ['downwardAPI is read-only', [{ name: 'info', mountPath: '/etc/podinfo' }], [{ Source: '/data/i/volumes/info', Target: '/etc/podinfo', ReadOnly: true }]],
    ['hostPath with a colon in its path', [{ name: 'logs', mountPath: '/var/log/app' }], [{ Source: '/var/log/web:1', Target: '/var/log/app', ReadOnly: false }]],
    ['subPath joined', [{ name: 'app-config', mountPath: '/etc/web/app.conf', subPath: 'app.conf' }], [{ Source: '/data/i/volumes/app-config/app.conf', Target: '/etc/web/app.conf', ReadOnly: true }]],
    ['nested subPath, normalized', [{ name: 'cache', mountPath: '/x', subPath: 'a/./b/' }], [{ Source: '/data/i/volumes/cache/a/b', Target: '/x', ReadOnly: false }]],
    ['subPath "." is the root', [{ name: 'cache', mountPath: '/x', subPath: '.' }], [{ Source: '/data/i/volumes/cache', Target: '/x', ReadOnly: false }]],
    ['one volume twice', [{ name: 'cache', mountPath: '/a' }, { name: 'cache', mountPath: '/b', subPath: 'b', readOnly: true }], [
      { Source: '/data/i/volumes/cache', Target: '/a', ReadOnly: false },
      { Source: '/data/i/volumes/cache/b', Target: '/b', ReadOnly: true },
    ]],
  ];
  for (const [title, m, expected] of cases) {
    assert.deepEqual(dockerMounts(mounts(...m), PREPARED), expected.map((e) => ({ Type: 'bind', ...e })), title);
  }
  assert.deepEqual(dockerMounts({ name: 'main' }, PREPARED), [], 'a container without volumeMounts');
});

test('dockerMounts and processVolumeEnv refuse a subPath leaving its volume and a volume that was not prepared', () => {
  const cases: [string, MountSpec, RegExp][] = [
    ['.. past the root', { name: 'cache', mountPath: '/x', subPath: '../../etc' }, /^container main: volume cache: subPath "\.\.\/\.\.\/etc" would leave the volume$/],
    ['.. after a name', { name: 'cache', mountPath: '/x', subPath: 'a/../../b' }, /would leave the volume/],
    ['absolute', { name: 'cache', mountPath: '/x', subPath: '/etc' }, /would leave the volume/],
    ['unknown volume', { name: 'nope', mountPath: '/x' }, /^container main: volumeMount \/x names volume nope, which was not prepared$/],
  ];
  for (const [title, m, error] of cases) {
    assert.throws(() => dockerMounts(mounts(m), PREPARED), { message: error }, `dockerMounts: ${title}`);
    assert.throws(() => processVolumeEnv(mounts(m), PREPARED), { message: error }, `processVolumeEnv: ${title}`);
  }
});

test('processVolumeEnv: GANTRY_VOLUME_<NAME> is the host path of each mounted volume, joined with subPath', () => {
  const cases: [string, MountSpec[], Record<string, string>][] = [
    ['none', [], {}],
    ['root of a volume', [{ name: 'cache', mountPath: '/tmp/cache' }], { GANTRY_VOLUME_CACHE: '/data/i/volumes/cache' }],
    ['dashes become underscores', [{ name: 'app-config', mountPath: '/etc/web' }], { GANTRY_VOLUME_APP_CONFIG: '/data/i/volumes/app-config' }],
    ['subPath', [{ name: 'creds', mountPath: '/ignored', subPath: 'db/password' }], { GANTRY_VOLUME_CREDS: '/dev/shm/gantry-s/u1/creds/db/password' }],
    ['several', [{ name: 'logs', mountPath: '/l' }, { name: 'info', mountPath: '/i', readOnly: true }], { GANTRY_VOLUME_LOGS: '/var/log/web:1', GANTRY_VOLUME_INFO: '/data/i/volumes/info' }],
  ];
  for (const [title, m, expected] of cases) assert.deepEqual(processVolumeEnv(mounts(...m), PREPARED), expected, title);
  assert.deepEqual(
    [volumeEnvName('a'), volumeEnvName('my-vol-2'), volumeEnvName('x9')],
    ['GANTRY_VOLUME_A', 'GANTRY_VOLUME_MY_VOL_2', 'GANTRY_VOLUME_X9'],
  );
});

test("goQuote is Go's strconv.Quote, as the kubelet's %q writes label and annotation values", () => {
  const cases: [string, string][] = [
    ['', '""'],
    ['web', '"web"'],
    ['say "hi"', '"say \\"hi\\""'],
    ['back\\slash', '"back\\\\slash"'],
    ['a\nb\tc\rd', '"a\\nb\\tc\\rd"'],
    ['\x07\b\f\v', '"\\a\\b\\f\\v"'],
    ['\0\x1b\x7f', '"\\x00\\x1b\\x7f"'],
    ['ünïcödé 日本', '"ünïcödé 日本"'],
    ['😀 ✓', '"😀 ✓"'],
    ['\u00a0', '"\\u00a0"'],
    ['\u0085', '"\\u0085"'],
    ['zero\u200bwidth', '"zero\\u200bwidth"'],
    ['\u{e0001}', '"\\U000e0001"'],
    ['\ud800', '"\ufffd"'],
    ["it's $(x) {}", '"it\'s $(x) {}"'],
  ];
  for (const [input, expected] of cases) assert.equal(goQuote(input), expected, JSON.stringify(input));
});

test('formatDownwardMap: key="value" lines sorted by key, no final newline', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['empty', {}, ''],
    ['one', { app: 'web' }, 'app="web"'],
    ['sorted bytewise', { tier: 'front', app: 'web', 'app.kubernetes.io/name': 'web', Zed: 'z' }, 'Zed="z"\napp="web"\napp.kubernetes.io/name="web"\ntier="front"'],
    ['values escaped', { note: 'line1\nline2 "q"' }, 'note="line1\\nline2 \\"q\\""'],
    ['empty value', { flag: '' }, 'flag=""'],
  ];
  for (const [title, map, expected] of cases) assert.equal(formatDownwardMap(map), expected, title);
});

test('downwardFileText: every fieldPath a downwardAPI file can hold', () => {
  const pod: PodFacts = {
    name: 'web-abc-0',
    namespace: 'shop',
    uid: 'uid-1',
    labels: { app: 'web', tier: 'front' },
    annotations: { 'example.com/note': 'a "b"' },
    nodeName: 'node-1',
    podIP: '10.0.0.7',
    hostIP: '127.0.0.2',
  };
  const cases: [string, string | { error: RegExp }][] = [
    ['metadata.name', 'web-abc-0'],
    ['metadata.namespace', 'shop'],
    ['metadata.uid', 'uid-1'],
    ['metadata.labels', 'app="web"\ntier="front"'],
    ['metadata.annotations', 'example.com/note="a \\"b\\""'],
    ["metadata.labels['tier']", 'front'],
    ["metadata.labels['absent']", ''],
    ["metadata.annotations['example.com/note']", 'a "b"'],
    ["metadata.annotations['absent']", ''],
    ['spec.nodeName', 'node-1'],
    ['status.hostIP', '127.0.0.2'],
    ['status.podIP', '10.0.0.7'],
    ['spec.serviceAccountName', { error: /^fieldRef spec\.serviceAccountName is not supported \(supported: metadata\.labels, .*metadata\.annotations\['KEY'\]\)$/ }],
    ['metadata.labels[tier]', { error: /is not supported/ }],
  ];
  for (const [path, expected] of cases) {
    const got = downwardFileText(path, pod);
    if (typeof expected === 'string') assert.equal(got, expected, path);
    else assert.match(typeof got === 'string' ? got : got.error, expected.error, path);
  }
});
