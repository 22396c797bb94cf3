import type { ChainableCommander, Redis } from 'ioredis';
import { objectKey, parseObjectKey, type Keys } from './keys.ts';
import type { EndpointsRecord, ServiceNodeStatus, ServiceRecord } from './records/service.ts';

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
