import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
// Sets the API tokens in the environment every spawned gantry process inherits.
import './api-auth.ts';

export const GANTRY_BIN = fileURLToPath(new URL('../../bin/gantry.js', import.meta.url));

/** A `gantry` command running as its own process, as users run it. */
export interface GantryProcess {
  child: ChildProcess;
  output(): string;
  /** Sends the signal and resolves with the exit code once the process is gone. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function spawnGantry(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): GantryProcess {
  const child = spawn(process.execPath, [GANTRY_BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs a gantry command to completion. */
export async function runGantry(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [GANTRY_BIN, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}
