import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { sep } from 'node:path';

/**
 * Processes running in this node's instance dirs, by instance id, found from /proc (Linux). Every
 * container process starts with its instance dir as cwd, so a process there that no local instance
 * owns (started by hand with Gantry's env, or left by a copy the agent lost track of) is a stray.
 * The agent's own children (exec probes) and its own process group are never listed.
 */

export interface InstanceProcess {
  pid: number;
  pgid: number;
}

export function processesByInstance(instancesRoot: string): Map<string, InstanceProcess[]> {
  const found = new Map<string, InstanceProcess[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  const ownGroup = statOf(process.pid)?.pgrp;
  const prefix = instancesRoot + sep;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      // A removed dir reads as "<path> (deleted)".
      const cwd = readlinkSync(`/proc/${pid}/cwd`).replace(/ \(deleted\)$/, '');
      if (!cwd.startsWith(prefix)) continue;
      const id = cwd.slice(prefix.length).split(sep)[0]!;
      const stat = statOf(pid);
      if (!stat || stat.state === 'Z' || stat.ppid === process.pid || stat.pgrp === ownGroup) continue;
      const list = found.get(id) ?? [];
      list.push({ pid, pgid: stat.pgrp });
      found.set(id, list);
    } catch {
      // gone meanwhile, or not ours to look at
    }
  }
  return found;
}

function statOf(pid: number): { state: string; ppid: number; pgrp: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}
