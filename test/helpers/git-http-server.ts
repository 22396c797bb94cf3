/**
 * A real git smart-HTTP server for tests: node:http in front of `git http-backend` run as a
 * CGI program, serving every repository under `projectRoot` (e.g. <root>/repo.git is at
 * <url>/repo.git). Optional Basic auth: with `token`, only requests whose password equals
 * it are served, as GitHub does with `x-access-token:<token>`.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

export interface GitHttpServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Requests received so far, including rejected ones. */
  readonly requests: number;
  close(): Promise<void>;
}

export async function startGitHttpServer(opts: { projectRoot: string; token?: string }): Promise<GitHttpServer> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const user = authorize(req, opts.token);
    if (user === false) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    runBackend(req, res, opts.projectRoot, user);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** The authenticated user name ('' if no auth is required), or false to reject. */
function authorize(req: IncomingMessage, token: string | undefined): string | false {
  if (token === undefined) return '';
  const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match) return false;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0 || decoded.slice(colon + 1) !== token) return false;
  return decoded.slice(0, colon) || 'token';
}

function runBackend(req: IncomingMessage, res: ServerResponse, projectRoot: string, user: string): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: projectRoot,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
  };
  if (user) env.REMOTE_USER = user;
  // Without CONTENT_LENGTH http-backend reads the body to EOF, which suits chunked requests.
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  // http-backend inflates gzip request bodies itself when told about them.
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = String(req.headers['git-protocol']);

  const child = spawn(HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.on('error', () => {}); // the backend may exit before reading the whole body
  req.pipe(child.stdin);

  let head = Buffer.alloc(0);
  let headersSent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const parsed = parseCgiHead(head);
    if (!parsed) return;
    res.writeHead(parsed.status, parsed.headers);
    headersSent = true;
    if (parsed.body.length) res.write(parsed.body);
  });
  child.on('error', (err) => fail(`spawn ${HTTP_BACKEND}: ${err.message}`));
  child.on('close', (code) => {
    if (headersSent) res.end();
    else fail(`git http-backend exited ${code} without headers: ${stderr}`);
  });

  function fail(message: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(`${message}\n`);
  }
}

/** Splits a CGI response into status, headers and the start of the body; null until the blank line arrives. */
function parseCgiHead(buf: Buffer): { status: number; headers: Record<string, string>; body: Buffer } | null {
  const crlf = buf.indexOf('\r\n\r\n');
  const lf = buf.indexOf('\n\n');
  let end: number;
  let sepLength: number;
  if (crlf >= 0 && (lf < 0 || crlf < lf)) [end, sepLength] = [crlf, 4];
  else if (lf >= 0) [end, sepLength] = [lf, 2];
  else return null;

  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of buf.subarray(0, end).toString('latin1').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers, body: buf.subarray(end + sepLength) };
}
