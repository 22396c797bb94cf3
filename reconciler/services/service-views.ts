import type { FastifyInstance } from 'fastify';
import { objectKey } from '../../state/keys.ts';
import type { Condition } from '../../state/records/status.ts';
import type { Store } from '../../state/store.ts';
import { listenersOf, portKey, type CanarySplit, type Endpoint, type EndpointsRecord, type ServiceListener, type ServicePortRecord, type ServiceRecord, type ServiceType } from '../../state/records/service.ts';
import { exposedOnNodes } from './node-ports.ts';

/** What `GET /api/v1/services` returns and `gantry get services` prints. */
export interface ServiceView {
  namespace: string;
  name: string;
  commit: string;
  file: string;
  /** ClusterIP, NodePort or LoadBalancer (served as NodePort). */
  type: ServiceType;
  /** clusterIP None: endpoints only, no agent listens. */
  headless: boolean;
  selector: Record<string, string>;
  /** As in Git, with the nodePort each port got (allocated when Git leaves it out). */
  ports: ServicePortRecord[];
  /** Service ports the agents listen on (a conflicting port is left out). */
  listen: number[];
  /** Every socket each agent opens for it: service ports and nodePorts, TCP or UDP. */
  listeners: ServiceListener[];
  endpoints: Endpoint[];
  split: CanarySplit | null;
  /** The endpoints controller's conditions, plus PortUnavailable when an agent could not bind. */
  conditions: Condition[];
}

export async function describeServices(store: Store, namespace?: string): Promise<ServiceView[]> {
  const services = (await store.services.readServices()).filter((s) => !namespace || s.namespace === namespace);
  const nodes = await store.nodeNames();
  const [endpoints, nodeStatuses] = await Promise.all([store.services.readEndpoints(services.map((s) => objectKey(s.namespace, s.name))), store.services.readNodeStatuses(nodes)]);
  const byKey = new Map(endpoints.map((e) => [objectKey(e.namespace, e.name), e]));
  return services.map((s) => {
    const key = objectKey(s.namespace, s.name);
    const e = byKey.get(key);
    const conditions = [...(e?.conditions ?? [])];
    const unbound = nodes.flatMap((n) => {
      const st = nodeStatuses.get(n)?.[key];
      return st ? [{ node: n, ...st }] : [];
    });
    if (unbound.length > 0) {
      conditions.push({
        type: 'PortUnavailable',
        status: 'True',
        reason: 'HostPortInUse',
        message: unbound.map((u) => `node ${u.node}: port ${u.port}: ${u.error}`).join('; '),
        lastTransitionTime: Math.min(...unbound.map((u) => u.at)),
      });
    }
    return {
      namespace: s.namespace,
      name: s.name,
      commit: s.commit,
      file: s.file,
      type: s.type ?? 'ClusterIP',
      headless: s.headless ?? false,
      selector: s.selector,
      ports: withNodePorts(s, e),
      listen: e?.listen ?? [],
      listeners: e ? listenersOf(e) : [],
      endpoints: e?.endpoints ?? [],
      split: e?.split ?? null,
      conditions,
    };
  });
}

/** Git's ports with the nodePorts the endpoints controller allocated (a record not yet recomputed adds none). */
function withNodePorts(s: ServiceRecord, e: EndpointsRecord | undefined): ServicePortRecord[] {
  if (!e || !exposedOnNodes(s)) return s.ports;
  return s.ports.map((p) => {
    const nodePort = p.nodePort ?? e.ports.find((x) => portKey(x) === portKey(p))?.nodePort;
    return nodePort === undefined ? p : { ...p, nodePort };
  });
}

export function registerServiceRoutes(app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: { namespace?: string } }>('/api/v1/services', async (req) => ({ items: await describeServices(store, req.query.namespace) }));
}
