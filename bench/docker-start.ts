/**
 * Container start latency of the Docker driver against the docker CLI, in the same run.
 *
 * Each sample is create + start until the container runs: through `DockerDriver.start` (image
 * check by pull policy, create with Gantry's labels, limits, init, log cap and a published port,
 * start, inspect) and through `docker run -d` of the same image with the same settings (child
 * process; includes the CLI's own start-up, which is what users compare with). The two alternate,
 * so that load on the machine moves both alike. The ratio is driver p50 / `docker run -d` p50.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { InstanceRecord } from '../state/records/instance.ts';
import { connectDocker, DockerEvents, probeEngine } from '../agents/docker-engine.ts';
import { DockerDriver } from '../agents/docker-driver.ts';
import { allocateHostPorts } from '../agents/process-driver.ts';
import { summarize } from './stats.ts';

const run = promisify(execFile);
const IMAGE = 'gantry-test/busybox:latest';
const RUNS = Number(process.env.BENCH_DOCKER_RUNS ?? 15);

export async function benchDockerStart(): Promise<{ name: string; value: string; unit: string }[]> {
  const docker = connectDocker();
  const probe = await probeEngine(docker);
  if (!probe.ok) throw new Error(`Docker engine not reachable: ${probe.error}`);
  const tag = randomUUID().slice(0, 8);
  const node = `bench-${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'gantry-bench-docker-'));
  const events = new DockerEvents(docker, node, () => {});
  const driver = new DockerDriver(docker, events, node, `bench${tag}`, '127.0.0.1', 10 * 1024 * 1024);
  const driverMs: number[] = [];
  const cliMs: number[] = [];
  try {
    // One of each first, not counted: the first create after a while pays for cold caches.
    for (let i = -1; i < RUNS; i++) {
      const viaDriver = await startViaDriver(driver, node, dir, i);
      const viaCli = await startViaCli(tag, i);
      if (i >= 0) {
        driverMs.push(viaDriver);
        cliMs.push(viaCli);
      }
    }
  } finally {
    events.close();
    await removeLabelled(docker, `dev.gantry.node=${node}`);
    await removeLabelled(docker, `gantry-bench=${tag}`);
    rmSync(dir, { recursive: true, force: true });
  }
  const d = summarize(driverMs);
  const c = summarize(cliMs);
  const ms = (x: number) => x.toFixed(0);
  return [
    { name: `docker start via driver p50 (engine ${probe.version}, n=${RUNS})`, value: ms(d.p50), unit: 'ms' },
    { name: 'docker start via driver p95', value: ms(d.p95), unit: 'ms' },
    { name: 'docker run -d p50 (same image and settings)', value: ms(c.p50), unit: 'ms' },
    { name: 'docker run -d p95', value: ms(c.p95), unit: 'ms' },
    { name: 'driver / docker run -d (p50)', value: (d.p50 / c.p50).toFixed(2), unit: 'x' },
  ];
}

function record(node: string, i: number): InstanceRecord {
  const templateHash = randomUUID().slice(0, 8);
  return {
    id: `bench.start-${templateHash}-${i + 1}`,
    uid: randomUUID(),
    namespace: 'bench',
    deployment: 'start',
    templateHash,
    ordinal: i + 1,
    commit: '0'.repeat(40),
    labels: {},
    containers: [{ name: 'main', image: IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'], args: [], env: [], ports: [{ name: 'http', containerPort: 8080 }], cpuMilli: 100, memoryBytes: 32 * 1024 * 1024 }],
    cpuMilli: 100,
    memoryBytes: 32 * 1024 * 1024,
    nodeSelector: {},
    restartPolicy: 'Always',
    runtime: 'docker',
    terminationGracePeriodSeconds: 0,
    createdAt: Date.now(),
    node,
  };
}

/** ms from the driver's start call until it returns a running container. */
async function startViaDriver(driver: DockerDriver, node: string, dir: string, i: number): Promise<number> {
  const r = record(node, i);
  const spec = r.containers[0]!;
  const ports = await allocateHostPorts('127.0.0.1', spec.ports);
  const t0 = performance.now();
  const started = await driver.start({ record: r, dir, container: spec, ports, identity: { GANTRY_INSTANCE_ID: r.id }, restarts: 0, report: () => {} });
  const elapsed = performance.now() - t0;
  started.unwatch();
  await driver.remove(started.containerId);
  return elapsed;
}

/** ms of `docker run -d` with the settings the driver uses (it returns once the container runs). */
async function startViaCli(tag: string, i: number): Promise<number> {
  const hostPort = (await allocateHostPorts('127.0.0.1', [{ containerPort: 8080 }]))[0]!.hostPort;
  const name = `gantry-bench-${tag}-${i + 1}`;
  const t0 = performance.now();
  await run('docker', ['run', '-d', '--name', name, '--label', `gantry-bench=${tag}`, '--init', '--cpus', '0.1', '--memory', '32m', '--memory-swap', '32m', '--log-driver', 'json-file', '--log-opt', 'max-size=10485760', '--log-opt', 'max-file=2', '--restart', 'no', '-p', `127.0.0.1:${hostPort}:8080`, '-e', `GANTRY_INSTANCE_ID=${name}`, '--entrypoint', 'sleep', IMAGE, '3600']);
  const elapsed = performance.now() - t0;
  await run('docker', ['rm', '-f', name]);
  return elapsed;
}

async function removeLabelled(docker: ReturnType<typeof connectDocker>, label: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [label] } }).catch(() => []);
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
}

// `tsx bench/docker-start.ts` runs it alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await benchDockerStart()) console.log(`${f.name.padEnd(56)} ${f.value.padStart(8)} ${f.unit}`);
}
