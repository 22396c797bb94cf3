import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin', '/usr/local/bin'])) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return undefined;
}

/** The one-line hint for a machine that lacks redis-server. */
export const REDIS_INSTALL_HINT = 'redis-server not found: install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) or pass --redis URL';

/**
 * Installs Debian's redis-server when running as root on Debian or Ubuntu; returns its path or
 * throws with the install hint elsewhere.
 */
export function ensureRedisServer(log: (line: string) => void = () => {}): string {
  const found = findRedisServer();
  if (found) return found;
  const isDebian = existsSync('/etc/debian_version');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isDebian || !isRoot) throw new Error(REDIS_INSTALL_HINT);
  log('redis-server is not installed: installing Debian\'s redis-server with apt-get (one time)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'ignore', env });
  const installed = findRedisServer();
  if (!installed) throw new Error(REDIS_INSTALL_HINT);
  return installed;
}

export interface RedisServerHandle {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  dir: string;
  port?: number;
  binary?: string;
  /** `requirepass`: clients must AUTH; the URL carries it. Written to a 0600 config file, never on argv. */
  password?: string;
  /** The append-only file as well as snapshots (what survives a crash; `gantry up` turns it on). */
  appendOnly?: boolean;
}

/**
 * Starts a private redis-server on a free loopback port, persisting under `dir`. Its settings go
 * in `<dir>/redis.conf` (mode 0600), so that a password never shows on a command line.
 */
export async function startRedisServer(opts: RedisServerOptions): Promise<RedisServerHandle> {
  mkdirSync(opts.dir, { recursive: true });
  const binary = opts.binary ?? findRedisServer();
  if (!binary) throw new Error(REDIS_INSTALL_HINT);
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const conf = join(opts.dir, 'redis.conf');
    const settings = [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${JSON.stringify(opts.dir)}`,
      'save 60 1',
      `appendonly ${opts.appendOnly ? 'yes' : 'no'}`,
      'appendfsync everysec',
      'daemonize no',
      'protected-mode yes',
      'loglevel warning',
      ...(opts.password ? [`requirepass ${JSON.stringify(opts.password)}`] : []),
    ];
    writeFileSync(conf, `${settings.join('\n')}\n`, { mode: 0o600 });
    chmodSync(conf, 0o600);
    const child = spawn(binary, [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const ready = await waitForPort(port, child);
    if (ready) {
      return {
        url: opts.password ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}` : `redis://127.0.0.1:${port}`,
        port,
        process: child,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    child.kill('SIGKILL');
    if (opts.port !== undefined || attempt >= 3) throw new Error(`redis-server did not start on port ${port}: ${output.trim().split('\n').pop() ?? ''}`);
  }
}

async function waitForPort(port: number, child: ChildProcess): Promise<boolean> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}
