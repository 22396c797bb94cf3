import { readFileSync, readdirSync } from 'node:fs';

/**
 * Process liveness from /proc (Linux). An agent must tell "my old process is still running"
 * from "that pid now belongs to someone else", and a zombie from a live process: orphans are
 * reparented to PID 1, which in some containers reaps them late or never.
 */

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22: start time in clock ticks since boot; with the pid it names one process forever. */
  startTime: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 (comm) is in parentheses and may itself contain spaces or ')': split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3.
  return { state: rest[0]!, ppid: Number(rest[1]), pgrp: Number(rest[2]), startTime: Number(rest[19]) };
}

const hasProc = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

/** The start time of a process (field 22 of /proc/<pid>/stat), or undefined when unknown. */
export function processStartTime(pid: number): number | undefined {
  return readStat(pid)?.startTime;
}

/**
 * True when `pid` runs and is not a zombie; with `startTime` it must also be the same process we
 * started (a recycled pid has a different start time).
 */
export function isProcessAlive(pid: number, startTime?: number): boolean {
  if (!hasProc) return signalZero(pid);
  const stat = readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** True while any non-zombie process remains in process group `pgid`. */
export function isGroupAlive(pgid: number): boolean {
  if (!signalZero(-pgid)) return false;
  if (!hasProc) return true;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/**
 * True once `pid` has a live child that exec'd a program of its own. A child that was forked but
 * has not exec'd yet still has its parent's command line.
 */
export function hasExecedChild(pid: number): boolean {
  if (!hasProc) return true;
  const parentCmdline = readCmdline(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (!stat || stat.ppid !== pid || stat.state === 'Z') continue;
    const cmdline = readCmdline(Number(entry));
    if (cmdline !== undefined && cmdline !== parentCmdline) return true;
  }
  return false;
}

function readCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return undefined;
  }
}

/** kill(pid, 0): does something with this pid (or group, when negative) exist? */
function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends a signal to a process group, ignoring "no such process". */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
