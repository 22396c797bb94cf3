import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

/**
 * Loads the Lua scripts of state/lua/ (`<name>-<numberOfKeys>.lua`, each with an
 * input/output header) and defines them as commands on a connection, as BullMQ does.
 * ioredis sends EVALSHA and falls back to EVAL, so a restarted Redis needs nothing from us.
 */

const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'lua');

interface ScriptSource {
  name: string;
  numberOfKeys: number;
  lua: string;
}

let sources: ScriptSource[] | undefined;
function loadSources(): ScriptSource[] {
  sources ??= readdirSync(LUA_DIR)
    .filter((f) => f.endsWith('.lua'))
    .map((f) => {
      const m = /^(.*)-(\d+)\.lua$/.exec(f);
      if (!m) throw new Error(`Lua script name must be <name>-<keys>.lua: ${f}`);
      const name = m[1]!.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
      return { name, numberOfKeys: Number(m[2]), lua: readFileSync(join(LUA_DIR, f), 'utf8') };
    });
  return sources;
}

export interface GantryScripts {
  createInstance(keys: [string, string, string, string], id: string, json: string): Promise<number>;
  bindInstance(keys: [string, string, string, string, string], expected: string, next: string, id: string, cpuMilli: number, memoryBytes: number, defaultMaxInstances: number): Promise<number>;
  deleteInstance(keys: [string, string, string, string, string, string], expected: string, id: string, cpuMilli: number, memoryBytes: number, bound: '0' | '1'): Promise<number>;
  adoptInstance(keys: [string, string, string, string, string, string], id: string, json: string, cpuMilli: number, memoryBytes: number): Promise<number>;
  compareAndSet(key: string, expected: string, next: string): Promise<number>;
  setStatusIfBound(keys: [string, string], node: string, uid: string, statusJson: string, channel: string, message: string): Promise<number>;
  deleteStatusIfMine(key: string, node: string): Promise<number>;
  heartbeat(key: string): Promise<number>;
}

const defined = new WeakSet<Redis>();

/** The scripts, callable on this connection. */
export function scripts(redis: Redis): GantryScripts {
  if (!defined.has(redis)) {
    for (const s of loadSources()) redis.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
    defined.add(redis);
  }
  const r = redis as unknown as Record<string, (...args: unknown[]) => Promise<number>>;
  return {
    createInstance: (keys, id, json) => r.createInstance!(...keys, id, json),
    bindInstance: (keys, expected, next, id, cpu, mem, maxInstances) => r.bindInstance!(...keys, expected, next, id, cpu, mem, maxInstances),
    deleteInstance: (keys, expected, id, cpu, mem, bound) => r.deleteInstance!(...keys, expected, id, cpu, mem, bound),
    adoptInstance: (keys, id, json, cpu, mem) => r.adoptInstance!(...keys, id, json, cpu, mem),
    compareAndSet: (key, expected, next) => r.compareAndSet!(key, expected, next),
    setStatusIfBound: (keys, node, uid, json, channel, message) => r.setStatusIfBound!(...keys, node, uid, json, channel, message),
    deleteStatusIfMine: (key, node) => r.deleteStatusIfMine!(key, node),
    heartbeat: (key) => r.heartbeat!(key),
  };
}
