import { after } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerSpec, InstanceRecord, InstanceStatus } from '../../state/records/instance.ts';
import { EventLog } from '../../state/events.ts';
import { connectRedis } from '../../state/connection.ts';
import { ensureClusterSecret } from '../../state/cluster-secret.ts';
import { AgentWorld, container, httpGet, instanceRecord } from '../helpers/agent-fixtures.ts';
import { docker, dockerTest, gantryContainers, podSandboxes, removeContainersWithLabels, startEngineProxy, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The Docker driver against the real engine: an agent in-process with a real Redis, instance
 * records written directly as the reconciler and scheduler would, containers of the busybox test
 * image. Every container a test creates carries its node's label and is removed afterwards.
 */

const Mi = 1024 ** 2;
/** Each replica serves its own instance id, so that an answer proves which container the port reaches. */
const WEB = ['sh', '-c', 'echo "$GANTRY_INSTANCE_ID" > /www/index.html && exec httpd -f -p "$PORT" -h /www'];

function web(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return container({ image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: WEB, ports: [{ name: 'http', containerPort: 8080 }], cpuMilli: 250, memoryBytes: 32 * Mi, ...overrides });
}

function dockerRecord(node: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return instanceRecord(node, { runtime: 'docker', terminationGracePeriodSeconds: 2, containers: [web()], ...overrides });
}

const nodesUsed = new Set<string>();
after(async () => {
  for (const node of nodesUsed) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

function dockerAgentTest(name: string, body: (w: AgentWorld) => Promise<void>): void {
  dockerTest(name, async () => {
    const world = await AgentWorld.create();
    nodesUsed.add(world.node);
    try {
      await body(world);
    } finally {
      try {
        await world.cleanup();
      } finally {
        await removeContainersWithLabels([`dev.gantry.node=${world.node}`]);
      }
    }
  });
}

async function statusWhere(w: AgentWorld, id: string, what: string, ok: (s: InstanceStatus) => boolean, timeoutMs = 20_000): Promise<InstanceStatus> {
  return waitFor(async () => {
    const s = await w.status(id);
    return s && ok(s) ? s : undefined;
  }, { what: `${id}: ${what}`, timeoutMs });
}

const running = (w: AgentWorld, id: string) => statusWhere(w, id, 'Running', (s) => s.phase === 'Running');

async function start(w: AgentWorld, ...records: InstanceRecord[]): Promise<void> {
  for (const r of records) {
    await w.bind(r);
    await w.nudge(r.id);
  }
}

async function containerIdOf(w: AgentWorld, id: string): Promise<string> {
  const list = await gantryContainers(w.node, id);
  assert.equal(list.length, 1, `one container for ${id}`);
  return list[0]!.Id;
}

dockerAgentTest('offers the docker runtime and a logs port when the engine answers', async (w) => {
  await w.startAgent();
  const node = await w.nodeRecord();
  assert.deepEqual(node?.runtimes, ['process', 'docker']);
  assert.ok(node?.logsPort && node.logsPort > 0);
});

dockerAgentTest('an engine that goes away and comes back: the node re-registers without docker, then with it', async (w) => {
  const proxy = await startEngineProxy(w.dataDir);
  const sub = connectRedis(w.url, 'docker-agent-test-sub');
  const announced: string[] = [];
  sub.on('message', (_channel, message) => announced.push(message));
  await sub.subscribe(w.keys.changesChannel);
  const saved = process.env.DOCKER_HOST;
  let agent: Awaited<ReturnType<AgentWorld['startAgent']>> | undefined;
  try {
    // The agent reads DOCKER_HOST when it starts, as the docker CLI does.
    process.env.DOCKER_HOST = proxy.dockerHost;
    try {
      agent = await w.startAgent({ resyncMs: 200 });
    } finally {
      if (saved === undefined) delete process.env.DOCKER_HOST;
      else process.env.DOCKER_HOST = saved;
    }
    const r = dockerRecord(w.node);
    await start(w, r);
    await running(w, r.id);
    const runtimes = async () => (await w.nodeRecord())?.runtimes.join(',');
    assert.equal(await runtimes(), 'process,docker');

    announced.length = 0;
    await proxy.down();
    await waitFor(async () => (await runtimes()) === 'process', { timeoutMs: 30_000, what: 'docker no longer offered' });
    await waitFor(() => announced.includes(`node/${w.node}`), { timeoutMs: 30_000, what: 'node change announced' });
    assert.ok(w.logs.some((l) => l.includes('Docker engine not reachable')));

    announced.length = 0;
    await proxy.up();
    await waitFor(async () => (await runtimes()) === 'process,docker', { timeoutMs: 30_000, what: 'docker offered again' });
    await waitFor(() => announced.includes(`node/${w.node}`), { timeoutMs: 30_000, what: 'node change announced again' });
    // The container ran on while the agent could not see it, and is still the same one, still watched.
    const s = await running(w, r.id);
    assert.equal(s.restarts, 0);
    await docker.getContainer(await containerIdOf(w, r.id)).remove({ force: true });
    await statusWhere(w, r.id, 'replaced after the engine came back', (x) => x.phase === 'Running' && x.restarts >= 1, 40_000);
  } finally {
    // While the agent can still reach the engine to stop its containers.
    await agent?.stop({ stopInstances: true });
    await sub.quit();
    await proxy.close();
  }
});

dockerAgentTest('3 containers answer HTTP on their published host ports, with limits, labels and env', async (w) => {
  await w.startAgent();
  const records = [0, 1, 2].map((ordinal) => dockerRecord(w.node, { ordinal }));
  await start(w, ...records);
  for (const r of records) {
    const s = await running(w, r.id);
    assert.equal(s.restarts, 0);
    assert.deepEqual(s.ports.map((p) => [p.name, p.containerPort]), [['http', 8080]]);
    assert.ok(s.pid && s.pid > 0, 'the container init pid is reported');
    const body = await waitFor(() => httpGet(s.ports[0]!.hostPort), { what: `HTTP from ${r.id}` });
    assert.equal(body.trim(), r.id);

    const info = await docker.getContainer(await containerIdOf(w, r.id)).inspect();
    assert.equal(info.Name, `/gantry-${w.node}-${r.id}-main`);
    assert.equal(info.HostConfig.NanoCpus, 250_000_000);
    assert.equal(info.HostConfig.Memory, 32 * Mi);
    // A pod: the ports are published once, on its sandbox (the pause container), whose network the container joins.
    const [sandbox, ...more] = await podSandboxes(w.node, r.id);
    assert.equal(more.length, 0, 'one sandbox per pod');
    const pause = await docker.getContainer(sandbox!.Id).inspect();
    assert.deepEqual(pause.HostConfig.PortBindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(s.ports[0]!.hostPort) }] });
    assert.equal(info.HostConfig.NetworkMode, `container:${sandbox!.Id}`);
    assert.equal(s.podIP, pause.NetworkSettings.Networks.bridge?.IPAddress, 'status.podIP is the sandbox address');
    const labels = info.Config.Labels;
    assert.deepEqual(
      [labels['dev.gantry.managed'], labels['dev.gantry.node'], labels['dev.gantry.namespace'], labels['dev.gantry.deployment'], labels['dev.gantry.instance'], labels['dev.gantry.uid'], labels['dev.gantry.revision'], labels['dev.gantry.container']],
      ['true', w.node, 'default', 'web', r.id, r.uid, r.templateHash, 'main'],
    );
    for (const e of ['PORT=8080', 'PORT_HTTP=8080', `GANTRY_INSTANCE_ID=${r.id}`, `GANTRY_NODE=${w.node}`, 'GANTRY_NAMESPACE=default', 'GANTRY_DEPLOYMENT=web']) {
      assert.ok(info.Config.Env.includes(e), `env ${e}`);
    }
  }

  // Unbound: stopped within its grace period and removed.
  const [first] = records;
  await w.unbind(first!);
  await w.nudge(first!.id, 'stop');
  await waitFor(async () => (await gantryContainers(w.node, first!.id)).length === 0, { what: 'container removed' });
  await waitFor(async () => (await podSandboxes(w.node, first!.id)).length === 0, { what: 'sandbox removed' });
  await waitFor(async () => (await w.status(first!.id)) === undefined, { what: 'status removed' });
});

dockerAgentTest('an image that cannot be pulled: ImagePullFailed in status and events, retried', async (w) => {
  await w.startAgent();
  const missing = dockerRecord(w.node, { ordinal: 0, containers: [web({ image: 'gantry-test/does-not-exist:1' })] });
  // Always pulls even though the image is here; without a registry that fails too.
  const always = dockerRecord(w.node, { ordinal: 1, containers: [web({ imagePullPolicy: 'Always' })] });
  await start(w, missing, always);
  for (const r of [missing, always]) {
    const s = await statusWhere(w, r.id, 'ImagePullFailed', (x) => x.reason === 'ImagePullFailed');
    assert.equal(s.phase, 'Pending');
    assert.match(s.message!, /^ImagePullFailed: \S/);
    assert.equal(s.restarts, 0);
  }
  const failures = async () => (await new EventLog(w.redis, w.keys).read({ object: `instance/${missing.id}` })).filter((e) => e.reason === 'ImagePullFailed');
  const [event] = await waitFor(async () => ((await failures()).length > 0 ? failures() : undefined), { what: 'ImagePullFailed event' });
  assert.equal(event!.type, 'Warning');
  assert.match(event!.message, /gantry-test\/does-not-exist:1/);
  // Retried with backoff (1 s, then 2 s): a second failure event comes.
  await waitFor(async () => (await failures()).length >= 2, { what: 'a retried pull', timeoutMs: 20_000 });
  assert.equal((await gantryContainers(w.node)).length, 0, 'nothing was created');
});

dockerAgentTest('imagePullPolicy Never: a missing image is ErrImageNeverPull, a present one runs', async (w) => {
  await w.startAgent();
  const missing = dockerRecord(w.node, { ordinal: 0, containers: [web({ image: 'gantry-test/never-pulled:1', imagePullPolicy: 'Never' })] });
  const present = dockerRecord(w.node, { ordinal: 1, containers: [web({ imagePullPolicy: 'Never' })] });
  await start(w, missing, present);
  const s = await statusWhere(w, missing.id, 'ErrImageNeverPull', (x) => x.reason === 'ErrImageNeverPull');
  assert.equal(s.phase, 'Pending');
  assert.match(s.message!, /^ErrImageNeverPull: image gantry-test\/never-pulled:1 is not present/);
  const ok = await running(w, present.id);
  assert.equal((await waitFor(() => httpGet(ok.ports[0]!.hostPort)))!.trim(), present.id);
});

dockerAgentTest('a restarted agent adopts running containers: same ids, no restart', async (w) => {
  const first = await w.startAgent();
  const records = [0, 1].map((ordinal) => dockerRecord(w.node, { ordinal }));
  await start(w, ...records);
  const before = new Map<string, { id: string; status: InstanceStatus }>();
  for (const r of records) before.set(r.id, { status: await running(w, r.id), id: await containerIdOf(w, r.id) });
  await first.stop();
  for (const r of records) assert.equal((await docker.getContainer(before.get(r.id)!.id).inspect()).State.Running, true, 'left running');

  await w.startAgent();
  for (const r of records) {
    await waitFor(() => w.logs.includes(`adopted ${r.id}`), { what: `adoption of ${r.id}` });
    const after = await running(w, r.id);
    assert.equal(after.restarts, 0);
    assert.deepEqual(after.ports, before.get(r.id)!.status.ports);
    assert.equal(await containerIdOf(w, r.id), before.get(r.id)!.id);
    assert.equal((await waitFor(() => httpGet(after.ports[0]!.hostPort)))!.trim(), r.id);
  }
});

dockerAgentTest('a container removed out of band (docker rm -f) is replaced after a backoff', async (w) => {
  await w.startAgent();
  const r = dockerRecord(w.node);
  await start(w, r);
  const before = await running(w, r.id);
  const oldId = await containerIdOf(w, r.id);
  await docker.getContainer(oldId).remove({ force: true });
  // At least one restart: under load the engine may report the removal more than once.
  const after = await statusWhere(w, r.id, 'Running again after a restart', (s) => s.phase === 'Running' && s.restarts >= 1, 40_000);
  const newId = await containerIdOf(w, r.id);
  assert.notEqual(newId, oldId);
  assert.equal(after.ports[0]!.hostPort, before.ports[0]!.hostPort, 'host ports are kept across restarts');
  assert.equal((await waitFor(() => httpGet(after.ports[0]!.hostPort)))!.trim(), r.id);
  const labels = (await docker.getContainer(newId).inspect()).Config.Labels;
  assert.ok(Number(labels['dev.gantry.restarts']) >= 1, `restarts label ${labels['dev.gantry.restarts']}`);
});

dockerAgentTest('stray containers labelled for this node are removed; assigned ones stay', async (w) => {
  await w.startAgent({ resyncMs: 300 });
  const r = dockerRecord(w.node);
  await start(w, r);
  await running(w, r.id);
  const keep = await containerIdOf(w, r.id);
  const labels = (instance: string, uid: string) => ({
    'dev.gantry.managed': 'true', 'dev.gantry.node': w.node, 'dev.gantry.namespace': 'default', 'dev.gantry.deployment': 'ghost',
    'dev.gantry.instance': instance, 'dev.gantry.uid': uid, 'dev.gantry.container': 'main', 'dev.gantry.grace-seconds': '1',
  });
  const strays = [
    // An instance nothing assigns to this node.
    { name: `stray-${w.node}-ghost`, Labels: labels('default.ghost-00000000-0', 'ghost-uid') },
    // An old incarnation of an instance that does run here.
    { name: `stray-${w.node}-old`, Labels: labels(r.id, 'an-older-uid') },
  ];
  // Another Gantry installation's node of the same name on this engine: not ours to touch.
  const foreign = { name: `foreign-${w.node}`, Labels: { ...labels('default.ghost-00000000-1', 'foreign-uid'), 'dev.gantry.scope': 'another00000' } };
  for (const s of [...strays, foreign]) {
    const c = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '3600'], HostConfig: { Init: true }, ...s });
    await c.start();
  }
  await waitFor(async () => {
    const names = (await gantryContainers(w.node)).map((c) => c.Names[0]).sort();
    return names.length === 2 && names[0] === `/foreign-${w.node}` && names[1] === `/gantry-${w.node}-${r.id}-main`;
  }, { what: 'strays removed' });
  assert.equal((await gantryContainers(w.node, r.id)).filter((c) => c.Labels['dev.gantry.uid'] === r.uid).map((c) => c.Id)[0], keep);
  assert.equal((await w.status(r.id))?.restarts, 0);
});

dockerAgentTest('a container over its memory limit is reported OOMKilled with exit code 137', async (w) => {
  await w.startAgent();
  // busybox tail keeps the last lines; /dev/zero has no newline, so it grows until the limit.
  const r = dockerRecord(w.node, { restartPolicy: 'Never', containers: [web({ command: ['tail', '/dev/zero'], ports: [], memoryBytes: 8 * Mi })] });
  await start(w, r);
  const s = await statusWhere(w, r.id, 'Failed', (x) => x.phase === 'Failed');
  assert.equal(s.reason, 'OOMKilled');
  assert.equal(s.exitCode, 137);
  assert.match(s.message!, /exited with code 137 \(OOMKilled\)/);
  await waitFor(async () => (await gantryContainers(w.node, r.id)).length === 0, { what: 'ended container removed' });
});

/** The reconciler's credential for agents' log servers (in Redis; see state/cluster-secret.ts). */
async function logsAuth(w: AgentWorld): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await ensureClusterSecret(w.redis, w.keys.logsSecret)}` };
}

async function getLogs(w: AgentWorld, port: number, id: string, query = ''): Promise<{ status: number; body: string; type: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}/logs/${id}${query}`, { headers: await logsAuth(w) });
  return { status: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

/** Reads a follow stream until `done(text)` holds; returns the text and the open reader. */
async function follow(w: AgentWorld, port: number, id: string, query: string, done: (text: string) => boolean) {
  const res = await fetch(`http://127.0.0.1:${port}/logs/${id}${query}`, { headers: await logsAuth(w) });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  await waitFor(async () => {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error(`stream ended early: ${JSON.stringify(text)}`);
      text += decoder.decode(value, { stream: true });
    }
    return true;
  }, { what: `followed logs of ${id}`, timeoutMs: 20_000 });
  return { text, reader };
}

const numbered = (text: string, prefix: string) => [...text.matchAll(new RegExp(`^${prefix}(\\d+)$`, 'gm'))].map((m) => Number(m[1]));

dockerAgentTest('the logs endpoint tails and follows a process and a container', async (w) => {
  await w.startAgent();
  const port = (await w.nodeRecord())!.logsPort!;
  const proc = instanceRecord(w.node, { ordinal: 0, containers: [container({ command: [process.execPath, '-e', "let i = 0; setInterval(() => console.log('p' + i++), 100)"], ports: [] })] });
  const ctr = dockerRecord(w.node, { ordinal: 1, containers: [web({ command: ['sh', '-c', 'i=0; while true; do echo "d$i"; i=$((i+1)); sleep 0.1; done'], ports: [] })] });
  await start(w, proc, ctr);
  for (const [r, prefix] of [[proc, 'p'], [ctr, 'd']] as const) {
    await running(w, r.id);
    const tailed = await waitFor(async () => {
      const res = await getLogs(w, port, r.id, '?tail=2');
      return numbered(res.body, prefix).length === 2 ? res : undefined;
    }, { what: `two lines of ${r.id}` });
    assert.equal(tailed.status, 200);
    assert.match(tailed.type!, /^text\/plain/);
    assert.equal(tailed.body.split('\n').filter(Boolean).length, 2);
    const [a, b] = numbered(tailed.body, prefix);
    assert.equal(b, a! + 1);
    // Following: the tail, then lines written after the request.
    const { text, reader } = await follow(w, port, r.id, '?tail=1&follow=1', (t) => numbered(t, prefix).length >= 4);
    const seen = numbered(text, prefix);
    assert.ok(seen[0]! >= b!, 'starts at the tail');
    assert.deepEqual(seen.slice(0, 4), [0, 1, 2, 3].map((k) => seen[0]! + k), 'consecutive lines, nothing lost or doubled');
    await reader.cancel();
  }
  // A follower of the container ends when the instance stops here.
  const { reader } = await follow(w, port, ctr.id, '?follow=1&tail=0', (t) => numbered(t, 'd').length >= 1);
  await w.unbind(ctr);
  await w.nudge(ctr.id, 'stop');
  await waitFor(async () => (await reader.read()).done, { what: 'follow stream ended with the instance', timeoutMs: 20_000 });

  const unknown = await getLogs(w, port, 'default.nothing-here-0');
  assert.equal(unknown.status, 404);
  assert.match(JSON.parse(unknown.body).error, /not on node/);
  assert.equal((await getLogs(w, port, proc.id, '?container=nope')).status, 404);
  assert.equal((await getLogs(w, port, proc.id, '?tail=x')).status, 400);
});

dockerAgentTest('an ended container is removed, its exit code and last lines kept for logs', async (w) => {
  await w.startAgent();
  const port = (await w.nodeRecord())!.logsPort!;
  const r = dockerRecord(w.node, { restartPolicy: 'Never', containers: [web({ command: ['sh', '-c', 'echo oops >&2; sleep 0.3; echo hello from docker; echo bye; exit 3'], ports: [] })] });
  await start(w, r);
  const s = await statusWhere(w, r.id, 'Failed', (x) => x.phase === 'Failed');
  assert.equal(s.exitCode, 3);
  assert.equal(s.reason, 'Error');
  await waitFor(async () => (await gantryContainers(w.node, r.id)).length === 0, { what: 'container removed' });
  const logs = await getLogs(w, port, r.id);
  // stderr first, then (after a pause: the engine copies the two streams independently) stdout.
  assert.equal(logs.body, 'oops\nhello from docker\nbye\n');
  assert.equal((await getLogs(w, port, r.id, '?tail=1')).body, 'bye\n');
});

dockerAgentTest('exec probes run inside the container: ready only once the command passes', async (w) => {
  await w.startAgent();
  const probe = { exec: { command: ['sh', '-c', '[ -f /tmp/ready ]'] }, initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 2, successThreshold: 1, failureThreshold: 3 };
  // The file the probe looks for appears inside the container only after a while.
  const r = dockerRecord(w.node, { containers: [web({ command: ['sh', '-c', 'sleep 2; echo ok > /tmp/ready; exec sleep 3600'], ports: [], readinessProbe: probe })] });
  await start(w, r);
  const first = await statusWhere(w, r.id, 'running', (s) => s.phase === 'Running');
  assert.equal(first.ready, false, 'not ready before the file exists in the container');
  await statusWhere(w, r.id, 'ready', (s) => s.phase === 'Running' && s.ready === true, 30_000);
});
