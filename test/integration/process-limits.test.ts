import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CGROUP_ROOT_ENV, DEFAULT_CGROUP_ROOT, groupPrefix, parseProcCgroup, removeLimitGroup, setUpLimits } from '../../agents/cgroup-limits.ts';
import type { InstanceStatus } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord, pidAlive } from '../helpers/agent-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Limits of the process runtime enforced with real cgroups: an in-process agent with a real Redis
 * runs real processes. The OOM and CPU tests need a cgroup hierarchy this test may write (root, a
 * writable /sys/fs/cgroup), and are skipped, with the reason, where there is none; the
 * LimitsNotEnforced test runs everywhere.
 */

const Mi = 1024 ** 2;

/** Why this machine cannot give processes cgroups, or undefined when it can (tried for real). */
function whyNoCgroups(): string | undefined {
  const dir = join('/tmp', `gantry-cgroup-probe-${process.pid}`);
  const setup = setUpLimits({ instanceDir: dir, container: 'probe', limits: { memoryBytes: 64 * Mi, cpuMilli: 100 } });
  if ('notEnforced' in setup) return `no writable cgroup hierarchy: ${setup.notEnforced}`;
  if ('group' in setup) void removeLimitGroup(setup.group);
  return undefined;
}
const noCgroups = whyNoCgroups();

function limitsTest(name: string, body: (w: AgentWorld) => Promise<void>, opts: { needsCgroups: boolean }): void {
  test(name, { skip: opts.needsCgroups ? noCgroups : undefined }, async () => {
    const world = await AgentWorld.create();
    try {
      await body(world);
    } finally {
      await world.cleanup();
    }
  });
}

async function statusWhere(w: AgentWorld, id: string, what: string, ok: (s: InstanceStatus) => boolean): Promise<InstanceStatus> {
  return waitFor(async () => {
    const s = await w.status(id);
    return s && ok(s) ? s : undefined;
  }, { what: `${id}: ${what}`, timeoutMs: 30_000 });
}

/** The groups of one container on this machine, any run: where the agent (this process) puts them. */
function groupDirsOf(w: AgentWorld, id: string, name: string): string[] {
  const own = parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8'));
  const prefix = `${groupPrefix(w.instanceDir(id), name)}.`;
  const out: string[] = [];
  const unified = existsSync(join(DEFAULT_CGROUP_ROOT, 'cgroup.controllers'));
  const parents = unified
    ? [join(DEFAULT_CGROUP_ROOT, own.get('') ?? '/', 'gantry'), join(DEFAULT_CGROUP_ROOT, 'gantry')]
    : ['memory', 'cpu'].map((c) => join(DEFAULT_CGROUP_ROOT, c, own.get(c) ?? '/', 'gantry'));
  for (const parent of parents) {
    if (!existsSync(parent)) continue;
    for (const e of readdirSync(parent)) if (e.startsWith(prefix)) out.push(join(parent, e));
  }
  return out;
}

/** The directory of `pid`'s group in one hierarchy (v1 controller, or '' for v2). */
function groupOf(pid: number, controller: 'memory' | 'cpu'): string {
  const paths = parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  const unified = existsSync(join(DEFAULT_CGROUP_ROOT, 'cgroup.controllers'));
  return unified ? join(DEFAULT_CGROUP_ROOT, paths.get('')!) : join(DEFAULT_CGROUP_ROOT, controller, paths.get(controller)!);
}

const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8').trim();

limitsTest('a process over its memory limit is OOM-killed, reported OOMKilled with exit code 137, and its group removed', async (w) => {
  await w.startAgent();
  // GNU and busybox tail keep a line until its end: /dev/zero has none, so tail holds all 100 MiB.
  const hog = container({ command: ['sh', '-c', 'head -c 104857600 /dev/zero | tail'], ports: [], cpuMilli: 0, memoryBytes: 32 * Mi, limits: { memoryBytes: 32 * Mi } });
  const r = instanceRecord(w.node, { restartPolicy: 'Never', containers: [hog] });
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Failed', (x) => x.phase === 'Failed');
  assert.equal(s.reason, 'OOMKilled');
  assert.equal(s.exitCode, 137);
  assert.match(s.message!, /container main exited with code 137 \(OOMKilled\)/);
  await waitFor(() => groupDirsOf(w, r.id, 'main').length === 0, { what: 'the group of the OOM-killed run removed' });
}, { needsCgroups: true });

limitsTest('a cpu limit is a CFS quota the process is throttled by; requests are not limits; an adopted process keeps its group until it stops', async (w) => {
  const agent = await w.startAgent();
  const spin = container({ command: ['sh', '-c', 'while :; do :; done'], ports: [], cpuMilli: 50, memoryBytes: 16 * Mi, limits: { cpuMilli: 100, memoryBytes: 64 * Mi } });
  const r = instanceRecord(w.node, { terminationGracePeriodSeconds: 1, containers: [spin] });
  await w.bind(r);
  await w.nudge(r.id);
  const s = await statusWhere(w, r.id, 'Running', (x) => x.phase === 'Running');
  assert.equal(s.reason, undefined, 'limits enforced: nothing to report');
  // Running is reported once the wrapper exists; it joins its groups first thing, before it starts the command.
  const inGroup = `/gantry/${groupPrefix(w.instanceDir(r.id), 'main')}.`;
  const cpu = await waitFor(() => (groupOf(s.pid!, 'cpu').includes(inGroup) ? groupOf(s.pid!, 'cpu') : undefined), { what: 'the wrapper in its cpu group' });
  const memory = groupOf(s.pid!, 'memory');
  assert.ok(memory.includes(inGroup), memory);
  if (cpu === memory) {
    // cgroup v2: one group.
    assert.equal(read(cpu, 'cpu.max'), '10000 100000');
    assert.equal(read(memory, 'memory.max'), String(64 * Mi));
  } else {
    assert.equal(read(cpu, 'cpu.cfs_quota_us'), '10000');
    assert.equal(read(cpu, 'cpu.cfs_period_us'), '100000');
    assert.equal(read(memory, 'memory.limit_in_bytes'), String(64 * Mi), 'the limit, not the 16Mi request');
  }
  // The command was started inside the group: the wrapper and its child are both there.
  assert.ok(read(cpu, 'cgroup.procs').split('\n').length >= 2, 'wrapper and command in the group');
  await waitFor(() => /nr_throttled [1-9]/.test(read(cpu, 'cpu.stat')), { what: 'the spinning process throttled by its quota' });

  // A new agent adopts the process (same pid) and, once the instance goes, removes its group.
  await agent.stop();
  await w.startAgent();
  await w.nudge(r.id);
  const adopted = await statusWhere(w, r.id, 'Running again', (x) => x.phase === 'Running' && x.updatedAt > s.updatedAt);
  assert.equal(adopted.pid, s.pid);
  assert.equal(adopted.restarts, 0);
  await w.unbind(r);
  await w.nudge(r.id, 'stop');
  await waitFor(() => !pidAlive(s.pid!) && groupDirsOf(w, r.id, 'main').length === 0, { what: 'process stopped and its groups removed' });
}, { needsCgroups: true });

limitsTest('without a writable cgroup hierarchy a process runs without its limits, and its status says so', async (w) => {
  // As an agent whose $GANTRY_CGROUP_ROOT names a directory that has no cgroup hierarchies.
  const fakeRoot = join(w.dataDir, 'no-cgroups');
  mkdirSync(fakeRoot);
  const saved = process.env[CGROUP_ROOT_ENV];
  process.env[CGROUP_ROOT_ENV] = fakeRoot;
  try {
    await w.startAgent();
    const limited = instanceRecord(w.node, { containers: [container({ command: ['sleep', '3600'], ports: [], limits: { memoryBytes: 32 * Mi, cpuMilli: 100 } })] });
    const requestsOnly = instanceRecord(w.node, { containers: [container({ command: ['sleep', '3600'], ports: [], limits: {} })] });
    for (const r of [limited, requestsOnly]) {
      await w.bind(r);
      await w.nudge(r.id);
    }
    const s = await statusWhere(w, limited.id, 'Running', (x) => x.phase === 'Running');
    assert.equal(s.reason, 'LimitsNotEnforced');
    assert.equal(
      s.message,
      `LimitsNotEnforced: container main: memory and cpu limits need a writable cgroup hierarchy (no cgroup memory hierarchy at ${join(fakeRoot, 'memory')}); running without them`,
    );
    assert.ok(pidAlive(s.pid!), 'it runs all the same');
    const other = await statusWhere(w, requestsOnly.id, 'Running', (x) => x.phase === 'Running');
    assert.equal(other.reason, undefined, 'nothing to enforce, nothing to report');
    rmSync(fakeRoot, { recursive: true });
  } finally {
    if (saved === undefined) delete process.env[CGROUP_ROOT_ENV];
    else process.env[CGROUP_ROOT_ENV] = saved;
  }
}, { needsCgroups: false });
