import { createHash } from 'node:crypto';

/**
 * Names and addresses of the per-pod network namespaces of the process runtime
 * (`--pod-network-namespaces`, pod-netns.ts); pure. Each pod gets one namespace and one veth pair
 * whose two ends share a /30 carved out of the configured range: `.1` on the host side, `.2` (the
 * pod IP) on `eth0` inside.
 *
 * The namespace is named from the installation scope and the instance id, so a restarted agent
 * finds it again by name alone, and every namespace of this installation shares one prefix (strays
 * are found by it). Namespace names have no length limit worth minding; interface names do (15
 * characters), so the host end is named after its /30 instead: `gvh<network address in hex>`. Since
 * an interface name is unique on the host, creating that interface is what claims the /30: two
 * agents of one host racing for a subnet cannot both get it, whatever range each was given.
 */

export const DEFAULT_POD_NETWORK_RANGE = '10.213.0.0/16';

/** The netns of a pod: `gantry-<scope, 6 hex>-<hash of scope and instance id, 8 hex>` (22 characters). */
export function netnsName(scope: string, instanceId: string): string {
  return `${netnsPrefix(scope)}${hex(`${scope}\0${instanceId}`).slice(0, 8)}`;
}

/** What every namespace of this installation (agent scope) starts with. */
export function netnsPrefix(scope: string): string {
  return `gantry-${hex(scope).slice(0, 6)}-`;
}

/** An IPv4 range pods get their /30s from. */
export interface PodNetworkRange {
  readonly cidr: string;
  /** Network address as a 32-bit number. */
  readonly base: number;
  readonly prefixLength: number;
  /** How many /30s it holds. */
  readonly slots: number;
}

/** Private ranges only: pod addresses must never shadow a real network the node talks to. */
const PRIVATE: [string, number][] = [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10]];

/** Parses `--pod-network-range`; throws a one-line Error saying what is wrong. */
export function parsePodNetworkRange(cidr: string): PodNetworkRange {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr.trim());
  const base = m ? ipToNumber(m[1]!) : undefined;
  const prefixLength = m ? Number(m[2]) : NaN;
  if (base === undefined || !(prefixLength >= 8 && prefixLength <= 30)) {
    throw new Error(`pod network range ${JSON.stringify(cidr)}: expected an IPv4 CIDR with a prefix length from 8 to 30, e.g. ${DEFAULT_POD_NETWORK_RANGE}`);
  }
  const size = 2 ** (32 - prefixLength);
  if (base % size !== 0) throw new Error(`pod network range ${cidr}: ${m![1]} is not the network address of a /${prefixLength}`);
  const inPrivate = PRIVATE.some(([net, len]) => {
    const start = ipToNumber(net)!;
    return prefixLength >= len && base >= start && base + size <= start + 2 ** (32 - len);
  });
  if (!inPrivate) throw new Error(`pod network range ${cidr}: must lie in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10)`);
  return { cidr, base, prefixLength, slots: size / 4 };
}

/** The two ends of a pod's veth pair. */
export interface PodLink {
  /** The host end's name (`gvh` + the /30's network address in hex): 11 characters. */
  readonly hostVeth: string;
  /** Host end's address, the pod's default gateway. */
  readonly hostIP: string;
  /** The namespace end's (eth0) address: status.podIP. */
  readonly podIP: string;
  readonly prefixLength: 30;
}

/** The link of the `slot`-th /30 of `range`. */
export function podLink(range: PodNetworkRange, slot: number): PodLink {
  if (!Number.isInteger(slot) || slot < 0 || slot >= range.slots) throw new RangeError(`slot ${slot} is outside ${range.cidr}`);
  return linkOf(range.base + slot * 4);
}

/** The link a pod IP (read back from a namespace's eth0) belongs to, whatever range is configured now. */
export function podLinkOf(podIP: string): PodLink | undefined {
  const n = ipToNumber(podIP);
  if (n === undefined || n % 4 !== 2) return undefined;
  return linkOf(n - 2);
}

function linkOf(network: number): PodLink {
  return { hostVeth: `gvh${network.toString(16).padStart(8, '0')}`, hostIP: numberToIp(network + 1), podIP: numberToIp(network + 2), prefixLength: 30 };
}

/**
 * The /30s to try for an instance, best first: from one derived from its scope and id (so an
 * instance usually gets the same address each time, and instances spread over the range), then on,
 * wrapping around, until every slot was offered.
 */
export function* candidateSlots(range: PodNetworkRange, scope: string, instanceId: string): Generator<number> {
  const first = Number.parseInt(hex(`${scope}\0${instanceId}\0slot`).slice(0, 8), 16) % range.slots;
  for (let i = 0; i < range.slots; i++) yield (first + i) % range.slots;
}

/** Whether `address` (IPv4; anything else never) lies in the /30 of `link`: a host address there rules the slot out. */
export function inLink(link: PodLink, address: string): boolean {
  const n = ipToNumber(address);
  const network = ipToNumber(link.hostIP)! - 1;
  return n !== undefined && n >= network && n < network + 4;
}

/**
 * What the namespace says of itself, as the alias of its loopback interface (an interface alias is
 * kernel state that lives and dies with the namespace, like a container's labels): the uid of the
 * incarnation it was made for, and a hash of the instance id (ids may be longer than an alias).
 */
export function sandboxAlias(instanceId: string, uid: string): string {
  return `gantry instance=${hex(instanceId).slice(0, 16)} uid=${uid}`;
}

export function parseSandboxAlias(alias: string | undefined): { instance: string; uid: string } | undefined {
  const m = /^gantry instance=([0-9a-f]{16}) uid=(\S+)$/.exec(alias ?? '');
  return m ? { instance: m[1]!, uid: m[2]! } : undefined;
}

/** Whether an alias names this instance (the same hash sandboxAlias writes). */
export function aliasNames(alias: { instance: string }, instanceId: string): boolean {
  return alias.instance === hex(instanceId).slice(0, 16);
}

function hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function ipToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

function numberToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
