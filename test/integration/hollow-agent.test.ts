import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { waitFor } from '../helpers/wait.ts';
import { AgentWorld, container, instanceRecord, processGroupsOf } from '../helpers/agent-fixtures.ts';

/**
 * `--hollow` (hollow-runtime.ts): the agent's whole path against a real Redis, with nothing
 * started. What the reconciler and scheduler see must be a real node: registered with both
 * runtimes, statuses Running through the normal writes, stopped on unbind.
 */

/** Pids whose parent is this test process (redis-server is one, started before). */
function children(): Set<number> {
  const pids = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) pids.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('a hollow agent reports instances Running, restarts nothing, stops them on unbind, and starts no process', async () => {
  const w = await AgentWorld.create();
  try {
    const before = children();
    // Short resync: the recheck below must come from a resync, not from a job.
    await w.startAgent({ hollow: true, resyncMs: 100 });
    const node = await w.nodeRecord();
    assert.deepEqual(node?.runtimes, ['process', 'docker'], 'a hollow node offers both runtimes, with no engine');

    const proc = instanceRecord(w.node, {
      containers: [container({ ports: [{ name: 'http', containerPort: 8080 }] })],
    });
    const docker = instanceRecord(w.node, {
      runtime: 'docker',
      containers: [container({ image: 'registry.invalid/never-pulled:1', command: [], imagePullPolicy: 'Always' })],
    });
    for (const r of [proc, docker]) {
      await w.bind(r);
      await w.nudge(r.id);
    }
    const running = async (id: string) =>
      waitFor(async () => {
        const s = await w.status(id);
        return s?.phase === 'Running' ? s : undefined;
      }, { what: `${id} Running` });
    const first = await running(proc.id);
    const firstDocker = await running(docker.id);
    for (const s of [first, firstDocker]) {
      assert.equal(s.node, w.node);
      assert.equal(s.restarts, 0);
      assert.equal(s.pid, undefined, 'no process, no pid');
    }
    // Host ports are allocated as for a real container: part of the path being measured.
    assert.equal(first.ports.length, 1);
    assert.ok(first.ports[0]!.hostPort > 0);

    // A status lost in Redis is written again by the next resync (with recheck) from what "runs":
    // the same incarnation, nothing restarted.
    await w.redis.del(w.keys.instanceStatus(proc.id));
    const again = await running(proc.id);
    assert.equal(again.restarts, 0);
    assert.equal(again.startedAt, first.startedAt);
    assert.deepEqual(again.ports, first.ports);
    assert.equal(w.logs.filter((l) => l.startsWith(`starting ${proc.id}`)).length, 1, 'started once');

    assert.equal(processGroupsOf(proc.id).size + processGroupsOf(docker.id).size, 0, 'no process runs for the instances');
    assert.deepEqual([...children()].filter((p) => !before.has(p)), [], 'the agent started no child process');

    for (const r of [proc, docker]) {
      await w.unbind(r);
      await w.nudge(r.id, 'stop');
    }
    for (const r of [proc, docker]) {
      await waitFor(async () => (await w.status(r.id)) === undefined, { what: `${r.id} status removed` });
      await waitFor(() => !existsSync(w.instanceDir(r.id)), { what: `${r.id} dir removed` });
      assert.ok(w.logs.includes(`stopping ${r.id} (uid ${r.uid})`), `${r.id} stopped by the agent`);
    }
    assert.deepEqual([...children()].filter((p) => !before.has(p)), []);
  } finally {
    await w.cleanup();
  }
});
