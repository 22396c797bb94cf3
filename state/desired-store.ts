import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { parseStored } from './json.ts';
import { objectKey, parseObjectKey, type Keys } from './keys.ts';
import type { GantryScripts } from './scripts.ts';
import { ownerOf, type DeploymentRecord, type NamespaceRecord } from './records/deployment.ts';
import type { ServiceRecord } from './records/service.ts';
import type { ConfigVersionRecord } from './records/config.ts';
import type { SourceStatus } from './records/status.ts';

/**
 * The tracked branch's desired state written incrementally (reconciler/controller/source-sync.ts):
 * only the objects a commit changed, added or removed, in one MULTI with the source status, and
 * with each a checksum in `desired-checksums`, so that drift can be found without reading values:
 *
 *   "v <key>"           sha1 of the string at <key> (deployment:<ns>:<name>, service:<ns>:<name>)
 *   "h <key> <field>"   sha1 of a hash field (namespaces <name>, configs-applied <ns>/<kind>/<name>)
 *   "e <key> <field>"   "1": the field exists (config:<ns>:<kind>:<name> <version>: a version is
 *                       immutable and named by its content, and a preview may have written it first)
 *   "s <key> <member>"  "1": the member is in the set (deployments, services, configs)
 *   "@token"            random, new with every write: the writer's in-memory copy is current while
 *                       it is what the writer last wrote
 *   "@count"            how many checks there are: a check deleted from the hash is drift too
 *
 * findDrift() runs lua/desired-drift-1.lua page by page: Redis hashes what it holds and compares,
 * and only the checks that fail come back. Previews keep using Store.writeOwnedState.
 */

export type DesiredItem =
  | { kind: 'namespace'; record: NamespaceRecord }
  | { kind: 'deployment'; record: DeploymentRecord }
  | { kind: 'service'; record: ServiceRecord }
  | { kind: 'config'; record: ConfigVersionRecord };

/** An item as stored: `raw` is the exact value (for a config, the version record). */
export interface StoredItem {
  item: DesiredItem;
  raw: string;
}

/** An item to write: `json` is JSON.stringify(record); `before` what it replaces, if anything. */
export interface DesiredWrite {
  item: DesiredItem;
  json: string;
  before?: DesiredItem;
}

export interface DesiredChange {
  upsert: DesiredWrite[];
  remove: DesiredItem[];
  /**
   * Every item of the new state with the checksum of its JSON: given when the checksums stored
   * are not known to match (after a restart, or when drift was found), they are all rewritten.
   */
  resetChecksums?: { item: DesiredItem; sum: string }[];
  /** The new @token and @count. */
  token: string;
  count: number;
  sourceStatus?: SourceStatus;
}

export interface DriftReport {
  /** The checks (fields of desired-checksums) whose value differs from what Redis holds. */
  failed: string[];
  /** Checks held beside @count: not equal when checks were deleted (or the hash is gone). */
  checks: number;
  count?: number;
  token?: string;
}

/** The checksum the drift check compares with: sha1 hex of the UTF-8 bytes, as redis.sha1hex. */
export function checksum(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** "deployment/<ns>/<name>", "namespace/<name>", "service/<ns>/<name>", "config/<ns>/<kind>/<name>". */
export function desiredId(item: DesiredItem): string {
  if (item.kind === 'namespace') return `namespace/${item.record.name}`;
  if (item.kind === 'config') return `config/${item.record.namespace}/${item.record.kind}/${item.record.name}`;
  return `${item.kind}/${item.record.namespace}/${item.record.name}`;
}

/** How many checks an item of each kind has in desired-checksums (what @count adds up). */
export const CHECKS_PER_KIND: Readonly<Record<DesiredItem['kind'], number>> = { namespace: 1, deployment: 2, service: 2, config: 3 };

const PAGE = 1000;
/** Fields per HSET when all checksums are rewritten. */
const CHUNK = 1000;

export class DesiredStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly scripts: GantryScripts,
  ) {}

  /** The desired-checksums fields of `item`, with their values (`sum`: the checksum of its JSON). */
  checksOf(item: DesiredItem, sum: string): [string, string][] {
    const k = this.keys;
    if (item.kind === 'namespace') return [[`h ${k.namespaces} ${item.record.name}`, sum]];
    if (item.kind === 'config') {
      const c = item.record;
      const member = `${c.namespace}/${c.kind}/${c.name}`;
      return [[`e ${k.config(c.namespace, c.kind, c.name)} ${c.version}`, '1'], [`s ${k.configs} ${member}`, '1'], [`h ${k.configsApplied} ${member}`, checksum(c.version)]];
    }
    const { namespace, name } = item.record;
    const [key, set] = item.kind === 'deployment' ? [k.deployment(namespace, name), k.deployments] : [k.service(namespace, name), k.services];
    return [[`v ${key}`, sum], [`s ${set} ${objectKey(namespace, name)}`, '1']];
  }

  /** The @token of the last write, or undefined when there is none. */
  async readToken(): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.desiredChecksums, '@token')) ?? undefined;
  }

  /** `owner`'s desired records as stored, with their exact values (deployments, namespaces, services, applied configs). */
  async readStored(owner: string): Promise<StoredItem[]> {
    const k = this.keys;
    const [deployments, namespaces, services, applied] = await Promise.all([this.redis.smembers(k.deployments), this.redis.hgetall(k.namespaces), this.redis.smembers(k.services), this.redis.hgetall(k.configsApplied)]);
    const out: StoredItem[] = [];
    const strings = async (members: string[], key: (ns: string, name: string) => string) => {
      const sorted = [...members].sort();
      if (sorted.length === 0) return [] as { raw: string }[];
      const raws = await this.redis.mget(sorted.map((m) => { const { namespace, name } = parseObjectKey(m); return key(namespace, name); }));
      return raws.filter((raw): raw is string => typeof raw === 'string').map((raw) => ({ raw }));
    };
    for (const { raw } of await strings(deployments, k.deployment)) {
      const record = parseStored<DeploymentRecord>(raw);
      if (record && ownerOf(record) === owner) out.push({ item: { kind: 'deployment', record }, raw });
    }
    for (const raw of Object.values(namespaces)) {
      const record = parseStored<NamespaceRecord>(raw);
      if (record && ownerOf(record) === owner) out.push({ item: { kind: 'namespace', record }, raw });
    }
    for (const { raw } of await strings(services, k.service)) {
      const record = parseStored<ServiceRecord>(raw);
      if (record && ownerOf(record) === owner) out.push({ item: { kind: 'service', record }, raw });
    }
    // Applied configs are the branch's own (previews never write configs-applied).
    const members = Object.keys(applied).sort();
    if (members.length > 0) {
      const pipe = this.redis.pipeline();
      for (const m of members) {
        const [namespace = '', kind = '', ...rest] = m.split('/');
        pipe.hget(k.config(namespace, kind as ConfigVersionRecord['kind'], rest.join('/')), applied[m]!);
      }
      for (const [, raw] of (await pipe.exec()) ?? []) {
        const record = parseStored<ConfigVersionRecord>(raw);
        if (record && typeof raw === 'string') out.push({ item: { kind: 'config', record }, raw });
      }
    }
    return out;
  }

  /** Applies `change` in one MULTI: records, set members, checksums, @token, @count and the source status. */
  async write(change: DesiredChange): Promise<void> {
    const k = this.keys;
    const tx = this.redis.multi();
    let services = false;
    for (const item of change.remove) {
      this.queueRemove(tx, item);
      if (item.kind === 'service') services = true;
    }
    if (change.resetChecksums) tx.del(k.desiredChecksums);
    else for (const item of change.remove) tx.hdel(k.desiredChecksums, ...this.checksOf(item, '').map(([f]) => f));
    for (const w of change.upsert) {
      this.queueUpsert(tx, w);
      if (w.item.kind === 'service') services = true;
      if (change.resetChecksums) continue;
      const checks = this.checksOf(w.item, checksum(w.json));
      // A changed config version names a new check; the old version's goes.
      if (w.before) {
        const now = new Set(checks.map(([f]) => f));
        const gone = this.checksOf(w.before, '').map(([f]) => f).filter((f) => !now.has(f));
        if (gone.length > 0) tx.hdel(k.desiredChecksums, ...gone);
      }
      tx.hset(k.desiredChecksums, ...checks.flat());
    }
    if (change.resetChecksums) {
      const fields = change.resetChecksums.flatMap(({ item, sum }) => this.checksOf(item, sum));
      for (let i = 0; i < fields.length; i += CHUNK) tx.hset(k.desiredChecksums, ...fields.slice(i, i + CHUNK).flat());
    }
    tx.hset(k.desiredChecksums, '@token', change.token, '@count', String(change.count));
    if (change.sourceStatus) tx.hset(k.source, 'status', JSON.stringify(change.sourceStatus));
    // The endpoints controller and the proxies act at once, but only when a service changed.
    if (services) tx.publish(k.servicesChannel, 'desired');
    await tx.exec();
  }

  private queueRemove(tx: ChainableCommander, item: DesiredItem): void {
    const k = this.keys;
    switch (item.kind) {
      case 'namespace':
        tx.hdel(k.namespaces, item.record.name);
        return;
      case 'deployment': {
        const { namespace, name } = item.record;
        tx.del(k.deployment(namespace, name)).srem(k.deployments, objectKey(namespace, name));
        return;
      }
      case 'service': {
        const { namespace, name } = item.record;
        tx.del(k.service(namespace, name), k.endpoints(namespace, name)).srem(k.services, objectKey(namespace, name));
        return;
      }
      case 'config': {
        // Its versions stay for the revisions that still use them; the config GC prunes them.
        const c = item.record;
        tx.hdel(k.configsApplied, `${c.namespace}/${c.kind}/${c.name}`);
        return;
      }
    }
  }

  private queueUpsert(tx: ChainableCommander, { item, json }: DesiredWrite): void {
    const k = this.keys;
    switch (item.kind) {
      case 'namespace':
        tx.hset(k.namespaces, item.record.name, json);
        return;
      case 'deployment': {
        const { namespace, name } = item.record;
        tx.set(k.deployment(namespace, name), json).sadd(k.deployments, objectKey(namespace, name));
        return;
      }
      case 'service': {
        const { namespace, name } = item.record;
        tx.set(k.service(namespace, name), json).sadd(k.services, objectKey(namespace, name));
        return;
      }
      case 'config': {
        // Versions are immutable (HSETNX): in the same MULTI as the deployments that refer to them.
        const c = item.record;
        const member = `${c.namespace}/${c.kind}/${c.name}`;
        tx.hsetnx(k.config(c.namespace, c.kind, c.name), c.version, json).sadd(k.configs, member).hset(k.configsApplied, member, c.version);
        return;
      }
    }
  }

  /** The checks that fail now, page by page of desired-checksums (each page one script call). */
  async findDrift(): Promise<DriftReport> {
    const k = this.keys;
    const failed: string[] = [];
    let cursor = '0';
    do {
      const [next, , ...bad] = await this.scripts.desiredDrift(k.desiredChecksums, cursor, PAGE);
      failed.push(...bad);
      cursor = String(next);
    } while (cursor !== '0');
    const [length, [count, token]] = await Promise.all([this.redis.hlen(k.desiredChecksums), this.redis.hmget(k.desiredChecksums, '@count', '@token')]);
    const bookkeeping = (count !== null ? 1 : 0) + (token !== null ? 1 : 0);
    return { failed: [...new Set(failed)], checks: length - bookkeeping, ...(count !== null ? { count: Number(count) } : {}), ...(token !== null ? { token } : {}) };
  }
}
