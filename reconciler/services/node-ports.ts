import { createHash } from 'node:crypto';
import { objectKey } from '../../state/keys.ts';
import { NODE_PORT_MAX, NODE_PORT_MIN, portKey, type EndpointsRecord, type ServiceRecord } from '../../state/records/service.ts';

/**
 * The nodePort of every port of the NodePort and LoadBalancer services, pure. Git's nodePorts are
 * taken as written (the loader has made sure no two services write the same one). A port without
 * one keeps the nodePort its previous endpoints record gave it, so allocations are stable across
 * commits: adding, removing or reordering other services moves nothing, which a function of the
 * service set alone could not promise. The endpoints records in Redis are the allocation table.
 *
 * A new allocation starts at a hash of "<ns>/<name>/<port>" and takes the next free port of
 * 30000-32767, so it does not depend on which other services are new in the same pass, and a
 * Redis that lost its data mostly gives the same ports back. It avoids every nodePort already
 * held and every service port (both listen on each agent's address). An allocation a later commit
 * writes into Git for another service goes to that service: Git wins, the older one moves.
 */

/** "<ns>/<name>" -> portKey -> nodePort; a port missing from it found no free nodePort. */
export type NodePorts = Map<string, Map<string, number>>;

const RANGE = NODE_PORT_MAX - NODE_PORT_MIN + 1;

export function exposedOnNodes(svc: Pick<ServiceRecord, 'type' | 'headless'>): boolean {
  return !svc.headless && (svc.type === 'NodePort' || svc.type === 'LoadBalancer');
}

export function allocateNodePorts(services: readonly ServiceRecord[], previous: ReadonlyMap<string, EndpointsRecord>): NodePorts {
  const out: NodePorts = new Map();
  const taken = new Set<number>();
  const exposed = services.filter(exposedOnNodes);
  for (const svc of services) if (!svc.headless) for (const p of svc.ports) taken.add(p.port);
  // Git's own first, so that no kept allocation can hold one.
  for (const svc of exposed) {
    const mine = new Map<string, number>();
    out.set(objectKey(svc.namespace, svc.name), mine);
    for (const p of svc.ports) {
      if (p.nodePort === undefined) continue;
      mine.set(portKey(p), p.nodePort);
      taken.add(p.nodePort);
    }
  }
  const wanting: { svc: ServiceRecord; key: string }[] = [];
  for (const svc of exposed) {
    const key = objectKey(svc.namespace, svc.name);
    const mine = out.get(key)!;
    const before = new Map((previous.get(key)?.ports ?? []).filter((p) => p.nodePort !== undefined).map((p) => [portKey(p), p.nodePort!]));
    for (const p of svc.ports) {
      const k = portKey(p);
      if (mine.has(k)) continue;
      const kept = before.get(k);
      if (kept !== undefined && kept >= NODE_PORT_MIN && kept <= NODE_PORT_MAX && !taken.has(kept)) {
        mine.set(k, kept);
        taken.add(kept);
      } else wanting.push({ svc, key: k });
    }
  }
  for (const { svc, key } of wanting) {
    const start = hashStart(`${objectKey(svc.namespace, svc.name)}/${key}`);
    for (let i = 0; i < RANGE; i++) {
      const candidate = NODE_PORT_MIN + ((start + i) % RANGE);
      if (taken.has(candidate)) continue;
      out.get(objectKey(svc.namespace, svc.name))!.set(key, candidate);
      taken.add(candidate);
      break;
    }
  }
  return out;
}

function hashStart(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) % RANGE;
}
