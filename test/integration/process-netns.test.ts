import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeLimitGroup, setUpLimits } from '../../agents/cgroup-limits.ts';
import { agentScope } from '../../agents/docker-labels.ts';
import { readInstanceState } from '../../agents/instance-dir.ts';
import { deleteNetns, inspectNetns, ip, listNetns, netnsExists, netnsPath, podNetnsSupport } from '../../agents/pod-netns.ts';
import { netnsName, netnsPrefix } from '../../agents/pod-netns-plan.ts';
import type { InstanceStatus, ProbeSpec } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord, pidAlive } from '../helpers/agent-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * `--pod-network-namespaces` for real: an agent in-process with a real Redis, real processes in
 * real network namespaces and veth pairs, real TCP and UDP through the agent's relays. Traffic goes
 * only to 127.0.0.1 and to the namespaces the agents of this file make. Needs root and `ip netns`
 * (as in CI); elsewhere every test is skipped with the reason.
 */

const support = podNetnsSupport();
const unavailable = 'error' in support ? `pod network namespaces unavailable here: ${support.error}` : undefined;

/** Why processes get no cgroups here (tried for real, as process-limits.test.ts does), or undefined. */
function whyNoCgroups(): string | undefined {
  const setup = setUpLimits({ instanceDir: `/tmp/gantry-netns-cgroup-probe-${process.pid}`, container: 'probe', limits: { memoryBytes: 64 * 1024 ** 2 } });
  if ('notEnforced' in setup) return `no writable cgroup hierarchy: ${setup.notEnforced}`;
  if ('group' in setup) void removeLimitGroup(setup.group);
  return undefined;
}

function netnsTest(name: string, body: (w: AgentWorld) => Promise<void>, opts: { needsCgroups?: boolean } = {}): void {
  const skip = unavailable ?? (opts.needsCgroups ? whyNoCgroups() : undefined);
  if (skip) {
    test(name, { skip }, () => {});
    return;
  }
  test(name, async () => {
    const w = await AgentWorld.create();
    try {
      await body(w);
    } finally {
      await w.cleanup();
      // Whatever a failed test left of this world's namespaces.
      for (const n of listNetns(netnsPrefix(scopeOf(w)))) await deleteNetns(n);
    }
  });
}

const scopeOf = (w: AgentWorld) => agentScope(w.dataDir, w.prefix);

/** HTTP on 0.0.0.0:$PORT answering "<id> PORT=<PORT>", a UDP echo on 0.0.0.0:$PORT_ECHO. */
const SERVER_JS = [
  "require('http').createServer((q, s) => s.end(process.env.GANTRY_INSTANCE_ID + ' PORT=' + process.env.PORT)).listen(+process.env.PORT, '0.0.0.0');",
  "const u = require('dgram').createSocket('udp4'); u.on('message', (m, r) => u.send('echo ' + m, r.port, r.address)); u.bind(+process.env.PORT_ECHO, '0.0.0.0');",
].join(' ');

/** Fetches http://localhost:8080/ until it answers, then writes what it got to sidecar.out in its cwd (the instance dir); stays up. */
const SIDECAR_JS = [
  "const fs = require('fs');",
  "const go = () => fetch('http://localhost:8080/').then((r) => r.text()).then((t) => fs.writeFileSync('sidecar.out', t + ' PORT_METRICS=' + process.env.PORT_METRICS + ' pod=' + process.env.GANTRY_POD_HOST + ':' + process.env.GANTRY_PORT_8080), () => setTimeout(go, 100));",
  'go(); setInterval(() => {}, 1 << 30);',
].join(' ');

const probe = (action: Partial<ProbeSpec>): ProbeSpec => ({ initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3, ...action });

function podRecord(w: AgentWorld) {
  return instanceRecord(w.node, {
    containers: [
      container({
        name: 'web',
        command: [process.execPath, '-e', SERVER_JS],
        ports: [{ name: 'http', containerPort: 8080 }, { name: 'echo', containerPort: 5353, protocol: 'UDP' }],
        // On the node address and the host port: through the relay.
        readinessProbe: probe({ httpGet: { path: '/', port: 8080 } }),
      }),
      container({
        name: 'sidecar',
        command: [process.execPath, '-e', SIDECAR_JS],
        ports: [{ name: 'metrics', containerPort: 9090 }],
        // 127.0.0.1:8080 is the pod's loopback: only an exec inside the namespace connects.
        readinessProbe: probe({ exec: { command: [process.execPath, '-e', "require('net').connect(8080, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"] } }),
      }),
    ],
  });
}

async function statusWhere(w: AgentWorld, id: string, what: string, ok: (s: InstanceStatus) => boolean): Promise<InstanceStatus> {
  return waitFor(async () => {
    const s = await w.status(id);
    return s && ok(s) ? s : undefined;
  }, { what: `${id}: ${what}`, timeoutMs: 20_000 });
}

async function httpAt(port: number): Promise<string | undefined> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) })).text();
  } catch {
    return undefined;
  }
}

async function datagram(port: number, message: string): Promise<string | undefined> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1_000);
      s.once('message', (reply) => {
        clearTimeout(timer);
        resolve(reply.toString());
      });
      s.send(message, port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

/** The network namespace inode a process is in, and that of a named namespace. */
const netOfPid = (pid: number) => readlinkSync(`/proc/${pid}/ns/net`);
const netOfName = (name: string) => `net:[${statSync(netnsPath(name)).ino}]`;

netnsTest('a process pod gets its own namespace: containerPort inside, siblings on localhost, ports relayed from the host, adopted by a restarted agent, removed with the pod', async (w) => {
  const first = await w.startAgent({ podNetworkNamespaces: true, docker: false });
  const r = podRecord(w);
  const ns = netnsName(scopeOf(w), r.id);
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Running and ready', (x) => x.phase === 'Running' && x.ready === true);

  // The namespace: loopback up, eth0 holding the pod IP, which is status.podIP.
  const info = await inspectNetns(ns);
  assert.ok(info?.podIP, `namespace ${ns} has an eth0 address`);
  assert.equal(s.podIP, info.podIP);
  assert.match(s.podIP!, /^10\.213\.\d+\.\d+$/);
  assert.match(await ip(['-n', ns, 'addr', 'show', 'dev', 'lo']), /inet 127\.0\.0\.1\/8/);
  const state = readInstanceState(w.instanceDir(r.id))!;
  const pids = Object.fromEntries(state.containers.map((c) => [c.name, c.pid]));
  for (const pid of Object.values(pids)) assert.equal(netOfPid(pid), netOfName(ns), 'the recorded pid (the wrapper shell) runs inside');

  // The sidecar reached the server on localhost:8080, where it listens on its own containerPort.
  const got = await waitFor(() => { try { return readFileSync(join(w.instanceDir(r.id), 'sidecar.out'), 'utf8'); } catch { return undefined; } }, { what: 'the sidecar to fetch localhost:8080' });
  assert.equal(got, `${r.id} PORT=8080 PORT_METRICS=9090 pod=127.0.0.1:8080`, 'GANTRY_POD_HOST:GANTRY_PORT_8080 name the sibling inside the pod too');

  // Published: the host port from the status, on the node address, relayed to podIP:8080 (and UDP to :5353).
  const http = s.ports.find((p) => p.name === 'http')!;
  const echo = s.ports.find((p) => p.name === 'echo')!;
  assert.equal(http.containerPort, 8080);
  assert.equal(await httpAt(http.hostPort), `${r.id} PORT=8080`);
  assert.equal(await waitFor(() => datagram(echo.hostPort, 'ping'), { what: 'UDP through the relay' }), 'echo ping');

  // The agent goes away: the pod keeps running, its published ports pause with the agent's relays.
  await first.stop();
  assert.ok(Object.values(pids).every(pidAlive), 'the processes outlive the agent');
  assert.equal(await httpAt(http.hostPort), undefined, 'no relay while no agent runs');

  // A new agent adopts it: same pids, no restarts, the same pod IP, reachable again through a new relay.
  await w.startAgent({ podNetworkNamespaces: true, docker: false });
  await waitFor(() => w.logs.filter((l) => l === `adopted ${r.id}`).length === 1, { what: 'the adoption' });
  assert.equal(await waitFor(() => httpAt(http.hostPort), { what: 'the relay of the adopting agent' }), `${r.id} PORT=8080`);
  assert.equal(await waitFor(() => datagram(echo.hostPort, 'again'), { what: 'UDP after adoption' }), 'echo again');
  const after = await statusWhere(w, r.id, 'Running and ready after adoption', (x) => x.phase === 'Running' && x.ready === true);
  assert.equal(after.restarts, 0);
  assert.equal(after.podIP, s.podIP);
  assert.deepEqual(after.ports, s.ports);
  assert.deepEqual(Object.fromEntries(after.containers.map((c) => [c.name, c.pid])), pids);
  assert.deepEqual(Object.fromEntries(readInstanceState(w.instanceDir(r.id))!.containers.map((c) => [c.name, c.pid])), pids);

  // Unbound: the processes stop, the namespace (and its veth) and the relay go.
  await w.unbind(r);
  await w.nudge(r.id, 'stop');
  await waitFor(() => !netnsExists(ns), { what: `namespace ${ns} removed` });
  assert.ok(Object.values(pids).every((pid) => !pidAlive(pid)), 'the processes were stopped');
  assert.equal(await httpAt(http.hostPort), undefined);
});

netnsTest('a namespace deleted by hand is a lost sandbox: the pod starts again in a new one, published on the same host port', async (w) => {
  await w.startAgent({ podNetworkNamespaces: true, docker: false, resyncMs: 200 });
  const r = instanceRecord(w.node, { containers: [container({ command: [process.execPath, '-e', SERVER_JS], ports: [{ name: 'http', containerPort: 8080 }, { name: 'echo', containerPort: 5353, protocol: 'UDP' }] })] });
  const ns = netnsName(scopeOf(w), r.id);
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Running', (x) => x.phase === 'Running');
  const http = s.ports.find((p) => p.name === 'http')!;
  assert.equal(await waitFor(() => httpAt(http.hostPort), { what: 'the relay' }), `${r.id} PORT=8080`);
  await ip(['netns', 'del', ns]);
  const again = await statusWhere(w, r.id, 'running again in a new namespace', (x) => x.phase === 'Running' && x.restarts === 1 && x.containers[0]!.pid !== s.containers[0]!.pid);
  assert.ok(!pidAlive(s.containers[0]!.pid!), 'the process of the lost namespace was stopped');
  // (Namespace inodes are recycled, so only membership tells the new one from the old.)
  await waitFor(() => netOfPid(again.containers[0]!.pid!) === netOfName(ns), { what: 'the new process in the new namespace of the same name' });
  assert.deepEqual(again.ports, s.ports, 'the host ports are kept');
  assert.equal(again.podIP, (await inspectNetns(ns))?.podIP);
  assert.equal(await waitFor(() => httpAt(http.hostPort), { what: 'the relay to the new namespace' }), `${r.id} PORT=8080`);
});

netnsTest("a namespace of this installation that no instance claims is removed at the resync; another installation's is left alone", async (w) => {
  const stray = netnsName(scopeOf(w), 'default.gone-12345678-0');
  const foreign = netnsName('another-installation', `default.gone-${w.node}-0`);
  try {
    await ip(['netns', 'add', stray]);
    await ip(['netns', 'add', foreign]);
    await w.startAgent({ podNetworkNamespaces: true, docker: false, resyncMs: 200 });
    // Logged once the removal is done.
    await waitFor(() => w.logs.some((l) => l.includes(`removed stray network namespace ${stray}`)), { what: `stray namespace ${stray} removed` });
    assert.ok(!netnsExists(stray));
    assert.ok(netnsExists(foreign), "another installation's namespace stays");
  } finally {
    await deleteNetns(foreign);
  }
});

netnsTest('limits still apply inside a namespace: the wrapper joins its cgroups (nsenter keeps /sys/fs/cgroup, which ip netns exec would hide)', async (w) => {
  await w.startAgent({ podNetworkNamespaces: true, docker: false });
  const r = instanceRecord(w.node, { containers: [container({ command: ['sleep', '1000'], ports: [], limits: { memoryBytes: 64 * 1024 ** 2 } })] });
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Running', (x) => x.phase === 'Running');
  assert.notEqual(s.reason, 'LimitsNotEnforced', s.message);
  const pid = s.containers[0]!.pid!;
  // Running is reported once spawned: nsenter enters the namespace a moment later, then execs the wrapper.
  await waitFor(() => netOfPid(pid) === netOfName(netnsName(scopeOf(w), r.id)), { what: 'the process inside the namespace' });
  // The wrapper joins right after nsenter has exec'd it, so a moment after the status says Running.
  await waitFor(() => /memory[^\n]*\/gantry\/|^0::[^\n]*\/gantry\//m.test(readFileSync(`/proc/${pid}/cgroup`, 'utf8')), { what: 'the wrapper in its memory group' });
}, { needsCgroups: true });

netnsTest('a pod network range that is not private fails the start with one line', async (w) => {
  await assert.rejects(w.startAgent({ podNetworkNamespaces: true, podNetworkRange: '8.8.0.0/16' }), (err: Error) => /private range/.test(err.message) && !err.message.includes('\n'));
});
