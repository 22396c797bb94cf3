/**
 * What the engine itself takes to start N containers of the bench's image, straight through its
 * API, with nothing around it: the floor under both Gantry's and Swarm's figures on this machine.
 * Two shapes: one container publishing a host port (as a Swarm task), and a pod as Gantry makes it
 * (a pause container publishing the port, the app container joined to its network namespace).
 */
import type Docker from 'dockerode';

export interface FloorResult {
  /** ms until all N were started (create + start each, `concurrency` at a time). */
  ms: number;
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const PORT = { ExposedPorts: { '8080/tcp': {} }, HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } } };

/** Starts `n` of the shape, `concurrency` at a time, then removes them (untimed). */
export async function engineFloor(docker: Docker, o: { image: string; pauseImage?: string; n: number; concurrency: number; label: string }): Promise<FloorResult> {
  const ids: string[] = [];
  const app = (network?: string): Docker.ContainerCreateOptions => ({
    Image: o.image,
    Entrypoint: ['httpd', '-f', '-p', '8080', '-h', '/www'],
    Cmd: [],
    Labels: { [o.label]: 'true' },
    ...(network ? {} : { ExposedPorts: PORT.ExposedPorts }),
    HostConfig: { Init: true, RestartPolicy: { Name: 'no' }, ...(network ? { NetworkMode: network } : { PortBindings: PORT.HostConfig.PortBindings }) },
  });
  const t0 = performance.now();
  try {
    await pool([...Array(o.n).keys()], o.concurrency, async () => {
      let network: string | undefined;
      if (o.pauseImage) {
        const sandbox = await docker.createContainer({ Image: o.pauseImage, Labels: { [o.label]: 'true' }, ExposedPorts: PORT.ExposedPorts, HostConfig: { NetworkMode: 'bridge', PortBindings: PORT.HostConfig.PortBindings, RestartPolicy: { Name: 'no' } } });
        ids.push(sandbox.id);
        await sandbox.start();
        network = `container:${sandbox.id}`;
      }
      const c = await docker.createContainer(app(network));
      ids.push(c.id);
      await c.start();
    });
    return { ms: performance.now() - t0 };
  } finally {
    await pool(ids, 4, (id) => docker.getContainer(id).remove({ force: true }).then(() => {}, () => {}));
  }
}
