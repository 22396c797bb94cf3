import type { Condition } from './status.ts';

/**
 * The records behind Services: what Git asks for (ServiceRecord), what the endpoints controller
 * derives from it (EndpointsRecord), and what each agent's proxy could not do (ServiceNodeStatus).
 * Agents read only EndpointsRecords: everything they need to listen and forward is in there, so
 * conflict rules and rollout logic stay in the reconciler.
 */

export type ServiceProtocol = 'TCP' | 'UDP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';

/** Kubernetes' default --service-node-port-range: where nodePorts are written and allocated. */
export const NODE_PORT_MIN = 30000;
export const NODE_PORT_MAX = 32767;

export interface ServicePortRecord {
  name?: string;
  port: number;
  /** A container port's name or number (defaults to `port`). */
  targetPort: number | string;
  /** Absent: TCP (records stay as they were for the services that had no choice). */
  protocol?: ServiceProtocol;
  /**
   * NodePort and LoadBalancer services. In a ServiceRecord only when Git sets it; in an
   * EndpointsRecord always, allocated by the endpoints controller when Git leaves it out.
   */
  nodePort?: number;
}

export interface ServiceRecord {
  namespace: string;
  name: string;
  commit: string;
  file: string;
  line: number;
  /** Absent: ClusterIP. */
  type?: ServiceType;
  /** clusterIP (or clusterIPs) None: endpoints are kept, no proxy listens. */
  headless?: true;
  selector: Record<string, string>;
  ports: ServicePortRecord[];
  /** As DeploymentRecord.owner ('main' when absent). */
  owner?: string;
}

/** One ready instance behind a service. */
export interface Endpoint {
  instanceId: string;
  node: string;
  /** The node's address (InstanceStatus.hostIP). */
  host: string;
  /** Service port (`portKey`: "8000", "53/UDP") -> the instance's host port for its targetPort. */
  ports: Record<string, number>;
  /** Template hash of the instance: which rollout revision it belongs to. */
  revision: string;
}

/** During a canary: `weight` percent of connections go to endpoints of `canaryRevision`. */
export interface CanarySplit {
  deployment: string;
  canaryRevision: string;
  stableRevision: string;
  weight: number;
}

/** One socket every agent's proxy opens for a service, on its own address. */
export interface ServiceListener {
  protocol: ServiceProtocol;
  /** The port bound: a service port, or a nodePort. */
  port: number;
  /** `portKey` of the service port it serves: the Endpoint.ports entry to forward to. */
  target: string;
  nodePort?: true;
}

export interface EndpointsRecord {
  namespace: string;
  name: string;
  /** Absent: ClusterIP. */
  type?: ServiceType;
  headless?: true;
  /** The service's ports, with the nodePort each got (NodePort and LoadBalancer). */
  ports: ServicePortRecord[];
  /** Service port numbers agents listen on (either protocol): those another service did not claim first. */
  listen: number[];
  /** What agents bind, nodePorts included. Absent in records written before: the TCP ports of `listen`. */
  listeners?: ServiceListener[];
  endpoints: Endpoint[];
  split?: CanarySplit;
  conditions: Condition[];
  updatedAt: number;
}

/** What one agent could not do for a service (a port something else on that host holds). */
export interface ServiceNodeStatus {
  port: number;
  error: string;
  at: number;
}

/** The key of a service port in Endpoint.ports: its number for TCP (as before UDP), "<port>/UDP" for UDP. */
export function portKey(p: { port: number; protocol?: ServiceProtocol }): string {
  return p.protocol === 'UDP' ? `${p.port}/UDP` : String(p.port);
}

/** The sockets of a record: `listeners`, or, for one written before them, `listen` as TCP. */
export function listenersOf(e: EndpointsRecord): ServiceListener[] {
  return e.listeners ?? e.listen.map((port) => ({ protocol: 'TCP' as const, port, target: String(port) }));
}
