import type { ContainerSpec, PortProtocol } from '../../state/records/instance.ts';

/**
 * The scheduler's host-port filter (kube-scheduler's NodePorts plugin), pure: a container port with
 * a `hostPort` makes the agent bind exactly that port on its node, so two instances needing the
 * same port, protocol and address can never both run on one node. The node's used host ports are
 * those of the instances bound to it; allocated host ports (no `hostPort`) never count, being
 * chosen free by the agent.
 */

/** One host port an instance needs: `ip` absent is the node's address. */
export interface HostPortUse {
  port: number;
  protocol: PortProtocol;
  ip?: string;
}

/** 0.0.0.0 and :: bind every address of the node (:: also IPv4 on Linux), so they overlap with any. */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/** The fixed host ports of an instance's containers. */
export function requestedHostPorts(containers: readonly Pick<ContainerSpec, 'ports'>[]): HostPortUse[] {
  return containers.flatMap((c) =>
    c.ports.flatMap((p) => (p.hostPort ? [{ port: p.hostPort, protocol: p.protocol ?? 'TCP', ...(p.hostIP !== undefined ? { ip: p.hostIP } : {}) }] : [])),
  );
}

/** Whether any wanted port is already used on a node at `nodeAddress` (what an absent ip means there). */
export function hostPortsConflict(wanted: readonly HostPortUse[], used: readonly HostPortUse[], nodeAddress: string): boolean {
  const ipOf = (u: HostPortUse) => u.ip ?? nodeAddress;
  return wanted.some((w) =>
    used.some((u) => u.port === w.port && u.protocol === w.protocol && (ipOf(u) === ipOf(w) || UNSPECIFIED.has(ipOf(u)) || UNSPECIFIED.has(ipOf(w)))),
  );
}
