import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Docker from 'dockerode';

/**
 * What Docker tests share. They run against the real engine (DOCKER_HOST or /var/run/docker.sock)
 * and the image scripts/docker-setup.sh builds. Without an engine they are skipped with the reason
 * in the report; in CI (`GANTRY_REQUIRE_DOCKER=1`) they fail instead, so that a missing engine can
 * never pass unnoticed.
 */

export const TEST_IMAGE = 'gantry-test/busybox:latest';

export const docker = new Docker();

/** Undefined when the engine answers and the test image is there; else why not. */
async function whyNoDocker(): Promise<string | undefined> {
  try {
    await docker.ping({ abortSignal: AbortSignal.timeout(3_000) } as object as never);
  } catch (err) {
    return `Docker engine not reachable: ${err instanceof Error ? err.message : err}`;
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    return `Docker engine not reachable: it answers but has no ${TEST_IMAGE} (run scripts/docker-setup.sh)`;
  }
  return undefined;
}

export const dockerUnavailable = await whyNoDocker();
const required = process.env.GANTRY_REQUIRE_DOCKER === '1';

/**
 * `test()` for a test that needs the engine: skipped (visibly) when it is unreachable, failed when
 * GANTRY_REQUIRE_DOCKER=1.
 */
export function dockerTest(name: string, body: (t: TestContext) => Promise<void>): void {
  if (dockerUnavailable && !required) {
    test(name, { skip: dockerUnavailable }, () => {});
    return;
  }
  test(name, async (t) => {
    if (dockerUnavailable) throw new Error(`${dockerUnavailable} (GANTRY_REQUIRE_DOCKER=1)`);
    await body(t);
  });
}

/** Containers carrying every one of these labels (`key=value`), running or not. */
export async function containersWithLabels(labels: string[]): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: labels } });
}

/** Force-removes every container carrying these labels: test cleanup, pass or fail. */
export async function removeContainersWithLabels(labels: string[]): Promise<void> {
  if (dockerUnavailable) return;
  const list = await containersWithLabels(labels).catch(() => []);
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
}

/** The app containers Gantry runs for one node (optionally one instance): pod sandboxes are left out (podSandboxes). */
export async function gantryContainers(node: string, instanceId?: string): Promise<Docker.ContainerInfo[]> {
  const all = await containersWithLabels(['dev.gantry.managed=true', `dev.gantry.node=${node}`, ...(instanceId ? [`dev.gantry.instance=${instanceId}`] : [])]);
  return all.filter((c) => c.Labels['dev.gantry.sandbox'] !== 'true');
}

/** The pod sandboxes (pause containers) of one node (optionally one instance). */
export function podSandboxes(node: string, instanceId?: string): Promise<Docker.ContainerInfo[]> {
  return containersWithLabels(['dev.gantry.managed=true', 'dev.gantry.sandbox=true', `dev.gantry.node=${node}`, ...(instanceId ? [`dev.gantry.instance=${instanceId}`] : [])]);
}

/**
 * A unix socket that forwards to the engine's, for tests that need the engine to go away and come
 * back: `down()` closes it and cuts every open connection (the agent's events stream included),
 * `up()` listens again on the same path. Use it as DOCKER_HOST.
 */
export async function startEngineProxy(dir: string): Promise<{ dockerHost: string; down(): Promise<void>; up(): Promise<void>; close(): Promise<void> }> {
  const host = process.env.DOCKER_HOST;
  const target = host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
  const path = join(dir, 'engine-proxy.sock');
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const up = async () => {
    rmSync(path, { force: true });
    server = createServer((client) => {
      const engine = createConnection(target);
      for (const s of [client, engine]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(engine).pipe(client);
      client.on('close', () => engine.destroy());
      engine.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(path, resolve));
  };
  const down = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const sock of sockets) sock.destroy();
    await closed;
  };
  await up();
  return { dockerHost: `unix://${path}`, down, up, close: down };
}
