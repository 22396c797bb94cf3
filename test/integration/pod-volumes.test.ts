import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { emptyDirOverLimit, preparePodVolumes, removePodVolumes, type PrepareVolumesOptions, type PrepareVolumesResult, type PreparedVolume } from '../../agents/pod-volumes.ts';
import { configVersion, type ConfigKind, type ConfigVersionRecord } from '../../state/records/config.ts';
import type { ContainerSpec, HostPathType, InstanceRecord, VolumeSpec } from '../../state/records/instance.ts';
import { deployment, instance } from '../helpers/records.ts';

/**
 * Pod volumes on a real file system (agents/pod-volumes.ts): a temp dir as the instance dir and
 * the node's real /dev/shm as the tmpfs, each test with its own scope so nothing collides with
 * other runs. Versions are built as the reconciler stores them (Secret data base64).
 */

const SHM = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;
const SECRET_VALUE = 'pw-5e4d3c-never-print-me';
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const BINARY = Buffer.from([0, 1, 2, 0xff, 0xfe]);

function version(kind: ConfigKind, name: string, data: Record<string, string>, binaryData?: Record<string, string>): ConfigVersionRecord {
  const content = { kind, data, ...(binaryData ? { binaryData } : {}) };
  return { ...content, namespace: 'default', name, version: configVersion(content), commit: '0'.repeat(40) };
}

const WEB = version('ConfigMap', 'web', { 'app.conf': 'listen 8080\n', 'level.txt': 'debug' }, { 'logo.png': b64(BINARY) });
const DB = version('Secret', 'db', { password: b64(SECRET_VALUE), user: b64('admin'), 'key.bin': b64(BINARY) });
const STORED = new Map([WEB, DB].map((v) => [`${v.kind}/${v.name}@${v.version}`, v]));
const read: PrepareVolumesOptions['read'] = async (_ns, kind, name, v) => STORED.get(`${kind}/${name}@${v}`);

const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((f) => f()));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gantry-pod-volumes-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A fresh scope (and its cleanup on /dev/shm): what agentScope() gives one installation. */
function freshScope(): string {
  const scope = randomBytes(6).toString('hex');
  cleanups.push(() => rmSync(join(SHM, `gantry-${scope}`), { recursive: true, force: true }));
  return scope;
}

function record(volumes: VolumeSpec[], volumeMounts: ContainerSpec['volumeMounts'] = []): InstanceRecord {
  const base = instance(deployment(), 0, { node: 'node-1' }).record;
  const [c] = base.containers;
  return { ...base, uid: randomUUID(), labels: { app: 'web', tier: 'front' }, annotations: { note: 'say "hi"' }, volumes, containers: [{ ...c!, volumeMounts }] };
}

function options(rec: InstanceRecord, over: Partial<PrepareVolumesOptions> = {}): PrepareVolumesOptions {
  return { record: rec, dir: join(tempDir(), 'instance'), memoryRoot: SHM, scope: freshScope(), node: 'node-1', hostIP: '127.0.0.2', read, ...over };
}

function ok(r: PrepareVolumesResult): { volumes: PreparedVolume[]; warnings: { reason: string; message: string }[] } {
  if ('error' in r) assert.fail(`unexpected error: ${r.error}`);
  return r;
}

const byName = (r: { volumes: PreparedVolume[] }, name: string) => r.volumes.find((v) => v.name === name)!;
const mode = (p: string) => statSync(p).mode & 0o777;
const onTmpfs = (p: string) => statfsSync(p).type === TMPFS_MAGIC;
/** Every file under a directory, relative, sorted. */
const files = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();

test('every kind: directories, files, contents and modes; secrets and Memory emptyDirs on the tmpfs', async () => {
  const hostDir = join(tempDir(), 'host', 'logs');
  const rec = record(
    [
      { name: 'cache', emptyDir: { sizeLimitBytes: 1 << 20 } },
      { name: 'scratch', emptyDir: { medium: 'Memory' } },
      { name: 'web', configMap: { name: 'web', version: WEB.version, defaultMode: 0o644 } },
      { name: 'conf', configMap: { name: 'web', version: WEB.version, defaultMode: 0o640, items: [{ key: 'app.conf', path: 'etc/nginx/app.conf', mode: 0o600 }, { key: 'logo.png', path: 'img/logo.png' }] } },
      { name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400 } },
      { name: 'logs', hostPath: { path: hostDir, type: 'DirectoryOrCreate' } },
      {
        name: 'info',
        downwardAPI: {
          defaultMode: 0o644,
          items: [
            { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
            { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
            { path: 'meta/name', fieldRef: { fieldPath: 'metadata.name' } },
            { path: 'meta/namespace', fieldRef: { fieldPath: 'metadata.namespace' } },
            { path: 'meta/uid', fieldRef: { fieldPath: 'metadata.uid' } },
            { path: 'tier', fieldRef: { fieldPath: "metadata.labels['tier']" } },
            { path: 'node', fieldRef: { fieldPath: 'spec.nodeName' } },
            { path: 'host-ip', fieldRef: { fieldPath: 'status.hostIP' } },
            { path: 'pod-ip', fieldRef: { fieldPath: 'status.podIP' } },
            { path: 'mem', value: '128', mode: 0o600 },
          ],
        },
      },
    ],
    [{ name: 'cache', mountPath: '/cache', subPath: 'sub/dir' }],
  );
  const o = options(rec);
  const r = ok(await preparePodVolumes(o));
  assert.deepEqual(r.warnings, []);
  const memoryDir = join(SHM, `gantry-${o.scope}`, rec.uid);
  const disk = join(o.dir, 'volumes');
  assert.deepEqual(r.volumes, [
    { name: 'cache', kind: 'emptyDir', hostPath: join(disk, 'cache'), tmpfs: false, sizeLimitBytes: 1 << 20 },
    { name: 'scratch', kind: 'emptyDir', hostPath: join(memoryDir, 'scratch'), tmpfs: true },
    { name: 'web', kind: 'configMap', hostPath: join(disk, 'web'), tmpfs: false },
    { name: 'conf', kind: 'configMap', hostPath: join(disk, 'conf'), tmpfs: false },
    { name: 'creds', kind: 'secret', hostPath: join(memoryDir, 'creds'), tmpfs: true },
    { name: 'logs', kind: 'hostPath', hostPath: hostDir, tmpfs: false },
    { name: 'info', kind: 'downwardAPI', hostPath: join(disk, 'info'), tmpfs: false },
  ]);

  // Parents closed to other users; emptyDirs open to any container user.
  assert.deepEqual([mode(disk), mode(join(SHM, `gantry-${o.scope}`)), mode(memoryDir)], [0o700, 0o700, 0o700]);
  assert.deepEqual([mode(join(disk, 'cache')), mode(join(memoryDir, 'scratch'))], [0o777, 0o777]);
  assert.ok(onTmpfs(join(memoryDir, 'scratch')), 'a Memory emptyDir is on the tmpfs');
  assert.ok(statSync(join(disk, 'cache', 'sub', 'dir')).isDirectory(), 'the subPath a container mounts is made');

  // configMap: every key, binaryData too, as bytes.
  assert.deepEqual(files(join(disk, 'web')), ['app.conf', 'level.txt', 'logo.png']);
  assert.equal(readFileSync(join(disk, 'web', 'app.conf'), 'utf8'), 'listen 8080\n');
  assert.deepEqual(readFileSync(join(disk, 'web', 'logo.png')), BINARY);
  assert.deepEqual(['app.conf', 'level.txt', 'logo.png'].map((f) => mode(join(disk, 'web', f))), [0o644, 0o644, 0o644]);
  // items: only those, at nested paths, mode per item else defaultMode.
  assert.deepEqual(files(join(disk, 'conf')), ['etc/nginx/app.conf', 'img/logo.png']);
  assert.deepEqual([mode(join(disk, 'conf', 'etc/nginx/app.conf')), mode(join(disk, 'conf', 'img/logo.png'))], [0o600, 0o640]);
  assert.equal(mode(join(disk, 'conf', 'etc')), 0o755);

  // secret: decoded, 0400, on the tmpfs.
  const creds = join(memoryDir, 'creds');
  assert.ok(onTmpfs(creds), `${creds} is on a tmpfs`);
  assert.ok(readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === SHM && l.split(' ')[2] === 'tmpfs'), '/proc/mounts has /dev/shm as a tmpfs');
  assert.deepEqual(files(creds), ['key.bin', 'password', 'user']);
  assert.equal(readFileSync(join(creds, 'password'), 'utf8'), SECRET_VALUE);
  assert.deepEqual(readFileSync(join(creds, 'key.bin')), BINARY);
  assert.deepEqual(['key.bin', 'password', 'user'].map((f) => mode(join(creds, f))), [0o400, 0o400, 0o400]);
  assert.ok(!existsSync(join(disk, 'creds')), 'no secret on the disk');

  // hostPath DirectoryOrCreate: made, 0755 at each level it created.
  assert.deepEqual([mode(hostDir), mode(join(hostDir, '..'))], [0o755, 0o755]);

  // downwardAPI.
  const info = (f: string) => readFileSync(join(disk, 'info', f), 'utf8');
  assert.equal(info('labels'), 'app="web"\ntier="front"');
  assert.equal(info('annotations'), 'note="say \\"hi\\""');
  assert.deepEqual(['meta/name', 'meta/namespace', 'meta/uid', 'tier', 'node', 'host-ip', 'pod-ip', 'mem'].map(info), [rec.id.slice('default.'.length), 'default', rec.uid, 'front', 'node-1', '127.0.0.2', '127.0.0.2', '128']);
  assert.deepEqual([mode(join(disk, 'info', 'labels')), mode(join(disk, 'info', 'mem'))], [0o644, 0o600]);

  const withPodIP = ok(await preparePodVolumes({ ...o, podIP: '10.1.2.3' }));
  assert.equal(readFileSync(join(byName(withPodIP, 'info').hostPath, 'pod-ip'), 'utf8'), '10.1.2.3');
});

test('again at a restart: emptyDir content kept, config files written again, strays and links removed', async () => {
  const outside = tempDir();
  const rec = record([
    { name: 'cache', emptyDir: {} },
    { name: 'scratch', emptyDir: { medium: 'Memory' } },
    { name: 'conf', configMap: { name: 'web', version: WEB.version, defaultMode: 0o644, items: [{ key: 'app.conf', path: 'nested/app.conf' }] } },
    { name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400, items: [{ key: 'password', path: 'password' }] } },
  ]);
  const o = options(rec);
  const first = ok(await preparePodVolumes(o));
  writeFileSync(join(byName(first, 'cache').hostPath, 'data.txt'), 'kept');
  writeFileSync(join(byName(first, 'scratch').hostPath, 'tmp.txt'), 'kept too');
  const conf = byName(first, 'conf').hostPath;
  const creds = byName(first, 'creds').hostPath;
  // What a process (readOnly is not enforced for it) could do to its config volume.
  writeFileSync(join(creds, 'password'), 'tampered');
  writeFileSync(join(conf, 'stray'), 'x');
  rmSync(join(conf, 'nested'), { recursive: true });
  symlinkSync(outside, join(conf, 'nested'));

  const second = ok(await preparePodVolumes(o));
  assert.deepEqual(second.volumes, first.volumes);
  assert.equal(readFileSync(join(byName(second, 'cache').hostPath, 'data.txt'), 'utf8'), 'kept');
  assert.equal(readFileSync(join(byName(second, 'scratch').hostPath, 'tmp.txt'), 'utf8'), 'kept too');
  assert.equal(readFileSync(join(creds, 'password'), 'utf8'), SECRET_VALUE);
  assert.equal(mode(join(creds, 'password')), 0o400);
  assert.deepEqual(files(conf), ['nested/app.conf']);
  assert.ok(lstatSync(join(conf, 'nested')).isDirectory(), 'the link was replaced by a directory');
  assert.deepEqual(readdirSync(outside), [], 'nothing was written through the link');
});

test('optional: a missing object or key gives an empty directory or no file', async () => {
  const rec = record([
    { name: 'gone', configMap: { name: 'gone', defaultMode: 0o644, optional: true } },
    { name: 'unstored', secret: { name: 'db', version: 'feedfacefeedface', defaultMode: 0o400, optional: true } },
    { name: 'some', configMap: { name: 'web', version: WEB.version, defaultMode: 0o644, optional: true, items: [{ key: 'nope', path: 'nope' }, { key: 'level.txt', path: 'level' }] } },
  ]);
  const r = ok(await preparePodVolumes(options(rec)));
  assert.deepEqual(files(byName(r, 'gone').hostPath), []);
  assert.deepEqual(files(byName(r, 'unstored').hostPath), []);
  assert.deepEqual(files(byName(r, 'some').hostPath), ['level']);
});

test('required and missing, unreadable or out of the volume: an error naming volume, object, key or version, never a value', async () => {
  const cases: [string, VolumeSpec, RegExp][] = [
    ['version not stored', { name: 'cfg', configMap: { name: 'web', version: 'feedfacefeedface', defaultMode: 0o644 } }, /^volume cfg: configmap default\/web version feedfacefeedface is not stored$/],
    ['no version', { name: 'cfg', configMap: { name: 'web', defaultMode: 0o644 } }, /^volume cfg: configmap default\/web has no version in the instance record$/],
    ['key missing', { name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400, items: [{ key: 'password', path: 'p' }, { key: 'token', path: 't' }] } }, /^volume creds: secret default\/db has no key "token"$/],
    ['item path leaves the volume', { name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400, items: [{ key: 'password', path: '../../escaped' }] } }, /^volume creds: key "password" has path "\.\.\/\.\.\/escaped", which would leave the volume$/],
    ['downward field not supported', { name: 'info', downwardAPI: { defaultMode: 0o644, items: [{ path: 'sa', fieldRef: { fieldPath: 'spec.serviceAccountName' } }] } }, /^volume info: item sa: fieldRef spec\.serviceAccountName is not supported/],
  ];
  for (const [title, v, expected] of cases) {
    const o = options(record([v]));
    const r = await preparePodVolumes(o);
    assert.ok('error' in r, title);
    assert.match(r.error, expected, title);
    assert.ok(!r.error.includes(SECRET_VALUE) && !r.error.includes(b64(SECRET_VALUE)), `${title}: no value in the error`);
    assert.ok(!existsSync(join(o.dir, 'escaped')) && !existsSync(join(o.dir, '..', 'escaped')), `${title}: nothing outside the volume`);
  }

  const down = await preparePodVolumes(options(record([{ name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400 } }]), { read: async () => Promise.reject(new Error('connection refused')) }));
  assert.deepEqual(down, { error: `reading secret default/db version ${DB.version}: connection refused` });
  const silent = await preparePodVolumes(options(record([{ name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400 } }]), { read: () => new Promise(() => {}), timeoutMs: 50 }));
  assert.deepEqual(silent, { error: `reading secret default/db version ${DB.version}: Redis did not answer within 0.05s` });
});

test('hostPath types are checked as the kubelet checks them', async () => {
  const root = tempDir();
  mkdirSync(join(root, 'dir'));
  writeFileSync(join(root, 'file'), 'x');
  const socketPath = join(root, 'sock');
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  cleanups.unshift(() => server.close());
  const at = (p: string) => join(root, p);
  const cases: [string, { path: string; type?: HostPathType }, string | undefined][] = [
    ['no type, missing', { path: at('missing') }, undefined],
    ['Directory', { path: at('dir'), type: 'Directory' }, undefined],
    ['Directory, missing', { path: at('missing'), type: 'Directory' }, `hostPath type check failed: ${at('missing')} is not a directory (it does not exist)`],
    ['Directory, a file', { path: at('file'), type: 'Directory' }, `hostPath type check failed: ${at('file')} is not a directory`],
    ['DirectoryOrCreate, a file', { path: at('file'), type: 'DirectoryOrCreate' }, `hostPath type check failed: ${at('file')} is not a directory`],
    ['File', { path: at('file'), type: 'File' }, undefined],
    ['File, missing', { path: at('missing'), type: 'File' }, `hostPath type check failed: ${at('missing')} is not a file (it does not exist)`],
    ['File, a directory', { path: at('dir'), type: 'File' }, `hostPath type check failed: ${at('dir')} is not a file`],
    ['FileOrCreate, existing', { path: at('file'), type: 'FileOrCreate' }, undefined],
    ['FileOrCreate, a directory', { path: at('dir'), type: 'FileOrCreate' }, `hostPath type check failed: ${at('dir')} is not a file`],
    ['FileOrCreate, no parent', { path: at('nodir/new'), type: 'FileOrCreate' }, `hostPath type check failed: ${at('nodir/new')} cannot be created: its parent directory does not exist`],
    ['Socket', { path: socketPath, type: 'Socket' }, undefined],
    ['Socket, a file', { path: at('file'), type: 'Socket' }, `hostPath type check failed: ${at('file')} is not a socket file`],
  ];
  for (const [title, hostPath, error] of cases) {
    const r = await preparePodVolumes(options(record([{ name: 'h', hostPath }])));
    assert.deepEqual(r, error ? { error: `volume h: ${error}` } : { volumes: [{ name: 'h', kind: 'hostPath', hostPath: hostPath.path, tmpfs: false }], warnings: [] }, title);
  }
  ok(await preparePodVolumes(options(record([{ name: 'h', hostPath: { path: at('dir/new-file'), type: 'FileOrCreate' } }]))));
  assert.deepEqual([statSync(at('dir/new-file')).size, mode(at('dir/new-file'))], [0, 0o644]);
  ok(await preparePodVolumes(options(record([{ name: 'h', hostPath: { path: at('a/b/c'), type: 'DirectoryOrCreate' } }]))));
  assert.deepEqual([mode(at('a')), mode(at('a/b')), mode(at('a/b/c'))], [0o755, 0o755, 0o755]);
});

test('a subPath leading out of its volume through a link is refused', async () => {
  const outside = tempDir();
  const rec = record([{ name: 'cache', emptyDir: {} }], [{ name: 'cache', mountPath: '/x', subPath: 'link/inner' }]);
  const o = options(rec);
  mkdirSync(join(o.dir, 'volumes', 'cache'), { recursive: true });
  symlinkSync(outside, join(o.dir, 'volumes', 'cache', 'link'));
  assert.deepEqual(await preparePodVolumes(o), { error: 'container c: volume cache: subPath "link/inner" leads out of the volume through a symbolic link' });
  assert.deepEqual(readdirSync(outside), []);
});

test('no tmpfs: a Memory emptyDir on disk with a warning, a Secret in the instance dir without one; the default root is /dev/shm', async () => {
  const rec = record([{ name: 'scratch', emptyDir: { medium: 'Memory' } }, { name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400 } }]);
  const o = options(rec, { memoryRoot: null });
  const r = ok(await preparePodVolumes(o));
  assert.deepEqual(r.volumes.map((v) => [v.name, v.hostPath, v.tmpfs]), [['scratch', join(o.dir, 'volumes', 'scratch'), false], ['creds', join(o.dir, 'volumes', 'creds'), false]]);
  assert.deepEqual(r.warnings, [{ reason: 'MemoryVolumeOnDisk', message: "volume scratch: emptyDir medium Memory is on the node's disk: this node has no tmpfs (/dev/shm)" }]);
  assert.equal(readFileSync(join(o.dir, 'volumes', 'creds', 'password'), 'utf8'), SECRET_VALUE);

  const { memoryRoot: _, ...withoutRoot } = options(rec);
  const d = ok(await preparePodVolumes(withoutRoot));
  assert.equal(byName(d, 'creds').hostPath, join(SHM, `gantry-${withoutRoot.scope}`, rec.uid, 'creds'));
});

test('the scope directory on the shared tmpfs must be a real directory of the agent', async () => {
  const rec = record([{ name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400 } }]);
  const linked = options(rec);
  const elsewhere = tempDir();
  symlinkSync(elsewhere, join(SHM, `gantry-${linked.scope}`));
  const r = await preparePodVolumes(linked);
  assert.ok('error' in r && /^volume creds: .* is not a directory of this agent's user; refusing to put volumes there$/.test(r.error), JSON.stringify(r));
  assert.deepEqual(readdirSync(elsewhere), []);
  if (process.getuid?.() !== 0) return;
  const foreign = options(rec);
  mkdirSync(join(SHM, `gantry-${foreign.scope}`), { mode: 0o700 });
  chownSync(join(SHM, `gantry-${foreign.scope}`), 65534, 65534);
  assert.ok('error' in (await preparePodVolumes(foreign)));
});

test('emptyDirOverLimit measures limited emptyDirs as du does', async () => {
  const rec = record([
    { name: 'big', emptyDir: { sizeLimitBytes: 1 << 20 } },
    { name: 'small', emptyDir: { sizeLimitBytes: 1 << 20 } },
    { name: 'memory', emptyDir: { medium: 'Memory', sizeLimitBytes: 64 * 1024 } },
    { name: 'unlimited', emptyDir: {} },
  ]);
  const r = ok(await preparePodVolumes(options(rec)));
  assert.deepEqual(await emptyDirOverLimit(r.volumes), []);
  mkdirSync(join(byName(r, 'big').hostPath, 'deep', 'er'), { recursive: true });
  writeFileSync(join(byName(r, 'big').hostPath, 'deep', 'er', 'blob'), randomBytes(2 << 20));
  writeFileSync(join(byName(r, 'small').hostPath, 'note'), 'tiny');
  writeFileSync(join(byName(r, 'memory').hostPath, 'blob'), randomBytes(128 * 1024));
  writeFileSync(join(byName(r, 'unlimited').hostPath, 'blob'), randomBytes(2 << 20));
  const over = await emptyDirOverLimit(r.volumes);
  assert.deepEqual(over.map((o) => [o.name, o.limitBytes]), [['big', 1 << 20], ['memory', 64 * 1024]]);
  assert.ok(over[0]!.usedBytes >= 2 << 20 && over[1]!.usedBytes >= 128 * 1024, JSON.stringify(over));
});

test('removePodVolumes removes the tmpfs part and the volumes dir, and can be repeated', async () => {
  const rec = record([{ name: 'scratch', emptyDir: { medium: 'Memory' } }, { name: 'creds', secret: { name: 'db', version: DB.version, defaultMode: 0o400 } }, { name: 'cache', emptyDir: {} }]);
  const o = options(rec);
  ok(await preparePodVolumes(o));
  const scopeDir = join(SHM, `gantry-${o.scope}`);
  assert.ok(existsSync(join(scopeDir, rec.uid, 'creds', 'password')));
  const target = { dir: o.dir, memoryRoot: SHM, scope: o.scope, uid: rec.uid };
  removePodVolumes(target);
  assert.deepEqual([existsSync(join(scopeDir, rec.uid)), existsSync(join(o.dir, 'volumes')), existsSync(scopeDir)], [false, false, true]);
  removePodVolumes(target);
  removePodVolumes({ ...target, dir: join(o.dir, 'never-made') });
});
