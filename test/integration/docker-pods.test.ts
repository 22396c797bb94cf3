import { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigStore } from '../../state/config-store.ts';
import type { ContainerSpec, InstanceRecord } from '../../state/records/instance.ts';
import { AgentWorld, configVersionRecord, container, httpGet, instanceRecord } from '../helpers/agent-fixtures.ts';
import { docker, dockerTest, gantryContainers, podSandboxes, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Pods on the real Docker engine: containers of one instance share the sandbox's network (a
 * sidecar reaches the server on localhost) and the pod's volumes (an emptyDir both write, a
 * configMap file, a secret with mode 0400), an init container prepares what the app serves, a
 * preStop hook runs before SIGTERM, a restarted agent adopts the whole pod.
 */

const SECRET_VALUE = 's3cr3t-never-printed';
const CONFIG = configVersionRecord('ConfigMap', 'web-config', { greeting: 'hello from a configMap file' });
const SECRET = configVersionRecord('Secret', 'web-secret', { password: Buffer.from(SECRET_VALUE).toString('base64') });

const box = (name: string, script: string, over: Partial<ContainerSpec> = {}): ContainerSpec =>
  container({ name, image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script], ...over });

/** The server: serves the shared emptyDir; on SIGTERM notes it in the order log (a hostPath) and exits. */
const SERVER = [
  'cp /etc/web/greeting /shared/greeting.txt',
  'httpd -p 8080 -h /shared',
  'trap "echo term >> /order/log; exit 0" TERM',
  'while true; do sleep 0.1; done',
].join('; ');
/** The sidecar: fetches what the init container prepared from the server over localhost, into the shared emptyDir. */
const SIDECAR = 'until wget -qO /shared/sidecar.tmp http://localhost:8080/init.txt; do sleep 0.2; done; mv /shared/sidecar.tmp /shared/sidecar.txt; exec sleep 3600';

function podRecord(node: string, orderDir: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return instanceRecord(node, {
    runtime: 'docker',
    terminationGracePeriodSeconds: 5,
    initContainers: [box('prep', 'echo prepared > /shared/init.txt', { ports: [], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] })],
    containers: [
      box('server', SERVER, {
        ports: [{ name: 'http', containerPort: 8080 }],
        volumeMounts: [
          { name: 'shared', mountPath: '/shared' },
          { name: 'config', mountPath: '/etc/web', readOnly: true },
          { name: 'secret', mountPath: '/etc/secret', readOnly: true },
          { name: 'order', mountPath: '/order' },
        ],
        lifecycle: { preStop: { exec: { command: ['sh', '-c', 'echo prestop >> /order/log'] } } },
      }),
      box('sidecar', SIDECAR, { ports: [], volumeMounts: [{ name: 'shared', mountPath: '/shared' }] }),
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

const nodesUsed = new Set<string>();
after(async () => {
  for (const node of nodesUsed) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

function podTest(name: string, body: (w: AgentWorld, orderDir: string) => Promise<void>): void {
  dockerTest(name, async () => {
    const w = await AgentWorld.create();
    nodesUsed.add(w.node);
    const orderDir = mkdtempSync(join(tmpdir(), 'gantry-pod-order-'));
    try {
      await new ConfigStore(w.redis, w.keys).writeVersions([CONFIG, SECRET]);
      await body(w, orderDir);
    } finally {
      try {
        await w.cleanup();
      } finally {
        await removeContainersWithLabels([`dev.gantry.node=${w.node}`]);
        rmSync(orderDir, { recursive: true, force: true });
      }
    }
  });
}

async function execIn(containerId: string, cmd: string[]): Promise<string> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  await new Promise((resolve) => stream.on('end', resolve));
  // Multiplexed frames: 8-byte headers before each payload.
  const raw = Buffer.concat(chunks);
  let out = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const len = raw.readUInt32BE(i + 4);
    out += raw.subarray(i + 8, i + 8 + len).toString();
    i += 8 + len;
  }
  return out;
}

podTest('a pod: init container, sidecar over localhost into a shared emptyDir, configMap and secret files, adoption, preStop before SIGTERM', async (w, orderDir) => {
  let agent = await w.startAgent();
  const r = podRecord(w.node, orderDir);
  await w.bind(r);
  await w.nudge(r.id);

  const s = await w.statusWhere(r.id, 'Running with both containers', (x) => x.phase === 'Running' && x.containers.every((c) => c.running));
  assert.equal(s.initContainers?.[0]?.state, 'Terminated');
  assert.equal(s.initContainers?.[0]?.reason, 'Completed');
  assert.deepEqual(s.containers.map((c) => [c.name, c.state, c.ready]), [['server', 'Running', true], ['sidecar', 'Running', true]]);
  assert.match(s.podIP ?? '', /^\d+\.\d+\.\d+\.\d+$/, 'the pod has its own IP');
  const port = s.ports.find((p) => p.containerPort === 8080)!.hostPort;

  // The sidecar fetched the init container's file from the server over localhost and wrote it into the emptyDir the server serves.
  assert.equal((await waitFor(() => httpGet(port).then(() => fetchText(port, '/sidecar.txt')), { what: 'the sidecar file served' }))?.trim(), 'prepared');
  assert.equal((await fetchText(port, '/greeting.txt'))?.trim(), 'hello from a configMap file');

  const [server] = (await gantryContainers(w.node, r.id)).filter((c) => c.Labels['dev.gantry.container'] === 'server');
  const listing = await execIn(server!.Id, ['ls', '-ln', '/etc/secret/password']);
  assert.match(listing, /^-r-------- /, `secret file mode 0400: ${listing}`);
  assert.equal((await execIn(server!.Id, ['cat', '/etc/secret/password'])).trim(), SECRET_VALUE);
  // The secret's value is nowhere in what the agent said or wrote as status.
  assert.ok(!w.logs.join('\n').includes(SECRET_VALUE));
  assert.ok(!JSON.stringify(await w.status(r.id)).includes(SECRET_VALUE));

  // A restarted agent adopts the pod as it is: same containers, same sandbox, no restart.
  const ids = (await gantryContainers(w.node, r.id)).map((c) => c.Id).sort();
  const [sandbox] = await podSandboxes(w.node, r.id);
  await agent.stop();
  agent = await w.startAgent();
  await w.nudge(r.id);
  await waitFor(async () => w.logs.some((l) => l.includes(`adopted ${r.id}`)), { what: 'adopted' });
  const again = await w.statusWhere(r.id, 'Running after adoption', (x) => x.phase === 'Running' && x.updatedAt > s.updatedAt);
  assert.equal(again.restarts, 0);
  assert.deepEqual((await gantryContainers(w.node, r.id)).map((c) => c.Id).sort(), ids);
  assert.deepEqual((await podSandboxes(w.node, r.id)).map((c) => c.Id), [sandbox!.Id]);
  assert.equal((await fetchText(port, '/sidecar.txt'))?.trim(), 'prepared');

  // Unbound: preStop runs, then SIGTERM; the containers and the sandbox go.
  await w.unbind(r);
  await w.nudge(r.id, 'stop');
  await waitFor(async () => (await gantryContainers(w.node, r.id)).length === 0 && (await podSandboxes(w.node, r.id)).length === 0, { what: 'pod removed' });
  assert.deepEqual(readFileSync(join(orderDir, 'log'), 'utf8').trim().split('\n'), ['prestop', 'term']);
});

podTest('an init container that fails keeps the app from starting: Init:Error with restartPolicy Never, Init:CrashLoopBackOff otherwise', async (w, orderDir) => {
  await w.startAgent({ restartBackoffMs: 60_000 });
  const failing = (ordinal: number, restartPolicy: InstanceRecord['restartPolicy']) =>
    podRecord(w.node, orderDir, { ordinal, restartPolicy, initContainers: [box('prep', 'exit 3', { ports: [] })] });
  const never = failing(0, 'Never');
  const always = failing(1, 'Always');
  for (const r of [never, always]) {
    await w.bind(r);
    await w.nudge(r.id);
  }
  const n = await w.statusWhere(never.id, 'Init:Error', (x) => x.reason === 'Init:Error');
  assert.equal(n.phase, 'Failed');
  assert.equal(n.initContainers?.[0]?.exitCode, 3);
  const a = await w.statusWhere(always.id, 'Init:CrashLoopBackOff', (x) => x.reason === 'Init:CrashLoopBackOff');
  assert.equal(a.phase, 'Pending');
  assert.ok((a.initContainers?.[0]?.restarts ?? 0) >= 1);
  for (const r of [never, always]) {
    const names = (await gantryContainers(w.node, r.id)).map((c) => c.Labels['dev.gantry.container']);
    assert.ok(!names.includes('server') && !names.includes('sidecar'), `no app container of ${r.id} was created: ${names.join(',')}`);
  }
  assert.ok(statSync(orderDir).isDirectory());
});

async function fetchText(port: number, path: string): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}
