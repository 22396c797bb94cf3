import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

/**
 * Loads the Lua scripts of state/lua/ (`<name>-<numberOfKeys>.lua`, each with an
 * input/output header) and defines them as commands on a connection, as BullMQ does.
 * `<name>-n.lua` takes a number of keys that varies per call (a batch): the caller passes it first.
 * ioredis sends EVALSHA and falls back to EVAL, so a restarted Redis needs nothing from us.
 */

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

interface ScriptSource {
  name: string;
  /** undefined: given on each call. */
  numberOfKeys?: number;
  lua: string;
}

let sources: ScriptSource[] | undefined;
function loadSources(): ScriptSource[] {
  sources ??= readdirSync(LUA_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((f) => {
      const m = /^(.*)-(\d+|n)\.lua$/.exec(f);
      if (!m) throw new Error(`Lua script name must be <name>-<keys>.lua or <name>-n.lua: ${f}`);
      const name = m[1]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      return { name, ...(m[2] === 'n' ? {} : { numberOfKeys: Number(m[2]) }), lua: readFileSync(join(LUA_DIR, f), 'utf8') };
    });
  return sources;
}

export interface GantryScripts {
  createInstance(keys: [string, string, string, string], id: string, json: string): Promise<number>;
  /** `keys`: pending-instances, then 5 per binding; `args`: the default maxInstances, then 6 per binding (see the script). */
  bindInstances(keys: string[], args: (string | number)[]): Promise<number[]>;
  deleteInstance(keys: [string, string, string, string, string, string, string], expected: string, id: string, cpuMilli: number, memoryBytes: number, bound: '0' | '1', node: string): Promise<number>;
  adoptInstance(keys: [string, string, string, string, string, string, string], id: string, json: string, cpuMilli: number, memoryBytes: number, node: string): Promise<number>;
  /** `keys`: deployment-instances, deployment-nodes, then instance:<id> per id; `ids` in the same order. */
  rebuildDeploymentNodes(keys: string[], ids: string[]): Promise<number>;
  /** `keys`: node-alloc:<node> each; 3 integers per key. */
  readNodeAllocs(keys: string[]): Promise<number[]>;
  compareAndSet(key: string, expected: string, next: string): Promise<number>;
  setStatusIfBound(keys: [string, string, string], node: string, uid: string, statusJson: string, channel: string, message: string): Promise<number>;
  deleteStatusIfMine(key: string, node: string): Promise<number>;
  heartbeat(key: string): Promise<number>;
  /** [next cursor, fields checked, ...fields whose value differs] (desired-store.ts). */
  desiredDrift(checksumsKey: string, cursor: string, count: number): Promise<[string, number, ...string[]]>;
}

const defined = new WeakSet<Redis>();

/** The scripts, callable on this connection. */
export function scripts(redis: Redis): GantryScripts {
  if (!defined.has(redis)) {
    for (const s of loadSources()) redis.defineCommand(s.name, s.numberOfKeys === undefined ? { lua: s.lua } : { numberOfKeys: s.numberOfKeys, lua: s.lua });
    defined.add(redis);
  }
  const r = redis as unknown as Record<string, (...args: unknown[]) => Promise<number>>;
  const batch = redis as unknown as Record<'bindInstances' | 'readNodeAllocs', (...args: unknown[]) => Promise<number[]>>;
  return {
    createInstance: (keys, id, json) => r.createInstance!(...keys, id, json),
    bindInstances: (keys, args) => batch.bindInstances(keys.length, ...keys, ...args),
    deleteInstance: (keys, expected, id, cpu, mem, bound, node) => r.deleteInstance!(...keys, expected, id, cpu, mem, bound, node),
    adoptInstance: (keys, id, json, cpu, mem, node) => r.adoptInstance!(...keys, id, json, cpu, mem, node),
    rebuildDeploymentNodes: (keys, ids) => r.rebuildDeploymentNodes!(keys.length, ...keys, ...ids),
    readNodeAllocs: (keys) => batch.readNodeAllocs(keys.length, ...keys),
    compareAndSet: (key, expected, next) => r.compareAndSet!(key, expected, next),
    setStatusIfBound: (keys, node, uid, json, channel, message) => r.setStatusIfBound!(...keys, node, uid, json, channel, message),
    deleteStatusIfMine: (key, node) => r.deleteStatusIfMine!(key, node),
    heartbeat: (key) => r.heartbeat!(key),
    desiredDrift: (key, cursor, count) => (r.desiredDrift!(key, cursor, count) as unknown as Promise<[string, number, ...string[]]>),
  };
}
