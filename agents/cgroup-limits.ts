import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ResourceLimits } from '../state/records/instance.ts';

/**
 * Limits of image-less containers (processes) with Linux cgroups, as the kubelet applies them to
 * a pod: one group per instance container, under a `gantry` parent, holding the wrapper shell (and
 * so everything it starts) from before the command runs. cgroup v2 (a unified hierarchy whose
 * cgroup.controllers offers cpu and memory) gets memory.max, memory.swap.max 0 and cpu.max; cgroup
 * v1 (memory and cpu hierarchies under the root) memory.limit_in_bytes (and memsw, so swap is no
 * way around it, as Docker's MemorySwap = Memory) and cpu.cfs_quota_us / cfs_period_us.
 *
 * Where the groups live: v1 nests the parent under the agent's own group of each hierarchy, so
 * instances stay inside whatever confines the agent (a systemd unit, a container, a sandbox),
 * exactly where they ran before they had limits. v2 forbids a group with processes (the agent's)
 * to hand controllers to children, so there the parent is tried under the agent's group and then
 * at the root, as container engines' cgroupfs drivers do.
 *
 * Every run gets a fresh group (a random suffix): its OOM counter then speaks of this run only, and
 * the removal of the previous run's group can never race with the next run joining it.
 */

export const DEFAULT_CGROUP_ROOT = '/sys/fs/cgroup';
/** The agent's environment may point the driver at another cgroup mount (tests: one it cannot write). */
export const CGROUP_ROOT_ENV = 'GANTRY_CGROUP_ROOT';
const PARENT = 'gantry';
/** Kubernetes' and Docker's CFS period (100 ms), and the kernel's smallest quota (1 ms). */
export const CFS_PERIOD_US = 100_000;
const MIN_CFS_QUOTA_US = 1_000;

export function cgroupRoot(explicit?: string): string {
  return explicit ?? process.env[CGROUP_ROOT_ENV] ?? DEFAULT_CGROUP_ROOT;
}

/** One run's group: one directory (v2) or one per hierarchy it limits (v1). */
export interface LimitGroup {
  version: 1 | 2;
  dirs: string[];
  /** The directory that counts OOM kills, when memory is limited. */
  memoryDir?: string;
}

export type LimitSetup = { group: LimitGroup } | { notEnforced: string } | { none: true };

/** `<instance id>.<container>.<hash of the instance dir>`: the same on every run, unique per machine (agents of several nodes and installations share one). */
export function groupPrefix(instanceDir: string, container: string): string {
  const hash = createHash('sha256').update(resolve(instanceDir)).digest('hex').slice(0, 8);
  return `${basename(instanceDir)}.${container}.${hash}`;
}

/** CFS quota of a cpu limit: 100 ms of CPU per core and period, at least the kernel's 1 ms. */
export function cfsQuotaUs(cpuMilli: number): number {
  return Math.max(MIN_CFS_QUOTA_US, Math.round((cpuMilli * CFS_PERIOD_US) / 1000));
}

/** The control files of a v1 group and what goes in them, per hierarchy, in write order (pure). */
export function v1Files(limits: ResourceLimits): { memory?: [string, string][]; cpu?: [string, string][] } {
  const out: { memory?: [string, string][]; cpu?: [string, string][] } = {};
  // memsw (memory + swap) must be written after the memory limit, which it may not be below.
  if (limits.memoryBytes) out.memory = [['memory.limit_in_bytes', String(limits.memoryBytes)], ['memory.memsw.limit_in_bytes', String(limits.memoryBytes)]];
  if (limits.cpuMilli) out.cpu = [['cpu.cfs_period_us', String(CFS_PERIOD_US)], ['cpu.cfs_quota_us', String(cfsQuotaUs(limits.cpuMilli))]];
  return out;
}

/** The control files of a v2 group and what goes in them (pure). */
export function v2Files(limits: ResourceLimits): [string, string][] {
  const out: [string, string][] = [];
  if (limits.memoryBytes) out.push(['memory.max', String(limits.memoryBytes)], ['memory.swap.max', '0']);
  if (limits.cpuMilli) out.push(['cpu.max', `${cfsQuotaUs(limits.cpuMilli)} ${CFS_PERIOD_US}`]);
  return out;
}

/** Files that only exist with some kernel options (swap accounting): skipped when absent. */
const OPTIONAL = new Set(['memory.memsw.limit_in_bytes', 'memory.swap.max']);

function writeControls(dir: string, files: [string, string][]): void {
  for (const [name, value] of files) {
    const path = join(dir, name);
    if (OPTIONAL.has(name) && !existsSync(path)) continue;
    writeFileSync(path, value);
  }
}

/** The agent's own group per hierarchy, from /proc/self/cgroup: v1 by controller, v2 as '' (pure on the text). */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const controller of m[1]!.split(',')) out.set(controller, m[2]!);
  }
  return out;
}

function readProcCgroup(pid: number | 'self'): Map<string, string> {
  try {
    return parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  } catch {
    return new Map();
  }
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code && e.path ? `${e.code} at ${e.path}` : e.message ?? String(err);
}

function needed(limits: ResourceLimits): ('memory' | 'cpu')[] {
  return [...(limits.memoryBytes ? (['memory'] as const) : []), ...(limits.cpuMilli ? (['cpu'] as const) : [])];
}

/** Removes a run's directories that are left over and empty (a cgroup with processes refuses rmdir). */
function removeStale(parent: string, prefix: string): void {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.startsWith(`${prefix}.`)) continue;
    try {
      rmdirSync(join(parent, e));
    } catch {
      // Busy: a run that still has processes (an adopted one, or one being removed).
    }
  }
}

function setUpV1(root: string, name: string, prefix: string, limits: ResourceLimits): LimitGroup {
  const own = readProcCgroup('self');
  const files = v1Files(limits);
  const group: LimitGroup = { version: 1, dirs: [] };
  try {
    for (const controller of needed(limits)) {
      const mount = join(root, controller);
      const ownDir = join(mount, own.get(controller) ?? '/');
      const parent = join(existsSync(ownDir) ? ownDir : mount, PARENT);
      mkdirSync(parent, { recursive: true });
      removeStale(parent, prefix);
      const dir = join(parent, name);
      mkdirSync(dir);
      group.dirs.push(dir);
      writeControls(dir, files[controller]!);
      if (controller === 'memory') group.memoryDir = dir;
    }
    return group;
  } catch (err) {
    removeDirs(group.dirs);
    throw err;
  }
}

/** Makes sure `dir`'s children may use the controllers (v2 enables them per level). */
function enableControllers(dir: string, controllers: string[]): void {
  const enabled = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
  const missing = controllers.filter((c) => !enabled.includes(c));
  if (missing.length > 0) writeFileSync(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
}

function setUpV2(root: string, name: string, prefix: string, limits: ResourceLimits): LimitGroup {
  const offered = readFileSync(join(root, 'cgroup.controllers'), 'utf8').split(/\s+/);
  const controllers = needed(limits);
  const absent = controllers.filter((c) => !offered.includes(c));
  if (absent.length > 0) throw new Error(`the cgroup v2 hierarchy at ${root} does not offer ${absent.join(' and ')}`);
  const own = readProcCgroup('self').get('');
  const bases = own && own !== '/' && existsSync(join(root, own)) ? [join(root, own), root] : [root];
  let lastError: unknown;
  for (const base of bases) {
    const parent = join(base, PARENT);
    let dir: string | undefined;
    try {
      enableControllers(base, controllers);
      mkdirSync(parent, { recursive: true });
      enableControllers(parent, controllers);
      removeStale(parent, prefix);
      dir = join(parent, name);
      mkdirSync(dir);
      writeControls(dir, v2Files(limits));
      return { version: 2, dirs: [dir], ...(limits.memoryBytes ? { memoryDir: dir } : {}) };
    } catch (err) {
      if (dir) removeDirs([dir]);
      lastError = err;
    }
  }
  throw lastError;
}

/**
 * A fresh group for one run of a container with these limits, or why there is none: no limits,
 * or no cgroup hierarchy the agent can write (not root, read-only /sys, no such mount).
 */
export function setUpLimits(opts: { root?: string; instanceDir: string; container: string; limits: ResourceLimits }): LimitSetup {
  const controllers = needed(opts.limits);
  if (controllers.length === 0) return { none: true };
  const root = cgroupRoot(opts.root);
  const prefix = groupPrefix(opts.instanceDir, opts.container);
  const name = `${prefix}.${randomBytes(3).toString('hex')}`;
  try {
    if (existsSync(join(root, 'cgroup.controllers'))) return { group: setUpV2(root, name, prefix, opts.limits) };
    const missing = controllers.find((c) => !existsSync(join(root, c)));
    if (missing) return notEnforced(controllers, `no cgroup ${missing} hierarchy at ${join(root, missing)}`);
    return { group: setUpV1(root, name, prefix, opts.limits) };
  } catch (err) {
    return notEnforced(controllers, errorText(err));
  }
}

function notEnforced(controllers: string[], detail: string): LimitSetup {
  const what = controllers.join(' and ');
  return { notEnforced: `${what} limit${controllers.length > 1 ? 's need' : ' needs'} a writable cgroup hierarchy (${detail}); running without ${controllers.length > 1 ? 'them' : 'it'}` };
}

/** The cgroup.procs files the wrapper writes its own pid to, before it starts the command. */
export function procsFiles(group: LimitGroup): string[] {
  return group.dirs.map((d) => join(d, 'cgroup.procs'));
}

/**
 * The group a previous agent put a running process in, from /proc/<pid>/cgroup: a directory under
 * a `gantry` parent whose name starts with the container's prefix. Undefined: it has none.
 */
export function findLimitGroup(opts: { root?: string; instanceDir: string; container: string; pid: number }): LimitGroup | undefined {
  const root = cgroupRoot(opts.root);
  const prefix = `${groupPrefix(opts.instanceDir, opts.container)}.`;
  const ours = (path: string) => basename(dirname(path)) === PARENT && basename(path).startsWith(prefix);
  const paths = readProcCgroup(opts.pid);
  const unified = paths.get('');
  if (unified && ours(unified) && existsSync(join(root, 'cgroup.controllers'))) {
    const dir = join(root, unified);
    return { version: 2, dirs: [dir], ...(existsSync(join(dir, 'memory.max')) ? { memoryDir: dir } : {}) };
  }
  const group: LimitGroup = { version: 1, dirs: [] };
  for (const controller of ['memory', 'cpu'] as const) {
    const path = paths.get(controller);
    if (!path || !ours(path)) continue;
    const dir = join(root, controller, path);
    group.dirs.push(dir);
    if (controller === 'memory') group.memoryDir = dir;
  }
  return group.dirs.length > 0 ? group : undefined;
}

function counter(text: string, key: string): number | undefined {
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether the kernel OOM-killed something in the group: v2 memory.events `oom_kill`, v1
 * memory.oom_control `oom_kill` (kernels since 4.13); on older v1 kernels, a SIGKILL (137) after
 * the group hit its limit (memory.failcnt) is taken for one.
 */
export function wasOomKilled(group: LimitGroup | undefined, exitCode: number | undefined): boolean {
  if (!group?.memoryDir) return false;
  try {
    if (group.version === 2) return (counter(readFileSync(join(group.memoryDir, 'memory.events'), 'utf8'), 'oom_kill') ?? 0) > 0;
    const kills = counter(readFileSync(join(group.memoryDir, 'memory.oom_control'), 'utf8'), 'oom_kill');
    if (kills !== undefined) return kills > 0;
    return exitCode === 137 && Number(readFileSync(join(group.memoryDir, 'memory.failcnt'), 'utf8')) > 0;
  } catch {
    return false;
  }
}

function removeDirs(dirs: string[]): string[] {
  return dirs.filter((d) => {
    try {
      rmdirSync(d);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  });
}

/**
 * Removes a run's group once its processes are gone. What is left in it escaped the process group
 * (a daemonized child) but belongs to the container all the same: it is killed, and the removal
 * retried until the kernel has let go of the exiting tasks (a few ms), for up to 5 s.
 */
export async function removeLimitGroup(group: LimitGroup): Promise<void> {
  let left = removeDirs(group.dirs);
  for (let attempt = 0; left.length > 0 && attempt < 100; attempt++) {
    for (const dir of left) {
      for (const pid of readPids(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
    }
    // A group whose last process just died is usually free within a few ms: 2 ms at first, doubling to 50.
    await new Promise((r) => setTimeout(r, Math.min(2 * 2 ** attempt, 50)));
    left = removeDirs(left);
  }
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
