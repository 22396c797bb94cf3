import { open, readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { followContainerLogs, readContainerLogs } from './docker-logs.ts';
import { logPath } from './instance-dir.ts';
import type { LocalInstance } from './local-instance.ts';
import { lastLines } from './log-file.ts';

/**
 * The agent's log endpoint, for both runtimes:
 *
 *   GET /logs/<instanceId>?tail=N&follow=1&container=NAME  -> text/plain
 *
 * Logs stay on the node (files for processes, the engine for containers); the reconciler's API
 * proxies `/api/v1/instances/:id/logs` here, as the Kubernetes API server does with the kubelet.
 * `container` defaults to the instance's first container. With `follow`, new output is streamed
 * until the client disconnects or the instance stops running here (a restarted container is
 * followed on). An instance this node does not run is a 404 with a JSON `{ error }`.
 *
 * Only the reconciler may ask: a request must carry `Authorization: Bearer <the cluster's logs
 * credential>` (kept in Redis, state/cluster-secret.ts), else 401. At most `maxFollowers`
 * followers at once (429 beyond), and a follower that does not read is not fed: new output is read
 * in chunks only while less than `maxBufferedBytes` waits in its connection.
 */

export interface LogServerOptions {
  /** The node address (the one instance ports are published on). */
  address: string;
  /** 0: any free port. */
  port: number;
  node: string;
  dataDir: string;
  /** The instance as this node runs it right now. */
  lookup(id: string): LocalInstance | undefined;
  docker(): Docker | undefined;
  log(line: string): void;
  /** How often a follower looks for new output (default 200 ms). */
  pollMs?: number;
  /** True when the presented bearer credential is the cluster's (AgentStore.logsCredential). */
  authorize(credential: string): Promise<boolean>;
  /** Followers at once (default 32). */
  maxFollowers?: number;
  /** Bytes waiting in one connection beyond which a follower is not fed more (default 1 MiB). */
  maxBufferedBytes?: number;
  /** GET /metrics: the agent's metrics in Prometheus text format (no credential: nothing in it is secret). */
  metrics?: () => Promise<{ contentType: string; body: string }>;
}

export const DEFAULT_MAX_FOLLOWERS = 32;
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
/** One read of new output at most (a follower catches up in steps, never in one big buffer). */
const READ_CHUNK_BYTES = 64 * 1024;

export interface LogServer {
  port: number;
  close(): Promise<void>;
}

export async function startLogServer(o: LogServerOptions): Promise<LogServer> {
  const followers = { count: 0 };
  const server = createServer((req, res) => {
    if (o.metrics && req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      o.metrics().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err) => {
          o.log(`metrics: ${err instanceof Error ? err.message : String(err)}`);
          sendJson(res, 500, { error: 'internal error collecting metrics' });
        },
      );
      return;
    }
    serve(o, req, res, followers).catch((err) => {
      o.log(`logs ${req.url}: ${err instanceof Error ? err.message : err}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error reading logs' });
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.address, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Followers would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

async function serve(o: LogServerOptions, req: IncomingMessage, res: ServerResponse, followers: { count: number }): Promise<void> {
  const credential = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (!credential || !(await o.authorize(credential))) {
    res.setHeader('www-authenticate', 'Bearer realm="gantry-agent"');
    return sendJson(res, 401, { error: 'the logs of this node are served to the reconciler only' });
  }
  const url = new URL(req.url ?? '/', 'http://agent');
  const match = /^\/logs\/([^/]+)$/.exec(url.pathname);
  if (!match) return sendJson(res, 404, { error: `no route ${url.pathname}; use GET /logs/<instanceId>` });
  if (req.method !== 'GET') return sendJson(res, 405, { error: 'only GET' });
  const id = decodeURIComponent(match[1]!);
  const tailParam = url.searchParams.get('tail');
  if (tailParam !== null && !/^\d+$/.test(tailParam)) return sendJson(res, 400, { error: `tail must be a non-negative integer, got ${JSON.stringify(tailParam)}` });
  const tail = tailParam === null ? undefined : Number(tailParam);
  const follow = ['1', 'true'].includes(url.searchParams.get('follow') ?? '');
  if (follow && followers.count >= (o.maxFollowers ?? DEFAULT_MAX_FOLLOWERS)) return sendJson(res, 429, { error: `node ${o.node} serves ${followers.count} followers already; try again later` });
  const inst = o.lookup(id);
  if (!inst) return sendJson(res, 404, { error: `instance ${id} is not on node ${o.node}` });
  const wanted = url.searchParams.get('container') ?? undefined;
  const target = inst.logTarget(wanted);
  if (!target) return sendJson(res, 404, { error: `instance ${id} has no container ${wanted} (it has ${inst.containerNames().join(', ')})` });

  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  // Flush the headers now: a follower may wait a long time for the first line.
  res.flushHeaders();
  const aborted = new AbortController();
  res.once('close', () => aborted.abort());
  // A follower that went away mid-write is not an error of the agent's.
  res.on('error', () => aborted.abort());
  const stillHere = () => !aborted.signal.aborted && o.lookup(id) === inst && inst.isActive();
  const f: Follow = { res, tail, follow, signal: aborted.signal, stillHere, pollMs: o.pollMs ?? 200, maxBufferedBytes: o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES };
  const file = logPath(inst.dir, target.name);
  if (follow) followers.count++;
  try {
    if (target.docker) await serveDocker(f, file, () => inst.logTarget(target.name)?.containerId, o.docker);
    else await serveFile(f, file);
  } finally {
    if (follow) followers.count--;
  }
  res.end();
}

interface Follow {
  res: ServerResponse;
  tail?: number;
  follow: boolean;
  signal: AbortSignal;
  /** False once the client left or the instance stopped (or was replaced) on this node. */
  stillHere(): boolean;
  pollMs: number;
  maxBufferedBytes: number;
}

/** A process's log file (and its rotated part); following polls its size, which survives copy-truncate rotation. */
async function serveFile(f: Follow, file: string): Promise<void> {
  let offset = await writeFileTail(f, file);
  while (f.follow) {
    if (!(await pause(f))) return;
    const active = f.stillHere();
    // A reader slower than the log: wait for it to take what it has before reading more.
    if (f.res.writableLength >= f.maxBufferedBytes) {
      if (!active) return;
      continue;
    }
    offset = await writeNewBytes(f.res, file, offset, f.maxBufferedBytes - f.res.writableLength);
    // The last read comes after the instance stopped, so its final lines are not lost.
    if (!active) return;
  }
}

/**
 * A Docker container's output from the engine while it exists; before the first one and between
 * restarts, the lines saved from ended containers. Followers move on to each new container.
 */
async function serveDocker(f: Follow, file: string, currentId: () => string | undefined, docker: () => Docker | undefined): Promise<void> {
  let followed: string | undefined;
  let first = true;
  for (;;) {
    const id = currentId();
    const engine = docker();
    if (id && engine && id !== followed) {
      followed = id;
      try {
        if (!f.follow) f.res.write(await readContainerLogs(engine, id, f.tail));
        // Later containers of a restart loop are shown whole, from their first line.
        else await followContainerLogs(engine, id, f.res, first ? f.tail : undefined, f.signal, f.maxBufferedBytes);
      } catch {
        // Gone between the lookup and the request: its lines are in the file now.
        if (first) await writeFileTail(f, file);
      }
      first = false;
    } else if (first) {
      await writeFileTail(f, file);
      first = false;
    }
    if (!f.follow || !f.stillHere()) return;
    if (!(await pause(f))) return;
  }
}

/** Writes the last `tail` lines of a log file (rotated part first); returns the offset reached. */
async function writeFileTail(f: Follow, file: string): Promise<number> {
  const [older, current] = await Promise.all([readOptional(`${file}.1`), readOptional(file)]);
  const text = older.toString('utf8') + current.toString('utf8');
  f.res.write(f.tail === undefined ? text : lastLines(text, f.tail));
  return current.length;
}

/** Writes what the file gained since `offset`, at most `room` bytes (in chunks); the new offset. */
async function writeNewBytes(res: ServerResponse, file: string, offset: number, room: number): Promise<number> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    return offset;
  }
  // Truncated by rotation: what follows starts at the beginning of the file.
  if (size < offset) offset = 0;
  if (size === offset) return offset;
  const fh = await open(file, 'r');
  try {
    let at = offset;
    const end = Math.min(size, offset + Math.max(room, READ_CHUNK_BYTES));
    while (at < end) {
      const buf = Buffer.alloc(Math.min(READ_CHUNK_BYTES, end - at));
      const { bytesRead } = await fh.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      res.write(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return at;
  } finally {
    await fh.close();
  }
}

async function readOptional(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch {
    return Buffer.alloc(0);
  }
}

/** Waits one poll period; false when the client went away meanwhile. */
function pause(f: Follow): Promise<boolean> {
  return new Promise((resolve) => {
    if (f.signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      f.signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, f.pollMs);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    f.signal.addEventListener('abort', onAbort, { once: true });
  });
}

function sendJson(res: ServerResponse, status: number, body: { error: string }): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
