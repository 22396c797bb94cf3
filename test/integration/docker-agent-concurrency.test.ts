import { after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { ContainerSpec, InstanceRecord, InstanceStatus } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { dockerTest, gantryContainers, podSandboxes, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The agent's start slots (`--concurrency`) against the real engine: image pulls take no slot and
 * stops none either, so a pull that never finishes holds up neither the start of another pod nor a
 * stop, even with a single slot.
 */

const Mi = 1024 ** 2;
const WEB = ['sh', '-c', 'exec httpd -f -p "$PORT" -h /www'];

function web(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return container({ image: TEST_IMAGE, imagePullPolicy: 'IfNotPresent', command: WEB, ports: [{ name: 'http', containerPort: 8080 }], cpuMilli: 100, memoryBytes: 32 * Mi, ...overrides });
}

function dockerRecord(node: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return instanceRecord(node, { runtime: 'docker', terminationGracePeriodSeconds: 2, containers: [web()], ...overrides });
}

const nodesUsed = new Set<string>();
after(async () => {
  for (const node of nodesUsed) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

/**
 * A registry on 127.0.0.1 that never answers a pull. The engine tries HTTPS first and falls back
 * to plain HTTP for 127.0.0.1 (an insecure registry by default) when the answer is not TLS, so the
 * TLS hello gets a plain HTTP error at once; the HTTP request that follows gets nothing, ever, until
 * close() cuts the connections (the pull then fails, and the agent can stop).
 */
async function startSilentRegistry(): Promise<{ host: string; readonly held: number; readonly open: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let held = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => {
      if (chunk[0] === 0x16) socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      else held++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get held() {
      return held;
    },
    /** Connections the engine keeps open, waiting for an answer. */
    get open() {
      return sockets.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function statusWhere(w: AgentWorld, id: string, what: string, ok: (s: InstanceStatus) => boolean, timeoutMs = 30_000): Promise<InstanceStatus> {
  return waitFor(async () => {
    const s = await w.status(id);
    return s && ok(s) ? s : undefined;
  }, { what: `${id}: ${what}`, timeoutMs });
}

async function start(w: AgentWorld, ...records: InstanceRecord[]): Promise<void> {
  for (const r of records) {
    await w.bind(r);
    await w.nudge(r.id);
  }
}

dockerTest('a pull that never finishes holds up neither another pod\'s start nor a stop, with one start slot', async () => {
  const w = await AgentWorld.create();
  nodesUsed.add(w.node);
  const registry = await startSilentRegistry();
  try {
    await w.startAgent({ concurrency: 1 });
    const stopped = dockerRecord(w.node);
    await start(w, stopped);
    await statusWhere(w, stopped.id, 'Running', (s) => s.phase === 'Running');

    // Always: pulled at every start, so it goes to the registry whatever the engine has.
    const hanging = dockerRecord(w.node, { containers: [web({ image: `${registry.host}/silent/app:1`, imagePullPolicy: 'Always' })] });
    await start(w, hanging);
    await waitFor(() => registry.held > 0, { what: 'the pull waiting on the registry', timeoutMs: 30_000 });

    // The pull takes no start slot: another pod starts while it hangs.
    const other = dockerRecord(w.node);
    await start(w, other);
    await statusWhere(w, other.id, 'Running', (s) => s.phase === 'Running');

    // Nor does a stop wait for it (jobs are never held by handlers, stops take no slot).
    await w.unbind(stopped);
    await w.nudge(stopped.id, 'stop');
    await waitFor(async () => (await gantryContainers(w.node, stopped.id)).length === 0 && (await podSandboxes(w.node, stopped.id)).length === 0 && !(await w.status(stopped.id)), {
      what: 'the unbound instance stopped, its containers and status gone',
      timeoutMs: 30_000,
    });

    // All the while the pull hung: nothing of the hanging pod was created, and it never failed.
    assert.equal((await gantryContainers(w.node, hanging.id)).length, 0);
    const s = await w.status(hanging.id);
    assert.notEqual(s?.phase, 'Running');
    assert.notEqual(s?.containers[0]?.reason, 'ImagePullFailed', JSON.stringify(s));

    // Nor does the stop of the pulling pod itself: it stops waiting for the pull, which goes on.
    const connections = registry.open;
    await w.unbind(hanging);
    await w.nudge(hanging.id, 'stop');
    await waitFor(async () => !(await w.status(hanging.id)) && w.logs.some((l) => l.includes(`stopping ${hanging.id}`)), { what: 'the pulling pod stopped', timeoutMs: 30_000 });
    assert.equal((await gantryContainers(w.node, hanging.id)).length + (await podSandboxes(w.node, hanging.id)).length, 0);
    assert.ok(connections > 0 && registry.open > 0, 'the pull was still waiting on the registry');
  } finally {
    try {
      await registry.close();
      await w.cleanup();
    } finally {
      await removeContainersWithLabels([`dev.gantry.node=${w.node}`]);
    }
  }
});
