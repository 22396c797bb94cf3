import { wellKnownNodeLabels } from '../../agents/node-labels.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connectRedis } from '../../state/connection.ts';
import { readInstanceLogs } from '../../agents/log-file.ts';
import { waitFor } from '../helpers/wait.ts';
import { AgentWorld, container, httpGet, instanceRecord, pidAlive, processGroupsOf } from '../helpers/agent-fixtures.ts';

/** Each test gets its own world and leaves no process behind, pass or fail. */
function agentTest(name: string, body: (w: AgentWorld) => Promise<void>): void {
  test(name, async () => {
    const world = await AgentWorld.create();
    try {
      await body(world);
    } finally {
      await world.cleanup();
    }
  });
}

async function running(w: AgentWorld, id: string) {
  return waitFor(async () => {
    const s = await w.status(id);
    return s?.phase === 'Running' ? s : undefined;
  }, { what: `${id} Running` });
}

agentTest('registers the node with capacity and labels, announces it, and heartbeats', async (w) => {
  const sub = connectRedis(w.url, 'agent-test-sub');
  const announced: string[] = [];
  sub.on('message', (_channel, message) => announced.push(message));
  await sub.subscribe(w.keys.changesChannel);
  try {
    await w.startAgent({ labels: { zone: 'a' }, heartbeatMs: 100, address: '127.0.0.1', docker: false });
    const node = await w.nodeRecord();
    assert.equal(node?.cpuMilli, 4000);
    assert.equal(node?.memoryBytes, 8 * 1024 ** 3);
    // The operator's labels over the ones every Kubernetes node carries.
    assert.deepEqual(node?.labels, { ...wellKnownNodeLabels(node!.name), zone: 'a' });
    assert.deepEqual(node?.runtimes, ['process']);
    assert.equal(node?.address, '127.0.0.1');
    assert.equal(node?.agentPid, process.pid);
    assert.equal(await w.redis.sismember(w.keys.nodes, w.node), 1);
    const first = Number(await w.redis.get(w.keys.nodeHeartbeat(w.node)));
    await waitFor(async () => Number(await w.redis.get(w.keys.nodeHeartbeat(w.node))) > first, { what: 'a second heartbeat' });
    await waitFor(() => announced.includes(`node/${w.node}`), { what: 'node announcement' });
  } finally {
    await sub.quit();
  }
});

agentTest('keeps a cordon set by an operator when it registers again', async (w) => {
  await w.redis.set(w.keys.node(w.node), JSON.stringify({ name: w.node, cordoned: true }));
  await w.startAgent();
  assert.equal((await w.nodeRecord())?.cordoned, true);
  assert.equal((await w.nodeRecord())?.cpuMilli, 4000);
});

agentTest('runs a bound instance, reports it Running, and removes it when unbound', async (w) => {
  await w.startAgent();
  const record = instanceRecord(w.node, {
    containers: [container({ env: [{ name: 'GREETING', value: 'hi' }], ports: [{ name: 'http', containerPort: 8080 }, { name: 'admin-api', containerPort: 9090 }] })],
  });
  await w.bind(record);
  await w.nudge(record.id);

  const status = await running(w, record.id);
  assert.equal(status.uid, record.uid);
  assert.equal(status.node, w.node);
  assert.equal(status.hostIP, '127.0.0.1');
  assert.equal(status.restarts, 0);
  assert.ok(status.pid && pidAlive(status.pid));
  assert.deepEqual(status.ports.map((p) => [p.name, p.containerPort]), [['http', 8080], ['admin-api', 9090]]);
  const [http, admin] = status.ports;
  assert.equal(await waitFor(() => httpGet(http!.hostPort), { what: 'HTTP answer' }), record.id);

  // The environment the process got: base + container env + ports + identity.
  const env = readFileSync(`/proc/${pidOfCommand(status.pid)}/environ`, 'utf8').split('\0');
  for (const expected of [`GREETING=hi`, `PORT=${http!.hostPort}`, `PORT_HTTP=${http!.hostPort}`, `PORT_ADMIN_API=${admin!.hostPort}`,
    `GANTRY_NODE=${w.node}`, 'GANTRY_NAMESPACE=default', 'GANTRY_DEPLOYMENT=web', `GANTRY_INSTANCE_ID=${record.id}`]) {
    assert.ok(env.includes(expected), `missing ${expected}`);
  }

  await w.unbind(record);
  await w.nudge(record.id, 'stop');
  await waitFor(() => !pidAlive(status.pid!), { what: 'process gone' });
  await waitFor(async () => (await w.status(record.id)) === undefined, { what: 'status removed' });
  await waitFor(() => !existsSync(w.instanceDir(record.id)), { what: 'instance dir removed' });
  assert.equal(processGroupsOf(record.id).size, 0);
});

agentTest('a restarted agent adopts the running process: same pid, no restart, no duplicate', async (w) => {
  const first = await w.startAgent();
  const record = instanceRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const before = await running(w, record.id);
  await first.stop();
  assert.ok(pidAlive(before.pid!), 'a default stop leaves instances running');

  await w.startAgent();
  await waitFor(() => w.logs.includes(`adopted ${record.id}`), { what: 'adoption' });
  const after = await running(w, record.id);
  assert.equal(after.pid, before.pid);
  assert.equal(after.restarts, 0);
  assert.deepEqual(after.ports, before.ports);
  assert.equal(processGroupsOf(record.id).size, 1);
  assert.equal(await waitFor(() => httpGet(after.ports[0]!.hostPort), { what: 'HTTP after adoption' }), record.id);

  // An adopted process is watched by polling: killing it still gets it restarted.
  process.kill(after.pid!, 'SIGKILL');
  const restarted = await waitFor(async () => {
    const s = await w.status(record.id);
    return s?.phase === 'Running' && s.restarts === 1 ? s : undefined;
  }, { what: 'restart of the adopted process' });
  assert.notEqual(restarted.pid, before.pid);
  assert.equal(await waitFor(() => httpGet(restarted.ports[0]!.hostPort)), record.id);
  assert.equal(processGroupsOf(record.id).size, 1);
});

agentTest('a process killed out of band is restarted (the first restart of a sequence is immediate)', async (w) => {
  await w.startAgent();
  const record = instanceRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const before = await running(w, record.id);
  process.kill(before.pid!, 'SIGKILL');
  const after = await waitFor(async () => {
    const s = await w.status(record.id);
    return s?.phase === 'Running' && s.restarts === 1 ? s : undefined;
  }, { what: 'restart' });
  assert.notEqual(after.pid, before.pid);
  assert.equal(after.ports[0]!.hostPort, before.ports[0]!.hostPort, 'host ports are kept across restarts');
  assert.equal(await waitFor(() => httpGet(after.ports[0]!.hostPort), { what: 'HTTP after restart' }), record.id);
  assert.equal(processGroupsOf(record.id).size, 1, 'the orphaned command of the killed wrapper is gone');
});

agentTest('restartPolicy Never: exit 3 ends Failed with exit code 3, and is not restarted', async (w) => {
  await w.startAgent();
  const record = instanceRecord(w.node, { restartPolicy: 'Never', containers: [container({ command: ['sh', '-c', 'exit 3'], ports: [] })] });
  await w.bind(record);
  await w.nudge(record.id);
  const status = await waitFor(async () => {
    const s = await w.status(record.id);
    return s?.phase === 'Failed' ? s : undefined;
  }, { what: 'Failed' });
  assert.equal(status.exitCode, 3);
  assert.equal(status.restarts, 0);
  assert.equal(status.containers[0]?.running, false);
  assert.ok(status.finishedAt);
});

agentTest('stop sends SIGTERM to the command and records its own exit code', async (w) => {
  await w.startAgent();
  const graceful = "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(7) }); console.log('up'); setInterval(() => {}, 1000)";
  const stubborn = "process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('up'); setInterval(() => {}, 1000)";
  const record = instanceRecord(w.node, {
    restartPolicy: 'Never',
    terminationGracePeriodSeconds: 1,
    containers: [container({ name: 'graceful', command: [process.execPath, '-e', graceful], ports: [] }), container({ name: 'stubborn', command: [process.execPath, '-e', stubborn], ports: [] })],
  });
  await w.bind(record);
  await w.nudge(record.id);
  const status = await running(w, record.id);
  const logsOf = async () => Object.fromEntries((await readInstanceLogs(w.dataDir, w.node, record.id)).map((l) => [l.container, l.text]));
  await waitFor(async () => { const l = await logsOf(); return l.graceful?.includes('up') && l.stubborn?.includes('up'); }, { what: 'both up' });
  const [graceful0, stubborn0] = status.containers;

  // Stop the graceful one alone, as a stop would, and watch its wrapper record the command's code.
  const { stopProcessGroup } = await import('../../agents/process-driver.ts');
  const exitFile = join(w.instanceDir(record.id), 'graceful.exit');
  await stopProcessGroup({ pid: graceful0!.pid!, pgid: graceful0!.pid! }, 5_000);
  assert.equal(readFileSync(exitFile, 'utf8').trim(), '7');
  assert.match((await logsOf()).graceful!, /got SIGTERM/);

  // The stubborn one outlives SIGTERM and is killed once the 1 s grace period has passed.
  const started = Date.now();
  await w.unbind(record);
  await w.nudge(record.id, 'stop');
  await waitFor(() => !pidAlive(stubborn0!.pid!), { what: 'stubborn process killed' });
  assert.ok(Date.now() - started >= 900, 'SIGKILL came after the grace period');
});

agentTest('an instance bound without any job is picked up by the resync', async (w) => {
  await w.startAgent({ resyncMs: 200 });
  const record = instanceRecord(w.node);
  await w.bind(record);
  const status = await running(w, record.id);
  assert.equal(await waitFor(() => httpGet(status.ports[0]!.hostPort)), record.id);
});

agentTest('a recreated instance (new uid) replaces the running copy', async (w) => {
  await w.startAgent();
  const record = instanceRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const before = await running(w, record.id);
  const recreated = { ...record, uid: 'uid-2' };
  await w.bind(recreated);
  await w.nudge(record.id);
  const after = await waitFor(async () => {
    const s = await w.status(record.id);
    return s?.uid === 'uid-2' && s.phase === 'Running' ? s : undefined;
  }, { what: 'new incarnation Running' });
  assert.ok(!pidAlive(before.pid!));
  assert.notEqual(after.pid, before.pid);
  assert.equal(after.restarts, 0);
});

agentTest('an instance moved to another node is stopped here and keeps the other node\'s status', async (w) => {
  await w.startAgent();
  const record = instanceRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const here = await running(w, record.id);
  const moved = { ...record, node: 'elsewhere' };
  await w.redis.srem(w.keys.nodeInstances(w.node), record.id);
  await w.bind(moved);
  const theirs = { ...here, node: 'elsewhere', pid: 1234 };
  await w.redis.set(w.keys.instanceStatus(record.id), JSON.stringify(theirs));
  await w.nudge(record.id, 'stop');
  await waitFor(() => !pidAlive(here.pid!), { what: 'local copy stopped' });
  await waitFor(() => !existsSync(w.instanceDir(record.id)), { what: 'instance dir removed' });
  assert.equal((await w.status(record.id))?.node, 'elsewhere');
});

agentTest('reports why an instance cannot run: image, no command', async (w) => {
  await w.startAgent({ docker: false });
  const withImage = instanceRecord(w.node, { ordinal: 0, containers: [container({ image: 'nginx:1' })] });
  const noCommand = instanceRecord(w.node, { ordinal: 1, containers: [container({ command: [] })] });
  for (const r of [withImage, noCommand]) {
    await w.bind(r);
    await w.nudge(r.id);
  }
  const reasonOf = async (id: string) => (await w.status(id))?.reason;
  assert.equal(await waitFor(() => reasonOf(withImage.id)), 'RuntimeUnavailable');
  assert.equal(await waitFor(() => reasonOf(noCommand.id)), 'NoCommand');
  assert.equal((await w.status(noCommand.id))?.phase, 'Failed');
});

agentTest('a log over the cap is rotated and the process keeps appending', async (w) => {
  await w.startAgent({ resyncMs: 100, logMaxBytes: 1000 });
  const chatty = "console.log('x'.repeat(3000)); setInterval(() => console.log('tick'), 50)";
  const record = instanceRecord(w.node, { containers: [container({ command: [process.execPath, '-e', chatty], ports: [] })] });
  await w.bind(record);
  await w.nudge(record.id);
  const log = join(w.instanceDir(record.id), 'main.log');
  await waitFor(() => existsSync(`${log}.1`), { what: 'rotation' });
  assert.ok(readFileSync(`${log}.1`, 'utf8').includes('x'.repeat(3000)));
  // O_APPEND: new output starts at the truncated file's end, not at the old offset (no NUL gap).
  await waitFor(() => readFileSync(log, 'utf8').split('tick').length > 2, { what: 'writes after rotation' });
  assert.ok(statSync(log).size < 1000);
  assert.ok(!readFileSync(log, 'utf8').includes('\0'));
  const [tail] = await readInstanceLogs(w.dataDir, w.node, record.id, 'main', 2);
  assert.equal(tail?.text, 'tick\ntick\n');
});

agentTest('stop({ stopInstances: true }) stops every process', async (w) => {
  const agent = await w.startAgent();
  const record = instanceRecord(w.node);
  await w.bind(record);
  await w.nudge(record.id);
  const status = await running(w, record.id);
  await agent.stop({ stopInstances: true });
  assert.ok(!pidAlive(status.pid!));
  assert.equal(processGroupsOf(record.id).size, 0);
  assert.equal((await w.status(record.id))?.reason, 'AgentStopped');
});

/** The reported pid is the wrapper shell's; the command is its only child. */
function pidOfCommand(wrapperPid: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4, the parent pid, is the second after the ") " that ends the command name.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === wrapperPid) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no child of ${wrapperPid}`);
}
