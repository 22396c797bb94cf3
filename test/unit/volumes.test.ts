import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDesiredState, diffDesired } from '../../reconciler/desired/desired-state.ts';
import { diffObjects } from '../../reconciler/desired/object-diff.ts';
import { loadManifests } from '../../reconciler/manifests/index.ts';
import { referencedVersions } from '../../state/records/config.ts';
import type { DeploymentRecord } from '../../state/records/deployment.ts';
import type { MountSpec, VolumeSpec } from '../../state/records/instance.ts';

/**
 * Pod volumes on the reconciler side: what a manifest may say (errors at file:line:column), the
 * records the agents will materialize, and how mounted ConfigMaps and Secrets take part in the
 * template hash, the diff and the config GC's keep-set. Pure.
 */

const CONFIGS = `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { app.conf: "port=80" }
binaryData: { logo.png: aGk= }
---
apiVersion: v1
kind: Secret
metadata: { name: db }
stringData: { password: hunter2 }
`;

/**
 * web.yaml: one volume per line from line 9 (flow style, so columns are easy to find), then one
 * container whose mounts are one per line. `image` makes it a Docker container.
 */
function web(volumes: string[], mounts: string[] = [], image?: string): string {
  return [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata: { name: web }',
    'spec:',
    '  template:',
    '    metadata: { labels: { app: web } }',
    '    spec:',
    volumes.length > 0 ? '      volumes:' : '      volumes: []',
    ...volumes.map((v) => `        - ${v}`),
    '      containers:',
    '        - name: main',
    image ? `          image: ${image}` : '          command: ["sleep", "1000"]',
    '          resources: { limits: { memory: 128Mi } }',
    ...(mounts.length > 0 ? ['          volumeMounts:', ...mounts.map((m) => `            - ${m}`)] : []),
    '',
  ].join('\n');
}

function load(text: string, configs = CONFIGS, path = 'web.yaml') {
  return loadManifests([{ path: 'configs.yaml', content: configs }, { path, content: text }]);
}

function record(text: string, configs = CONFIGS): DeploymentRecord {
  const loaded = load(text, configs);
  assert.deepEqual(loaded.errors.map(String), []);
  return buildDesiredState(loaded.objects, 'c1', []).deployments[0]!;
}

/** `web.yaml:L:C Deployment default/web POINTER: MESSAGE`, L and C where `token` is on the line of volume `v<i>` or mount `m<i>`. */
function located(text: string, where: string, token: string, pointer: string, message: string): string {
  const lines = text.split('\n');
  const first = where.startsWith('v') ? lines.indexOf('      volumes:') + 1 : lines.indexOf('          volumeMounts:') + 1;
  const line = first + Number(where.slice(1));
  const column = lines[line]!.indexOf(token) + 1;
  assert.ok(column > 0, `${token} is on line ${line + 1}`);
  return `web.yaml:${line + 1}:${column} Deployment default/web ${pointer}: ${message}`;
}

const V = '/spec/template/spec/volumes';
const M = '/spec/template/spec/containers/0/volumeMounts';

test('records: every volume kind loads into its record (defaults resolved, secrets by version only)', () => {
  const cfg = record(web(['{ name: x, configMap: { name: cfg } }'])).template.volumes![0]! as { configMap: { version: string } };
  const db = record(web(['{ name: x, secret: { secretName: db } }'])).template.volumes![0]! as { secret: { version: string } };
  const cases: [string, string, VolumeSpec][] = [
    ['emptyDir on disk', '{ name: x, emptyDir: {} }', { name: 'x', emptyDir: {} }],
    ['emptyDir "" medium, zero limit (no limit)', '{ name: x, emptyDir: { medium: "", sizeLimit: 0 } }', { name: 'x', emptyDir: {} }],
    ['emptyDir in memory', '{ name: x, emptyDir: { medium: Memory, sizeLimit: 64Mi } }', { name: 'x', emptyDir: { medium: 'Memory', sizeLimitBytes: 64 * 1024 ** 2 } }],
    ['no kind: an emptyDir, as the API server defaults it', '{ name: x }', { name: 'x', emptyDir: {} }],
    ['configMap, every key', '{ name: x, configMap: { name: cfg } }', { name: 'x', configMap: { name: 'cfg', version: cfg.configMap.version, defaultMode: 0o644 } }],
    ['configMap items (binaryData too), modes', '{ name: x, configMap: { name: cfg, defaultMode: 0440, items: [{ key: logo.png, path: img/logo.png, mode: 0444 }, { key: app.conf, path: app.conf }] } }',
      { name: 'x', configMap: { name: 'cfg', version: cfg.configMap.version, items: [{ key: 'logo.png', path: 'img/logo.png', mode: 0o444 }, { key: 'app.conf', path: 'app.conf' }], defaultMode: 0o440 } }],
    ['optional configMap the commit lacks: no version', '{ name: x, configMap: { name: gone, optional: true } }', { name: 'x', configMap: { name: 'gone', defaultMode: 0o644, optional: true } }],
    ['secret', '{ name: x, secret: { secretName: db, defaultMode: 256 } }', { name: 'x', secret: { name: 'db', version: db.secret.version, defaultMode: 0o400 } }],
    ['optional secret key the commit lacks', '{ name: x, secret: { secretName: db, optional: true, items: [{ key: nope, path: p }] } }', { name: 'x', secret: { name: 'db', version: db.secret.version, items: [{ key: 'nope', path: 'p' }], defaultMode: 0o400, optional: true } }],
    ['hostPath, no type', '{ name: x, hostPath: { path: /var/log, type: "" } }', { name: 'x', hostPath: { path: '/var/log' } }],
    ['hostPath, a type', '{ name: x, hostPath: { path: /run/app.sock, type: Socket } }', { name: 'x', hostPath: { path: '/run/app.sock', type: 'Socket' } }],
    ['downwardAPI: fields, and resources computed as for env', '{ name: x, downwardAPI: { defaultMode: 0400, items: [{ path: labels, fieldRef: { fieldPath: metadata.labels } }, { path: mem, mode: 420, resourceFieldRef: { containerName: main, resource: limits.memory, divisor: 1Mi } }] } }',
      { name: 'x', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'mem', mode: 420, value: '128' }], defaultMode: 0o400 } }],
  ];
  for (const [name, volume, expected] of cases) assert.deepEqual(record(web([volume])).template.volumes, [expected], name);
});

test('records: mounts are written as they mean, defaults left out; no volumes, no field', () => {
  const cases: [string, string[], MountSpec[] | undefined][] = [
    ['none', [], undefined],
    ['plain', ['{ name: a, mountPath: /data }'], [{ name: 'a', mountPath: '/data' }]],
    ['false and "" are the defaults', ['{ name: a, mountPath: /data, readOnly: false, subPath: "" }'], [{ name: 'a', mountPath: '/data' }]],
    ['readOnly and subPath', ['{ name: a, mountPath: /data, readOnly: true, subPath: logs/app }'], [{ name: 'a', mountPath: '/data', readOnly: true, subPath: 'logs/app' }]],
  ];
  for (const [name, mounts, expected] of cases) {
    const c = record(web(['{ name: a, emptyDir: {} }'], mounts)).template.containers[0]!;
    assert.deepEqual(c.volumeMounts, expected, name);
    assert.equal('volumeMounts' in c, expected !== undefined, `${name}: the field only when there are mounts`);
  }
  assert.equal('volumes' in record(web([])).template, false, 'no volumes: no field');
});

test('file modes: a leading-zero literal is octal, as Kubernetes (YAML 1.1) reads it; the yaml library alone would say decimal', () => {
  const cases: [string, number][] = [['0400', 0o400], ['0644', 0o644], ['00', 0], ['0o400', 0o400], ['256', 256], ['420', 420], ['400', 400], ['0x1a4', 420]];
  for (const [written, mode] of cases) {
    const spec = record(web([`{ name: x, secret: { secretName: db, defaultMode: ${written}, items: [{ key: password, path: p, mode: ${written} }] } }`])).template.volumes![0]!;
    assert.equal('secret' in spec && spec.secret.defaultMode, mode, `defaultMode: ${written}`);
    assert.equal('secret' in spec && spec.secret.items![0]!.mode, mode, `mode: ${written}`);
  }
  // In block style and through an anchor, too: what counts is the literal where the value is written.
  const block = web([['name: x', 'secret:', '  secretName: db', '  defaultMode: &m 0440', '  items: [{ key: password, path: p, mode: *m }]'].join('\n          ')]);
  const spec = record(block).template.volumes![0]! as { secret: { defaultMode: number; items: { mode: number }[] } };
  assert.deepEqual([spec.secret.defaultMode, spec.secret.items[0]!.mode], [0o440, 0o440]);
  // JSON has no octal: a decimal stays decimal.
  const json = JSON.stringify({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { template: { metadata: { labels: { app: 'web' } }, spec: { volumes: [{ name: 'x', secret: { secretName: 'db', defaultMode: 420 } }], containers: [{ name: 'main', command: ['sleep', '1'] }] } } } }, null, 2);
  const loaded = load(json, CONFIGS, 'web.json');
  assert.deepEqual(loaded.errors.map(String), []);
  assert.deepEqual(buildDesiredState(loaded.objects, 'c1', []).deployments[0]!.template.volumes, [{ name: 'x', secret: { name: 'db', version: (spec.secret as unknown as { version: string }).version, defaultMode: 420 } }]);
});

test('errors name file:line:column, the field and what is wrong', () => {
  type Case = [string, string[], string[], [string, string, string, string][], string?];
  const cases: Case[] = [
    ['duplicate volume name', ['{ name: a, emptyDir: {} }', '{ name: a, emptyDir: {} }'], [], [['v1', 'a,', `${V}/1/name`, `duplicate volume name "a", also used by ${V}/0`]]],
    ['two kinds', ['{ name: a, emptyDir: {}, hostPath: { path: /x } }'], [], [['v0', 'hostPath', `${V}/0`, 'must have exactly one kind, not emptyDir and hostPath']]],
    ['a kind and one Gantry lacks', ['{ name: a, emptyDir: {}, nfs: { server: s, path: /x } }'], [], [['v0', 'nfs', `${V}/0`, 'must have exactly one kind, not emptyDir and nfs']]],
    ['medium', ['{ name: a, emptyDir: { medium: HugePages } }'], [], [['v0', 'HugePages', `${V}/0/emptyDir/medium`, 'must be "" (the node\'s disk) or Memory (a tmpfs); Gantry does not support huge pages']]],
    ['sizeLimit above 1Pi', ['{ name: a, emptyDir: { sizeLimit: 2048Ti } }'], [], [['v0', '2048Ti', `${V}/0/emptyDir/sizeLimit`, 'must be at most 1Pi']]],
    ['mode above 0777, decimal that looks octal', ['{ name: a, configMap: { name: cfg, defaultMode: 644 } }'], [], [['v0', '644', `${V}/0/configMap/defaultMode`, 'must be a file mode between 0 and 0777 (511 in decimal); 644 is not; for the octal mode write 0644 (read as octal, as Kubernetes does) or 420']]],
    ['mode above 0777', ['{ name: a, secret: { secretName: db, items: [{ key: password, path: p, mode: 01000 }] } }'], [], [['v0', '01000', `${V}/0/secret/items/0/mode`, 'must be a file mode between 0 and 0777 (511 in decimal); 512 is not']]],
    ['mode 0800 is not octal', ['{ name: a, secret: { secretName: db, defaultMode: 0800 } }'], [], [['v0', '0800', `${V}/0/secret/defaultMode`, 'must be a file mode between 0 and 0777 (511 in decimal); 800 is not']]],
    ['items: absolute, .., twice', ['{ name: a, configMap: { name: cfg, items: [{ key: app.conf, path: /etc/x }, { key: app.conf, path: a/../../x }, { key: logo.png, path: ./b }, { key: app.conf, path: b }] } }'], [], [
      ['v0', '/etc/x', `${V}/0/configMap/items/0/path`, 'must be a relative path (inside the volume), not start with "/"'],
      ['v0', 'a/../../x', `${V}/0/configMap/items/1/path`, 'must not contain ".." (it could leave the volume)'],
      ['v0', 'b }]', `${V}/0/configMap/items/3/path`, `duplicate path "b", also written by ${V}/0/configMap/items/2`],
    ]],
    ['hostPath relative, device', ['{ name: a, hostPath: { path: var/log } }', '{ name: b, hostPath: { path: /dev/sda, type: BlockDevice } }'], [], [
      ['v0', 'var/log', `${V}/0/hostPath/path`, 'must be an absolute path on the node'],
      ['v1', 'BlockDevice', `${V}/1/hostPath/type`, 'BlockDevice is not supported by Gantry: a container cannot use a device node bound into it without device access, which Gantry does not grant (use "", Directory, DirectoryOrCreate, File, FileOrCreate or Socket)'],
    ]],
    ['hostPath ..', ['{ name: a, hostPath: { path: /var/../etc } }'], [], [['v0', '/var/../etc', `${V}/0/hostPath/path`, 'must not contain ".."']]],
    ['downwardAPI file sources', ['{ name: a, downwardAPI: { items: [{ path: p }, { path: q, fieldRef: { fieldPath: metadata.uid }, resourceFieldRef: { containerName: main, resource: limits.cpu } }, { path: r, resourceFieldRef: { containerName: side, resource: limits.cpu } }] } }'], [], [
      ['v0', '{ path: p }', `${V}/0/downwardAPI/items/0`, 'must have exactly one of fieldRef and resourceFieldRef'],
      ['v0', '{ path: q', `${V}/0/downwardAPI/items/1`, 'must have exactly one of fieldRef and resourceFieldRef'],
      ['v0', 'side', `${V}/0/downwardAPI/items/2/resourceFieldRef/containerName`, 'no container "side" in this pod'],
    ]],
    ['downwardAPI resourceFieldRef without containerName (schema: a volume belongs to no container)', ['{ name: a, downwardAPI: { items: [{ path: q, resourceFieldRef: { resource: limits.cpu } }] } }'], [], [
      ['v0', '{ resource', `${V}/0/downwardAPI/items/0/resourceFieldRef`, "must have required property 'containerName'"],
    ]],
    ['downwardAPI field a file cannot hold (schema)', ['{ name: a, downwardAPI: { items: [{ path: p, fieldRef: { fieldPath: spec.nodeName } }] } }'], [], [
      ['v0', 'spec.nodeName', `${V}/0/downwardAPI/items/0/fieldRef/fieldPath`, "must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels, metadata.annotations, metadata.labels['<key>'], metadata.annotations['<key>'] (a downwardAPI volume cannot hold spec.nodeName or status fields)"],
    ]],
    ['mounts: undeclared, relative, twice, subPath', ['{ name: a, emptyDir: {} }'], ['{ name: b, mountPath: /x }', '{ name: a, mountPath: data }', '{ name: a, mountPath: /x/, subPath: ../up }'], [
      ['m0', 'b,', `${M}/0/name`, 'no volume "b" in spec.template.spec.volumes (it has a)'],
      ['m1', 'data', `${M}/1/mountPath`, 'must be an absolute path'],
      ['m2', 'a,', `${M}/2/name`, `volume a is already mounted by ${M}/1: a container without an image gets each volume as one path ($GANTRY_VOLUME_*), so it can mount a volume once`],
      ['m2', '/x/', `${M}/2/mountPath`, `duplicate mountPath "/x/" in container "main", also used by ${M}/0`],
      ['m2', '../up', `${M}/2/subPath`, 'must not contain ".." (it could leave the volume)'],
    ]],
    ['subPathExpr would mount the whole volume', ['{ name: a, emptyDir: {} }'], ['{ name: a, mountPath: /x, subPathExpr: $(POD) }'], [['m0', 'subPathExpr', `${M}/0/subPathExpr`, 'is not supported by Gantry (the volume would be mounted whole): use subPath']]],
    ['schema: mountPath required, name a DNS label', ['{ name: Data, emptyDir: {} }'], ['{ name: a }'], [
      ['v0', 'Data', `${V}/0/name`, "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"],
      ['m0', '{ name: a }', `${M}/0`, "must have required property 'mountPath'"],
    ]],
    ['references: objects and keys the commit lacks', ['{ name: a, configMap: { name: nope } }', '{ name: b, secret: { secretName: db, items: [{ key: user, path: u }] } }', '{ name: c, configMap: { name: cfg, items: [{ key: logo.png, path: l }, { key: x.conf, path: x }] } }'], [], [
      ['v0', 'nope', `${V}/0/configMap/name`, 'ConfigMap default/nope is not defined in this commit (mark the volume optional: true if it may be missing)'],
      ['v1', 'user', `${V}/1/secret/items/0/key`, 'Secret default/db has no key "user" (its keys: password)'],
      ['v2', 'x.conf', `${V}/2/configMap/items/1/key`, 'ConfigMap default/cfg has no key "x.conf" (its keys: app.conf, logo.png)'],
    ]],
  ];
  for (const [name, volumes, mounts, expected] of cases) {
    const text = web(volumes, mounts);
    assert.deepEqual(load(text).errors.map(String), expected.map(([where, token, pointer, message]) => located(text, where, token, pointer, message)), name);
  }
  // A Docker container can mount one volume twice (different paths), as in Kubernetes.
  assert.deepEqual(load(web(['{ name: a, emptyDir: {} }'], ['{ name: a, mountPath: /x }', '{ name: a, mountPath: /y, subPath: s }'], 'nginx')).errors.map(String), []);
});

test('kinds Gantry does not support: ignored with a warning; a mount naming one is an error', () => {
  const volumes = ['{ name: data, persistentVolumeClaim: { claimName: pvc } }', '{ name: all, projected: { sources: [] } }', '{ name: a, emptyDir: {} }'];
  const unmounted = web(volumes, ['{ name: a, mountPath: /a }']);
  const loaded = load(unmounted);
  assert.deepEqual(loaded.errors.map(String), []);
  assert.deepEqual(loaded.warnings.map((w) => [w.code, w.toString()]), [
    ['IGNORED_FIELD', located(unmounted, 'v0', 'persistentVolumeClaim', `${V}/0/persistentVolumeClaim`, `ignored: Gantry does not implement ${V}/0/persistentVolumeClaim`)],
    ['IGNORED_FIELD', located(unmounted, 'v1', 'projected', `${V}/1/projected`, `ignored: Gantry does not implement ${V}/1/projected`)],
  ]);
  assert.deepEqual(buildDesiredState(loaded.objects, 'c1', []).deployments[0]!.template.volumes, [{ name: 'a', emptyDir: {} }], 'not recorded');
  const mounted = web(volumes, ['{ name: data, mountPath: /data }', '{ name: all, mountPath: /all }']);
  assert.deepEqual(load(mounted).errors.map(String), [
    located(mounted, 'm0', 'data', `${M}/0/name`, 'volume data is of a kind Gantry does not support (persistentVolumeClaim)'),
    located(mounted, 'm1', 'all', `${M}/1/name`, 'volume all is of a kind Gantry does not support (projected)'),
  ]);
});

test('hostPath: honoured, with a warning that it is node-local', () => {
  const text = web(['{ name: logs, hostPath: { path: /var/log, type: DirectoryOrCreate } }'], ['{ name: logs, mountPath: /logs, readOnly: true }']);
  const loaded = load(text);
  assert.deepEqual(loaded.errors.map(String), []);
  assert.deepEqual(loaded.warnings.map((w) => [w.code, w.toString()]), [[
    'NODE_LOCAL',
    located(text, 'v0', 'hostPath', `${V}/0/hostPath`, 'hostPath /var/log is node-local: each instance sees that path of the node it runs on, and what it writes stays on that node when the instance moves'),
  ]]);
});

test('a mounted ConfigMap or Secret: its content is in the template hash, the diff says which, the GC keeps it', () => {
  const text = web(['{ name: c, configMap: { name: cfg } }', '{ name: s, secret: { secretName: db, items: [{ key: password, path: pw }] } }'], ['{ name: c, mountPath: /c }']);
  const before = record(text);
  const changedCfg = record(text, CONFIGS.replace('port=80', 'port=81'));
  const changedDb = record(text, CONFIGS.replace('hunter2', 'hunter3'));
  const untouched = record(text, `${CONFIGS}---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: other }\ndata: { a: b }\n`);
  assert.notEqual(changedCfg.templateHash, before.templateHash, 'ConfigMap content rolls the pod');
  assert.notEqual(changedDb.templateHash, before.templateHash, 'Secret content rolls the pod (mounted or not by a container: the volume is the pod\'s)');
  assert.equal(untouched.templateHash, before.templateHash, 'an object no volume names changes nothing');
  const version = (d: DeploymentRecord, kind: 'configMap' | 'secret') => (d.template.volumes!.find((v) => kind in v) as unknown as Record<typeof kind, { version: string }>)[kind].version;
  assert.deepEqual(before.configRefs, [`default/ConfigMap/cfg@${version(before, 'configMap')}`, `default/Secret/db@${version(before, 'secret')}`]);
  // What the GC keeps for a revision (config-gc.ts): the template's references, volumes included.
  assert.deepEqual(referencedVersions('default', before.template.containers, before.template.imagePullSecrets, before.template.volumes), before.configRefs);
  const diff = diffDesired([before], { commit: 'c2', namespaces: [], deployments: [changedCfg] });
  assert.deepEqual(diff.changed[0]!.changes, [
    `template ${before.templateHash} -> ${changedCfg.templateHash} (instances replaced)`,
    `ConfigMap cfg ${version(before, 'configMap').slice(0, 8)} -> ${version(changedCfg, 'configMap').slice(0, 8)}`,
  ]);
  const rows = diffObjects({ namespaces: [], deployments: [before] }, { namespaces: [], deployments: [changedDb] }).changed[0]!.changes;
  assert.ok(rows.includes(`Secret db ${version(before, 'secret').slice(0, 8)} -> ${version(changedDb, 'secret').slice(0, 8)}`), rows.join('\n'));
  // Names, keys and versions only: no value of the Secret anywhere in the records or the diff.
  for (const shown of [JSON.stringify(before), JSON.stringify(changedDb), rows.join('\n')]) {
    for (const value of ['hunter2', 'hunter3', Buffer.from('hunter2').toString('base64'), Buffer.from('hunter3').toString('base64')]) assert.ok(!shown.includes(value), `${value} is not shown`);
  }
});

test('template hash: deployments without volumes keep the hashes older versions gave them (no instance rolled by an upgrade)', () => {
  // Computed by the code before volumes existed.
  const loaded = loadManifests([{ path: 'app.yaml', content: `apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { greeting: hi }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: main
          command: ["node", "server.js"]
          env: [{ name: G, valueFrom: { configMapKeyRef: { name: cfg, key: greeting } } }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: plain }
spec:
  template:
    metadata: { labels: { app: plain } }
    spec:
      containers: [{ name: main, image: nginx:1.27, ports: [{ containerPort: 80 }] }]
` }]);
  assert.deepEqual(loaded.errors.map(String), []);
  const hashes = buildDesiredState(loaded.objects, 'c1', []).deployments.map((d) => [d.name, d.templateHash, d.specHash, 'volumes' in d.template, d.template.containers.some((c) => 'volumeMounts' in c)]);
  assert.deepEqual(hashes, [
    ['plain', 'b19bf03367', '2498b35fff6ce1c0', false, false],
    ['web', 'afc2352002', '9f3bf9ce59f778db', false, false],
  ]);
});
