import type { ChainableCommander, Redis } from 'ioredis';
import type { Service } from '../../schemas/generated/index.ts';
import { objectKey, parseObjectKey, type Keys } from '../redis/keys.ts';
import type { Condition } from '../state/records.ts';

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

export function toServiceRecord(s: Service, commit: string, file: string, line: number): ServiceRecord {
  return {
    namespace: s.metadata.namespace ?? 'default',
    name: s.metadata.name,
    commit,
    file,
    line,
    selector: s.spec.selector,
    ports: s.spec.ports.map((p) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, targetPort: p.targetPort ?? p.port })),
  };
}

function parse<T>(raw: string | null | undefined): T | undefined {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined; // rewritten by its owner on the next pass
  }
}

/** The desired services, sorted by namespace/name (the order that decides port conflicts). */
export async function readServices(redis: Redis, keys: Keys): Promise<ServiceRecord[]> {
  const names = (await redis.smembers(keys.services)).sort();
  if (names.length === 0) return [];
  const raws = await redis.mget(names.map((n) => { const { namespace, name } = parseObjectKey(n); return keys.service(namespace, name); }));
  return raws.map((r) => parse<ServiceRecord>(r)).filter((s): s is ServiceRecord => !!s);
}

/** Endpoints records of the given "<ns>/<name>" keys (missing ones left out). */
export async function readEndpoints(redis: Redis, keys: Keys, names: string[]): Promise<EndpointsRecord[]> {
  if (names.length === 0) return [];
  const raws = await redis.mget(names.map((n) => { const { namespace, name } = parseObjectKey(n); return keys.endpoints(namespace, name); }));
  return raws.map((r) => parse<EndpointsRecord>(r)).filter((e): e is EndpointsRecord => !!e);
}

/** Every endpoints record of a desired service. */
export async function readAllEndpoints(redis: Redis, keys: Keys): Promise<EndpointsRecord[]> {
  return readEndpoints(redis, keys, (await redis.smembers(keys.services)).sort());
}

/** node -> ("<ns>/<name>" -> status) for the given nodes. */
export async function readServiceNodeStatuses(redis: Redis, keys: Keys, nodes: string[]): Promise<Map<string, Record<string, ServiceNodeStatus>>> {
  const out = new Map<string, Record<string, ServiceNodeStatus>>();
  if (nodes.length === 0) return out;
  const pipe = redis.pipeline();
  for (const n of nodes) pipe.hgetall(keys.serviceNodeStatus(n));
  const res = (await pipe.exec()) ?? [];
  nodes.forEach((n, i) => {
    const all = (res[i]?.[1] ?? {}) as Record<string, string>;
    const parsed: Record<string, ServiceNodeStatus> = {};
    for (const [k, v] of Object.entries(all)) {
      const s = parse<ServiceNodeStatus>(v);
      if (s) parsed[k] = s;
    }
    out.set(n, parsed);
  });
  return out;
}

/**
 * Queues on `tx` the writes that make `owner`'s services exactly `next` (as writeOwnedState does
 * for deployments), and announces them so the endpoints controller and the proxies act at once.
 */
export function writeOwnedServices(tx: ChainableCommander, keys: Keys, owner: string, before: ServiceRecord[], next: ServiceRecord[]): void {
  const keep = new Set(next.map((s) => objectKey(s.namespace, s.name)));
  for (const s of before) {
    const key = objectKey(s.namespace, s.name);
    if ((s.owner ?? 'main') === owner && !keep.has(key)) tx.del(keys.service(s.namespace, s.name), keys.endpoints(s.namespace, s.name)).srem(keys.services, key);
  }
  for (const s of next) tx.set(keys.service(s.namespace, s.name), JSON.stringify(s)).sadd(keys.services, objectKey(s.namespace, s.name));
  tx.publish(keys.servicesChannel, 'desired');
}
