import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertKeyPart } from '../state/keys.ts';
import type { PortStatus } from '../state/records/instance.ts';
import type { ExitInfo } from './container-runtime.ts';

/**
 * The on-disk layout of a node agent: `<dataDir>/agents/<node>/instances/<id>/` holds, per
 * instance, `state.json` (what the agent started, so that a restarted agent can adopt it) and per
 * container `<name>.log`, `<name>.log.1` (rotated) and `<name>.exit` (exit code of the last run,
 * written by the wrapper shell so that it survives the agent). For a Docker container `<name>.log`
 * holds the last lines of each ended container (the running one's are on the engine).
 */

export function instancesRoot(dataDir: string, node: string): string {
  return join(dataDir, 'agents', assertKeyPart(node, 'node name'), 'instances');
}

export function instanceDir(dataDir: string, node: string, id: string): string {
  return join(instancesRoot(dataDir, node), assertKeyPart(id, 'instance id'));
}

export function logPath(dir: string, container: string): string {
  return join(dir, `${container}.log`);
}

export function exitFilePath(dir: string, container: string): string {
  return join(dir, `${container}.exit`);
}

/** One container process as started by an agent. */
export interface ContainerState {
  name: string;
  pid: number;
  pgid: number;
  /** /proc start time of `pid`; guards against adopting a recycled pid. */
  startTime?: number;
  ports: PortStatus[];
  restarts: number;
  startedAt: number;
}

/**
 * One Docker container of an instance. The engine knows the running ones (by their labels); this
 * remembers how the last one ended after it was removed, so that a restarted agent still applies
 * the restart policy to it (a `Never` container that ended is not started again).
 */
export interface DockerContainerState {
  name: string;
  containerId?: string;
  ports: PortStatus[];
  restarts: number;
  startedAt?: number;
  exit?: ExitInfo;
}

/** `state.json`: enough to adopt or stop the containers of an instance after an agent restart. */
export interface InstanceState {
  uid: string;
  namespace: string;
  deployment: string;
  terminationGracePeriodSeconds: number;
  /** Processes (image-less containers). */
  containers: ContainerState[];
  docker?: DockerContainerState[];
  /** How many init containers had run to completion (absent: the template has none). */
  initsDone?: number;
}

export function readInstanceState(dir: string): InstanceState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as InstanceState;
  } catch {
    return undefined;
  }
}

/** Written to a temporary file and renamed, so a crash never leaves a half-written state. */
export function writeInstanceState(dir: string, state: InstanceState): void {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, 'state.json.tmp');
  writeFileSync(tmp, JSON.stringify(state, null, 2));
  renameSync(tmp, join(dir, 'state.json'));
}

/** Ids of the instance dirs present on disk (valid names only). */
export function listInstanceIds(dataDir: string, node: string): string[] {
  const root = instancesRoot(dataDir, node);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isValidId(e.name))
    .map((e) => e.name);
}

export function removeInstanceDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

function isValidId(name: string): boolean {
  try {
    assertKeyPart(name);
    return true;
  } catch {
    return false;
  }
}
