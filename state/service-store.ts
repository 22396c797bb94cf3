import type { ChainableCommander, Redis } from 'ioredis';
import { parseStored } from './json.ts';
import { objectKey, parseObjectKey, type Keys } from './keys.ts';
import type { EndpointsRecord, ServiceNodeStatus, ServiceRecord } from './records/service.ts';

/**
 * The Redis values behind Services: the desired `service:<ns>:<name>` records (written with the
 * rest of a commit's desired state), the endpoints controller's `endpoints:<ns>:<name>` records,
 * each agent's `service-node-status:<node>`, and the services channel that announces changes.
 * Used by the reconciler (endpoints controller, API) and by every agent's proxy.
 */
export class ServiceStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** "<ns>/<name>" of every desired service, sorted. */
  async serviceKeys(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.services)).sort();
  }

  /** The desired services, sorted by namespace/name (the order that decides port conflicts). */
  async readServices(): Promise<ServiceRecord[]> {
    const names = await this.serviceKeys();
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map((n) => this.serviceKey(n)));
    return raws.map((r) => parseStored<ServiceRecord>(r)).filter((s): s is ServiceRecord => !!s);
  }

  /** Endpoints records of the given "<ns>/<name>" keys (missing ones left out). */
  async readEndpoints(names: string[]): Promise<EndpointsRecord[]> {
    if (names.length === 0) return [];
    const raws = await this.redis.mget(names.map((n) => this.endpointsKey(n)));
    return raws.map((r) => parseStored<EndpointsRecord>(r)).filter((e): e is EndpointsRecord => !!e);
  }

  /** Every endpoints record of a desired service. */
  async readAllEndpoints(): Promise<EndpointsRecord[]> {
    return this.readEndpoints(await this.serviceKeys());
  }

  /**
   * Writes changed endpoints records and announces them in one MULTI; then drops again any whose
   * service was pruned while they were computed (a pruned service must not keep a record).
   */
  async writeEndpoints(records: EndpointsRecord[]): Promise<void> {
    if (records.length === 0) return;
    const tx = this.redis.multi();
    for (const e of records) tx.set(this.keys.endpoints(e.namespace, e.name), JSON.stringify(e));
    tx.publish(this.keys.servicesChannel, 'endpoints');
    await tx.exec();
    const desired = new Set(await this.redis.smembers(this.keys.services));
    const stale = records.filter((e) => !desired.has(objectKey(e.namespace, e.name)));
    if (stale.length > 0) await this.redis.del(...stale.map((e) => this.keys.endpoints(e.namespace, e.name)));
  }

  /** node -> ("<ns>/<name>" -> status) for the given nodes, in one pipeline. */
  async readNodeStatuses(nodes: string[]): Promise<Map<string, Record<string, ServiceNodeStatus>>> {
    const out = new Map<string, Record<string, ServiceNodeStatus>>();
    if (nodes.length === 0) return out;
    const pipe = this.redis.pipeline();
    for (const n of nodes) pipe.hgetall(this.keys.serviceNodeStatus(n));
    const res = (await pipe.exec()) ?? [];
    nodes.forEach((n, i) => {
      const all = (res[i]?.[1] ?? {}) as Record<string, string>;
      const parsed: Record<string, ServiceNodeStatus> = {};
      for (const [k, v] of Object.entries(all)) {
        const s = parseStored<ServiceNodeStatus>(v);
        if (s) parsed[k] = s;
      }
      out.set(n, parsed);
    });
    return out;
  }

  /** One agent's ports that failed to bind: `set` by service key, `gone` ones cleared; one MULTI. */
  async updateNodeStatus(node: string, set: Map<string, ServiceNodeStatus>, gone: string[]): Promise<void> {
    if (set.size === 0 && gone.length === 0) return;
    const key = this.keys.serviceNodeStatus(node);
    const tx = this.redis.multi();
    if (set.size > 0) tx.hset(key, ...[...set].flatMap(([service, st]) => [service, JSON.stringify(st)]));
    if (gone.length > 0) tx.hdel(key, ...gone);
    await tx.exec();
  }

  async clearNodeStatus(node: string): Promise<void> {
    await this.redis.del(this.keys.serviceNodeStatus(node));
  }

  private serviceKey(name: string): string {
    const { namespace, name: n } = parseObjectKey(name);
    return this.keys.service(namespace, n);
  }

  private endpointsKey(name: string): string {
    const { namespace, name: n } = parseObjectKey(name);
    return this.keys.endpoints(namespace, n);
  }
}

/**
 * Queues on `tx` the writes that make `owner`'s services exactly `next` (as the store's
 * writeOwnedState does for deployments), and announces them so the endpoints controller and the
 * proxies act at once. Called only from within the store's MULTI.
 */
export function queueOwnedServices(tx: ChainableCommander, keys: Keys, owner: string, before: ServiceRecord[], next: ServiceRecord[]): void {
  const keep = new Set(next.map((s) => objectKey(s.namespace, s.name)));
  for (const s of before) {
    const key = objectKey(s.namespace, s.name);
    if ((s.owner ?? 'main') === owner && !keep.has(key)) tx.del(keys.service(s.namespace, s.name), keys.endpoints(s.namespace, s.name)).srem(keys.services, key);
  }
  for (const s of next) tx.set(keys.service(s.namespace, s.name), JSON.stringify(s)).sadd(keys.services, objectKey(s.namespace, s.name));
  tx.publish(keys.servicesChannel, 'desired');
}
