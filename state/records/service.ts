import type { Condition } from './status.ts';

/**
 * The records behind Services: what Git asks for (ServiceRecord), what the endpoints controller
 * derives from it (EndpointsRecord), and what each agent's proxy could not do (ServiceNodeStatus).
 * Agents read only EndpointsRecords: everything they need to listen and forward is in there, so
 * conflict rules and rollout logic stay in the reconciler.
 */

export interface ServicePortRecord {
  name?: string;
  port: number;
  /** A container port's name or number (defaults to `port`). */
  targetPort: number | string;
}

export interface ServiceRecord {
  namespace: string;
  name: string;
  commit: string;
  file: string;
  line: number;
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
  /** Service port -> the instance's host port for that port's targetPort. */
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

export interface EndpointsRecord {
  namespace: string;
  name: string;
  ports: ServicePortRecord[];
  /** Ports agents listen on: the service's ports minus those another service claimed first. */
  listen: number[];
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
