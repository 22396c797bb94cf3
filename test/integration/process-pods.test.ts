import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentScope } from '../../agents/docker-labels.ts';
import { ConfigStore } from '../../state/config-store.ts';
import type { ContainerSpec, InstanceRecord } from '../../state/records/instance.ts';
import { AgentWorld, configVersionRecord, container, instanceRecord, pidAlive } from '../helpers/agent-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The same pods on the process runtime, where they apply: processes share the host's network, so a
 * sidecar finds the server at $GANTRY_POD_HOST:$GANTRY_PORT_8080; volumes are directories named by
 * $GANTRY_VOLUME_<NAME>; init containers run first, to completion; postStart and preStop hooks run
 * beside the process, with its env; a restarted agent adopts the pod.
 */

const SECRET_VALUE = 'proc-s3cr3t-never-printed';
const CONFIG = configVersionRecord('ConfigMap', 'web-config', { greeting: 'hello from a configMap file' });
const SECRET = configVersionRecord('Secret', 'web-secret', { password: Buffer.from(SECRET_VALUE).toString('base64') });

const node = (name: string, js: string, over: Partial<ContainerSpec> = {}): ContainerSpec => container({ name, command: [process.execPath, '-e', js], ports: [], ...over });
const sh = (name: string, script: string, over: Partial<ContainerSpec> = {}): ContainerSpec => container({ name, command: ['sh', '-c', script], ports: [], ...over });

/** Serves the shared volume on $PORT; notes the secret file's mode and whether it holds the value (never the value); on SIGTERM notes it and exits. */
const SERVER = `
const fs = require('fs'), path = require('path'), v = (n) => process.env['GANTRY_VOLUME_' + n];
fs.copyFileSync(path.join(v('CONFIG'), 'greeting'), path.join(v('SHARED'), 'greeting.txt'));
const secret = path.join(v('SECRET'), 'password');
fs.writeFileSync(path.join(v('SHARED'), 'secret.txt'), (fs.statSync(secret).mode & 0o777).toString(8) + ' ' + (fs.readFileSync(secret, 'utf8') === ${JSON.stringify(SECRET_VALUE)}));
process.on('SIGTERM', () => { fs.appendFileSync(path.join(v('ORDER'), 'log'), 'term\\n'); process.exit(0); });
require('http').createServer((q, s) => fs.readFile(path.join(v('SHARED'), q.url.slice(1)), (e, b) => { s.statusCode = e ? 404 : 200; s.end(e ? '' : b); })).listen(Number(process.env.PORT), '127.0.0.1');`;
/** Fetches the init container's file from its sibling (host and port from the env) into the shared volume. */
const SIDECAR = `
const fs = require('fs'), path = require('path');
const url = 'http://' + process.env.GANTRY_POD_HOST + ':' + process.env.GANTRY_PORT_8080 + '/init.txt';
const tick = () => fetch(url).then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status))))).then((t) => fs.writeFileSync(path.join(process.env.GANTRY_VOLUME_SHARED, 'sidecar.txt'), t)).catch(() => setTimeout(tick, 100));
tick(); setInterval(() => {}, 1e6);`;

function podRecord(nodeName: string, orderDir: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return instanceRecord(nodeName, {
    terminationGracePeriodSeconds: 5,
    initContainers: [sh('prep', 'echo prepared > "$GANTRY_VOLUME_SHARED/init.txt"', { volumeMounts: [{ name: 'shared', mountPath: '/shared' }] })],
    containers: [
      node('server', SERVER, {
        ports: [{ name: 'http', containerPort: 8080 }],
        volumeMounts: [
          { name: 'shared', mountPath: '/shared' },
          { name: 'config', mountPath: '/etc/web', readOnly: true },
          { name: 'secret', mountPath: '/etc/secret', readOnly: true },
          { name: 'order', mountPath: '/order' },
        ],
        lifecycle: {
          postStart: { exec: { command: ['sh', '-c', 'echo poststart >> "$GANTRY_VOLUME_ORDER/log"'] } },
          preStop: { exec: { command: ['sh', '-c', 'echo prestop >> "$GANTRY_VOLUME_ORDER/log"'] } },
        },
      }),
      node('sidecar', SIDECAR, { volumeMounts: [{ name: 'shared', mountPath: '/shared' }] }),
    ],
    volumes: [
      { name: 'shared', emptyDir: {} },
      { name: 'config', configMap: { name: 'web-config', version: CONFIG.version, defaultMode: 0o644 } },
      { name: 'secret', secret: { name: 'web-secret', version: SECRET.version, defaultMode: 0o400 } },
      { name: 'order', hostPath: { path: orderDir, type: 'Directory' } },
    ],
    ...over,
  });
}

async function fetchText(port: number, path: string): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

test('a process pod: init container, sibling ports from the env, shared emptyDir, configMap and secret files, hooks around the run, adoption', async () => {
  const w = await AgentWorld.create();
  const orderDir = mkdtempSync(join(tmpdir(), 'gantry-proc-pod-'));
  try {
    await new ConfigStore(w.redis, w.keys).writeVersions([CONFIG, SECRET]);
    let agent = await w.startAgent();
    const r = podRecord(w.node, orderDir);
    await w.bind(r);
    await w.nudge(r.id);
    const s = await w.statusWhere(r.id, 'Running', (x) => x.phase === 'Running' && x.containers.every((c) => c.running));
    assert.deepEqual(s.initContainers?.map((c) => [c.name, c.state, c.reason, c.exitCode]), [['prep', 'Terminated', 'Completed', 0]]);
    const port = s.ports.find((p) => p.containerPort === 8080)!.hostPort;

    assert.equal((await waitFor(() => fetchText(port, '/sidecar.txt'), { what: 'the sidecar file served' })).trim(), 'prepared');
    assert.equal(await fetchText(port, '/greeting.txt'), 'hello from a configMap file');
    assert.equal(await fetchText(port, '/secret.txt'), '400 true');
    assert.ok(!w.logs.join('\n').includes(SECRET_VALUE));
    assert.equal(readFileSync(join(orderDir, 'log'), 'utf8'), 'poststart\n');

    // Adopted by a restarted agent: same pids, no restart.
    const pids = s.containers.map((c) => c.pid);
    await agent.stop();
    agent = await w.startAgent();
    await w.nudge(r.id);
    await waitFor(async () => w.logs.some((l) => l.includes(`adopted ${r.id}`)), { what: 'adopted' });
    const again = await w.statusWhere(r.id, 'Running after adoption', (x) => x.phase === 'Running' && x.updatedAt > s.updatedAt);
    assert.deepEqual(again.containers.map((c) => c.pid), pids);
    assert.equal(again.restarts, 0);

    // Unbound: preStop, then SIGTERM.
    await w.unbind(r);
    await w.nudge(r.id, 'stop');
    await waitFor(async () => (await w.status(r.id)) === undefined && pids.every((p) => !pidAlive(p!)), { what: 'pod stopped' });
    assert.deepEqual(readFileSync(join(orderDir, 'log'), 'utf8').trim().split('\n'), ['poststart', 'prestop', 'term']);
  } finally {
    await w.cleanup();
    rmSync(orderDir, { recursive: true, force: true });
  }
});

test('a failing postStart kills the container, which restarts by policy (PostStartHookError)', async () => {
  const w = await AgentWorld.create();
  try {
    await w.startAgent({ restartBackoffMs: 60_000 });
    const r = instanceRecord(w.node, { containers: [container({ lifecycle: { postStart: { exec: { command: ['sh', '-c', 'exit 7'] } } } })] });
    await w.bind(r);
    await w.nudge(r.id);
    const s = await w.statusWhere(r.id, 'CrashLoopBackOff after the hook', (x) => x.reason === 'CrashLoopBackOff');
    assert.deepEqual([s.containers[0]?.state, s.containers[0]?.reason], ['Waiting', 'CrashLoopBackOff']);
    // The run before (restarted at once) ended the same way.
    assert.equal(s.containers[0]?.lastTermination?.reason, 'PostStartHookError');
    assert.match(s.message ?? '', /PostStartHookError/);
  } finally {
    await w.cleanup();
  }
});

test('an emptyDir over its sizeLimit is reported in the status and by one Warning event', async () => {
  const w = await AgentWorld.create();
  try {
    await w.startAgent({ resyncMs: 300 });
    const fill = sh('main', 'head -c 300000 /dev/zero > "$GANTRY_VOLUME_SCRATCH/fill"; exec sleep 3600', { volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] });
    const r = instanceRecord(w.node, { containers: [fill], volumes: [{ name: 'scratch', emptyDir: { sizeLimitBytes: 64 * 1024 } }] });
    await w.bind(r);
    await w.nudge(r.id);
    const s = await w.statusWhere(r.id, 'EmptyDirSizeLimitExceeded', (x) => x.reason === 'EmptyDirSizeLimitExceeded');
    assert.equal(s.phase, 'Running');
    assert.match(s.message ?? '', /emptyDir scratch uses \d+ bytes of its sizeLimit 65536/);
  } finally {
    await w.cleanup();
  }
});

test('memory volumes of a pod that is gone without a stop are swept at resync; a running pod keeps its own', async () => {
  const w = await AgentWorld.create();
  const memoryRoot = mkdtempSync(join(tmpdir(), 'gantry-memroot-'));
  try {
    await new ConfigStore(w.redis, w.keys).writeVersions([SECRET]);
    await w.startAgent({ resyncMs: 300, memoryRoot });
    const r = instanceRecord(w.node, {
      containers: [sh('main', 'exec sleep 3600', { volumeMounts: [{ name: 'secret', mountPath: '/s' }] })],
      volumes: [{ name: 'secret', secret: { name: 'web-secret', version: SECRET.version, defaultMode: 0o400 } }],
    });
    await w.bind(r);
    await w.nudge(r.id);
    await w.statusWhere(r.id, 'Running', (x) => x.phase === 'Running');
    const scope = agentScope(w.dataDir, `${w.keys.prefix}\0${w.node}`);
    const own = join(memoryRoot, `gantry-${scope}`, r.uid);
    assert.equal(readFileSync(join(own, 'secret', 'password'), 'utf8'), SECRET_VALUE, 'the secret file is on the memory root');
    // A leftover of a pod this agent does not run (its dir removed while no agent watched).
    const stray = join(memoryRoot, `gantry-${scope}`, 'a-gone-uid');
    mkdirSync(join(stray, 'secret'), { recursive: true });
    await waitFor(async () => !existsSync(stray), { what: 'the stray memory dir swept' });
    assert.ok(existsSync(own), 'the running pod keeps its own');
  } finally {
    await w.cleanup();
    rmSync(memoryRoot, { recursive: true, force: true });
  }
});
