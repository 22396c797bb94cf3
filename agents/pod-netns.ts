import { execFile, execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { delimiter, join } from 'node:path';
import { inLink, podLink, podLinkOf, type PodLink, type PodNetworkRange } from './pod-netns-plan.ts';

/**
 * The network namespaces of process pods on the host, made and inspected with iproute2's `ip`
 * (names and addresses: pod-netns-plan.ts). A namespace is a file under /var/run/netns; its state
 * (the veth, the addresses, the loopback's alias naming the pod) is the kernel's, so a restarted
 * agent reads everything back from it and keeps no bookkeeping of its own.
 *
 * Processes enter it with `nsenter --net=<file>` (util-linux), not `ip netns exec`: the latter also
 * unshares the mount namespace and remounts /sys for the namespace, which hides /sys/fs/cgroup, where
 * the wrapper shell joins the container's cgroups (cgroup-limits.ts). nsenter only setns(2)es the
 * network and execs, so the pid the agent spawned stays the wrapper shell's.
 */

const NETNS_DIR = '/var/run/netns';

export function netnsPath(name: string): string {
  return join(NETNS_DIR, name);
}

export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}

/**
 * Why this host cannot give pods namespaces, or where nsenter is. Synchronous and run once, at the
 * agent's start, so that the option fails there with one line rather than at every pod's start.
 */
export function podNetnsSupport(): { nsenter: string } | { error: string } {
  if (process.platform !== 'linux') return { error: `needs Linux (this agent runs on ${process.platform})` };
  const uid = process.getuid?.();
  if (uid !== 0) return { error: `needs root to create network namespaces and veth pairs (the agent runs as uid ${uid})` };
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    return { error: `needs iproute2's ip with network namespace support (\`ip netns list\` failed: ${firstLine(err)})` };
  }
  const nsenter = findExecutable('nsenter');
  if (!nsenter) return { error: 'needs nsenter (util-linux) on PATH to start processes inside a namespace' };
  return { nsenter };
}

/** What a namespace holds of a pod: the alias of its loopback and the address of its eth0. */
export interface NetnsInfo {
  alias?: string;
  hasEth0: boolean;
  podIP?: string;
}

/** Undefined when the namespace does not exist (or went while looking). */
export async function inspectNetns(name: string): Promise<NetnsInfo | undefined> {
  if (!netnsExists(name)) return undefined;
  try {
    const links = JSON.parse(await ip(['-n', name, '-j', 'link', 'show'])) as { ifname: string; ifalias?: string }[];
    const info: NetnsInfo = { hasEth0: links.some((l) => l.ifname === 'eth0') };
    const alias = links.find((l) => l.ifname === 'lo')?.ifalias;
    if (alias) info.alias = alias;
    if (info.hasEth0) {
      const addrs = JSON.parse(await ip(['-n', name, '-j', 'addr', 'show', 'dev', 'eth0'])) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
      const v4 = addrs[0]?.addr_info?.find((a) => a.family === 'inet' && a.prefixlen === 30);
      if (v4) info.podIP = v4.local;
    }
    return info;
  } catch (err) {
    if (!netnsExists(name)) return undefined;
    throw err;
  }
}

/**
 * Makes namespace `name` complete, as far as it is not: the namespace, its loopback up and named by
 * `alias`, a veth pair whose inside end is eth0 with the pod IP and a default route via the host
 * end. Idempotent, so that an attempt cut short (an agent killed halfway, a failed start) is
 * completed by the next one: an eth0 that got its address keeps it; one that did not is made again.
 * A new pair takes the first of `slots` whose /30 no host interface has an address in and whose
 * host end's name is free; creating that interface is the claim (pod-netns-plan.ts).
 */
export async function ensureNetns(name: string, alias: string, range: PodNetworkRange, slots: Iterable<number>): Promise<PodLink> {
  if (!netnsExists(name)) await ip(['netns', 'add', name]).catch((err: Error) => (exists(err) ? undefined : Promise.reject(err)));
  // The alias first: the namespace says whose it is before it holds anything worth finding.
  await ip(['-n', name, 'link', 'set', 'lo', 'alias', alias]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  const info = await inspectNetns(name);
  if (!info) throw new Error(`network namespace ${name} disappeared while it was being set up`);
  let link = info.podIP ? podLinkOf(info.podIP) : undefined;
  if (!link) {
    // A veth whose inside end never got its address: its claim was never recorded, make it again.
    if (info.hasEth0) await ip(['-n', name, 'link', 'del', 'eth0']);
    link = await claimLink(name, range, slots);
  }
  await ip(['addr', 'replace', `${link.hostIP}/30`, 'dev', link.hostVeth]);
  await ip(['link', 'set', link.hostVeth, 'up']);
  await ip(['-n', name, 'link', 'set', 'eth0', 'up']);
  // Through the host end the pod reaches the node's own addresses (a non-loopback --address, where
  // Services and other pods' host ports are). Nothing masquerades it beyond the node.
  await ip(['-n', name, 'route', 'replace', 'default', 'via', link.hostIP, 'dev', 'eth0']);
  return link;
}

async function claimLink(name: string, range: PodNetworkRange, slots: Iterable<number>): Promise<PodLink> {
  const hostAddresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  for (const slot of slots) {
    const link = podLink(range, slot);
    if (existsSync(`/sys/class/net/${link.hostVeth}`) || hostAddresses.some((a) => inLink(link, a))) continue;
    try {
      await ip(['link', 'add', link.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
    } catch (err) {
      // Taken a moment ago by another pod or agent of this host: the next one.
      if (exists(err as Error)) continue;
      throw err;
    }
    // Recorded in the namespace at once: this is what findSandbox reads back.
    await ip(['-n', name, 'addr', 'add', `${link.podIP}/30`, 'dev', 'eth0']);
    return link;
  }
  throw new Error(`no free /30 left in pod network range ${range.cidr}`);
}

/**
 * Removes the namespace. eth0 is deleted first, which takes its host end with it at once (the
 * kernel tears a namespace down asynchronously, and the host end's name is the /30's claim).
 * Processes still inside are left alone: the namespace then lives on until they end.
 */
export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  await ip(['-n', name, 'link', 'del', 'eth0']).catch(() => {});
  await ip(['netns', 'del', name]).catch((err: Error) => (netnsExists(name) ? Promise.reject(err) : undefined));
}

/** Namespaces on this host whose name starts with `prefix`. */
export function listNetns(prefix: string): string[] {
  try {
    return readdirSync(NETNS_DIR).filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/** Runs `ip`; a failure says the command and ip's own first line of complaint. */
export function ip(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ip ${args.join(' ')}: ${String(stderr).trim().split('\n')[0] || err.message}`));
      else resolve(String(stdout));
    });
  });
}

function exists(err: Error): boolean {
  return /File exists/.test(err.message);
}

function firstLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  return (String(e.stderr ?? '').trim() || e.message || String(err)).split('\n')[0]!;
}

function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not there
    }
  }
  return undefined;
}
