import type { Redis } from 'ioredis';
import { parseStored } from './json.ts';
import type { Keys } from './keys.ts';
import type { ConfigKind, ConfigVersionRecord } from './records/config.ts';

/**
 * The versions of ConfigMaps and Secrets (records/config.ts): written by the reconciler with a
 * commit's desired state, read by agents when they start a container, pruned by the reconciler
 * when no deployment revision refers to them any more. Versions are immutable: writing one that
 * exists changes nothing.
 */
export class ConfigStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  private static member(r: { namespace: string; kind: ConfigKind; name: string }): string {
    return `${r.namespace}/${r.kind}/${r.name}`;
  }

  /** Stores versions not stored yet (HSETNX: the first writer of a version wins; they are equal). */
  async writeVersions(records: ConfigVersionRecord[]): Promise<void> {
    if (records.length === 0) return;
    const m = this.redis.multi();
    for (const r of records) {
      m.hsetnx(this.keys.config(r.namespace, r.kind, r.name), r.version, JSON.stringify(r));
      m.sadd(this.keys.configs, ConfigStore.member(r));
    }
    await m.exec();
  }

  /** One version, or undefined when it is not stored (never written, or pruned). */
  async readVersion(namespace: string, kind: ConfigKind, name: string, version: string): Promise<ConfigVersionRecord | undefined> {
    return parseStored<ConfigVersionRecord>(await this.redis.hget(this.keys.config(namespace, kind, name), version)) ?? undefined;
  }

  /** The versions the branch's applied commit holds, whole (for diffs, listings and GC). */
  async readApplied(): Promise<ConfigVersionRecord[]> {
    const applied = await this.redis.hgetall(this.keys.configsApplied);
    const entries = Object.entries(applied).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) return [];
    const m = this.redis.multi();
    for (const [member, version] of entries) m.hget(this.keyOf(member), version);
    const res = (await m.exec()) ?? [];
    return res.map(([, raw]) => parseStored<ConfigVersionRecord>(raw as string | null)).filter((r): r is ConfigVersionRecord => !!r);
  }

  /** The versions stored per object: "<ns>/<kind>/<name>" -> versions. */
  async listVersions(): Promise<Map<string, string[]>> {
    const members = (await this.redis.smembers(this.keys.configs)).sort();
    const out = new Map<string, string[]>();
    if (members.length === 0) return out;
    const m = this.redis.multi();
    for (const member of members) m.hkeys(this.keyOf(member));
    const res = (await m.exec()) ?? [];
    members.forEach((member, i) => out.set(member, ((res[i]?.[1] as string[] | undefined) ?? []).sort()));
    return out;
  }

  /**
   * Deletes every stored version not in `keep` ("<ns>/<kind>/<name>@<version>"). An object left
   * without versions stays in `configs` (a concurrent write may be adding one); listVersions
   * reports it with none, which is harmless. The caller computes `keep` from every revision that can still
   * run or be rolled back to, after listing (`listed`) what is stored.
   */
  async prune(keep: ReadonlySet<string>, listed?: Map<string, string[]>): Promise<number> {
    let pruned = 0;
    // Only what was listed when `keep` was computed: a version stored since is not judged here.
    for (const [member, versions] of listed ?? (await this.listVersions())) {
      const drop = versions.filter((v) => !keep.has(`${member}@${v}`));
      if (drop.length === 0) continue;
      await this.redis.hdel(this.keyOf(member), ...drop);
      pruned += drop.length;
    }
    return pruned;
  }

  private keyOf(member: string): string {
    const [namespace = '', kind = '', ...rest] = member.split('/');
    return this.keys.config(namespace, kind as ConfigKind, rest.join('/'));
  }
}
