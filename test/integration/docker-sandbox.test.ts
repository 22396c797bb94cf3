import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { after } from 'node:test';
import { DockerSandboxes, joinSandbox } from '../../agents/docker-sandbox.ts';
import { dockerCreateOptions } from '../../agents/docker-spec.ts';
import { ensurePauseImage } from '../../agents/pause-image.ts';
import type { ContainerSpec, InstanceRecord, PortStatus } from '../../state/records/instance.ts';
import { docker, dockerTest, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The Docker pod sandbox against the real engine: the generated pause image really runs (and
 * blocks), and containers joined to a sandbox share its network: they reach each other on
 * localhost, the host reaches them through the ports the sandbox publishes. Every container made
 * here carries this file's node label and is removed afterwards, pass or fail.
 */

const node = `sandbox-${randomUUID().slice(0, 8)}`;
const scope = 'sandbox-test';
const Mi = 1024 ** 2;
const sandboxes = new DockerSandboxes(docker, node, scope, '127.0.0.1', Mi);
/** Images the import test made under its own repository, removed at the end. */
const imagesMade: string[] = [];

after(async () => {
  await removeContainersWithLabels([`dev.gantry.node=${node}`]);
  for (const id of imagesMade) await docker.getImage(id).remove({ force: true }).catch(() => {});
});

function record(containers: ContainerSpec[]): InstanceRecord {
  const hash = randomUUID().slice(0, 8);
  return {
    id: `default.pod-${hash}-0`,
    uid: randomUUID(),
    namespace: 'default',
    deployment: 'pod',
    templateHash: hash,
    ordinal: 0,
    commit: '0'.repeat(40),
    labels: { app: 'pod' },
    containers,
    cpuMilli: 0,
    memoryBytes: 0,
    nodeSelector: {},
    restartPolicy: 'Always',
    runtime: 'docker',
    terminationGracePeriodSeconds: 1,
    createdAt: Date.now(),
    node,
  };
}

function busybox(name: string, command: string[], ports: ContainerSpec['ports'] = []): ContainerSpec {
  return { name, image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command, args: [], env: [], ports, cpuMilli: 0, memoryBytes: 32 * Mi };
}

/** A TCP port free on 127.0.0.1 right now (the kernel's pick). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Creates and starts an app container of the pod, joined to the sandbox, as the agent will. */
async function startJoined(r: InstanceRecord, c: ContainerSpec, ports: PortStatus[], sandboxId: string): Promise<string> {
  const opts = dockerCreateOptions({ node, scope, address: '127.0.0.1', record: r, container: c, ports, identity: { GANTRY_INSTANCE_ID: r.id }, restarts: 0, logMaxBytes: Mi });
  const created = await docker.createContainer(joinSandbox(opts, sandboxId));
  await created.start();
  return created.id;
}

async function logsOf(id: string): Promise<string> {
  return (await docker.getContainer(id).logs({ stdout: true, stderr: true })).toString('utf8');
}

const statusCode = (err: unknown) => (err as { statusCode?: number }).statusCode;

dockerTest('a container of the pause image stays running, blocked, until docker kill ends it', async () => {
  const image = await ensurePauseImage(docker);
  const created = await docker.createContainer({ name: `${node}-pause`, Image: image, Labels: { 'dev.gantry.node': node } });
  try {
    await created.start();
    // Blocked in its syscall (ps state S), not exited and not spinning (R): that is what pause does.
    const top = await waitFor(async () => {
      const t = (await created.top({ ps_args: '-o pid,stat,comm' })) as { Titles: string[]; Processes: string[][] };
      return t.Processes.length > 0 ? t : undefined;
    }, { what: 'the pause process' });
    const stat = top.Titles.indexOf('STAT');
    assert.equal(top.Processes.length, 1, 'one process');
    assert.match(top.Processes[0]![stat]!, /^S/);
    assert.equal((await created.inspect()).State.Running, true);

    await created.kill();
    const ended = (await created.wait()) as { StatusCode: number };
    assert.equal(ended.StatusCode, 137, 'SIGKILL');
    await created.remove();
    await assert.rejects(created.inspect(), (err) => statusCode(err) === 404);
  } finally {
    await created.remove({ force: true }).catch(() => {});
  }
});

dockerTest('containers joined to a sandbox share its network: localhost between them, its published port from the host', async () => {
  const hostPort = await freePort();
  const server = busybox('server', ['httpd', '-f', '-p', '8080', '-h', '/www'], [{ name: 'http', containerPort: 8080 }]);
  const client = busybox('client', ['sh', '-c', 'until wget -qO- http://localhost:8080/ > /tmp/out; do sleep 0.2; done; cat /tmp/out; sleep 3600']);
  const r = record([server, client]);
  const podPorts: PortStatus[] = [{ name: 'http', containerPort: 8080, hostPort }];
  try {
    const sandboxId = await sandboxes.create(r, podPorts);
    const started = await sandboxes.start(sandboxId);
    assert.match(started.podIP, /^\d{1,3}(\.\d{1,3}){3}$/);

    // The server's own create options publish 8080; joined, the sandbox publishes it instead.
    const serverId = await startJoined(r, server, podPorts, sandboxId);
    const clientId = await startJoined(r, client, [], sandboxId);
    for (const id of [serverId, clientId]) {
      const info = await docker.getContainer(id).inspect();
      assert.equal(info.HostConfig.NetworkMode, `container:${sandboxId}`);
    }

    const fetched = await waitFor(async () => ((await logsOf(clientId)).includes('gantry test image') ? logsOf(clientId) : undefined), { what: 'the client fetched the page over localhost', timeoutMs: 20_000 });
    assert.match(fetched, /gantry test image/);

    const fromHost = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${hostPort}/`);
      return res.ok ? res.text() : undefined;
    }, { what: `the page at 127.0.0.1:${hostPort}` });
    assert.equal(fromHost.trim(), 'gantry test image');

    const found = await sandboxes.find(r.id, server.ports);
    assert.ok(found, 'the sandbox is found by its labels');
    assert.equal(found.id, sandboxId);
    assert.equal(found.uid, r.uid);
    assert.equal(found.running, true);
    assert.equal(found.podIP, started.podIP);
    assert.deepEqual(found.ports, podPorts);
    // The pause process kept running through all of it.
    assert.equal((await docker.getContainer(sandboxId).inspect()).State.Running, true);

    await sandboxes.remove(sandboxId);
    await assert.rejects(docker.getContainer(sandboxId).inspect(), (err) => statusCode(err) === 404);
    assert.equal(await sandboxes.find(r.id), undefined);
    await sandboxes.remove(sandboxId); // gone already is fine
  } finally {
    await removeContainersWithLabels([`dev.gantry.node=${node}`, `dev.gantry.instance=${r.id}`]);
  }
});

dockerTest('a sandbox that is not running is found as such, without an address', async () => {
  const r = record([]);
  try {
    const sandboxId = await sandboxes.create(r, []);
    await sandboxes.start(sandboxId);
    await docker.getContainer(sandboxId).kill();
    const found = await waitFor(async () => {
      const f = await sandboxes.find(r.id);
      return f && !f.running ? f : undefined;
    }, { what: 'the killed sandbox found not running' });
    assert.equal(found.id, sandboxId);
    assert.equal(found.podIP, undefined);
    assert.deepEqual(found.ports, []);
  } finally {
    await removeContainersWithLabels([`dev.gantry.node=${node}`, `dev.gantry.instance=${r.id}`]);
  }
});

dockerTest('the pause image is made once: concurrent callers share one import, a later one finds it', async () => {
  // A repository of its own, so that the count is this test's imports only.
  const repository = `gantry-test/pause-${randomUUID().slice(0, 8)}`;
  const importsOf = async (ref: string) => {
    // Every import leaves an image with the label, even one whose tag a later import took.
    const images = await docker.listImages({ all: true, filters: { label: [`dev.gantry.pause-image=${ref}`] } });
    imagesMade.push(...images.map((i) => i.Id));
    return images.length;
  };
  const [a, b] = await Promise.all([ensurePauseImage(docker, repository), ensurePauseImage(docker, repository)]);
  assert.equal(a, b);
  assert.match(a, new RegExp(`^${repository}:[0-9a-f]{12}$`));
  assert.equal(await importsOf(a), 1, 'one import');
  assert.equal(await ensurePauseImage(docker, repository), a);
  assert.equal(await importsOf(a), 1, 'present: not imported again');
  const info = await docker.getImage(a).inspect();
  assert.deepEqual(info.Config.Cmd, ['/pause']);
});
