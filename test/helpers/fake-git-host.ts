/**
 * A small Git-host API for tests: the GitHub/Gitea and GitLab REST calls Gantry makes (commit
 * statuses, pull-request comments and merge-request notes), served over real HTTP under any base
 * path (/api/v3, /api/v1, /api/v4...), checking the token the way the host would, and recording
 * every call so tests can assert what was reported.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeHostKind = 'github' | 'gitea' | 'gitlab';

export interface HostCall {
  method: string;
  /** Path after the API base, e.g. /repos/acme/shop/statuses/<sha>. */
  path: string;
  authorized: boolean;
  body: Record<string, unknown> | undefined;
  status: number;
}

export interface HostStatus {
  repo: string;
  sha: string;
  context: string;
  /** GitHub's words (GitLab's "failed" is reported as "failure"). */
  state: string;
  description: string;
}

export interface HostComment {
  id: number;
  repo: string;
  pr: number;
  body: string;
  /** Bodies in order: the first from the POST, then one per edit. */
  versions: string[];
}

export interface FakeGitHost {
  /** Base URL including `basePath`. */
  url: string;
  readonly calls: HostCall[];
  readonly statuses: HostStatus[];
  readonly comments: Map<number, HostComment>;
  /** As if someone deleted the comment on the host. */
  deleteComment(id: number): void;
  close(): Promise<void>;
}

function authorized(kind: FakeHostKind, req: IncomingMessage, token: string): boolean {
  if (kind === 'gitlab') return req.headers['private-token'] === token;
  return req.headers.authorization === (kind === 'github' ? `Bearer ${token}` : `token ${token}`);
}

export async function startFakeGitHost(opts: { kind: FakeHostKind; token: string; basePath?: string }): Promise<FakeGitHost> {
  const calls: HostCall[] = [];
  const statuses: HostStatus[] = [];
  const comments = new Map<number, HostComment>();
  let nextId = 1000;
  const base = opts.basePath ?? (opts.kind === 'github' ? '/api/v3' : opts.kind === 'gitea' ? '/api/v1' : '/api/v4');

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!).slice(base.length);
      let body: Record<string, unknown> | undefined;
      try {
        body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      } catch {
        body = undefined;
      }
      const ok = authorized(opts.kind, req, opts.token);
      const send = (status: number, json: unknown) => {
        calls.push({ method: req.method ?? 'GET', path, authorized: ok, body, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (!ok) return send(401, { message: 'Bad credentials' });
      const text = (k: string) => (typeof body?.[k] === 'string' ? (body[k] as string) : '');
      let m: RegExpExecArray | null;
      if (req.method === 'POST' && (m = /^\/(?:repos\/(.+\/.+)|projects\/([^/]+))\/statuses\/([0-9a-f]{40})$/.exec(path))) {
        const state = text('state') === 'failed' ? 'failure' : text('state');
        statuses.push({ repo: m[1] ?? m[2]!, sha: m[3]!, context: text('context') || text('name'), state, description: text('description') });
        return send(201, { id: nextId++, state: text('state') });
      }
      const create = (repo: string, pr: number) => {
        const c = { id: nextId++, repo, pr: pr, body: text('body'), versions: [text('body')] };
        comments.set(c.id, c);
        return send(201, { id: c.id, body: c.body });
      };
      const update = (id: number) => {
        const c = comments.get(id);
        if (!c) return send(404, { message: 'Not Found' });
        c.body = text('body');
        c.versions.push(c.body);
        return send(200, { id, body: c.body });
      };
      if (req.method === 'POST' && (m = /^\/repos\/(.+\/.+)\/issues\/(\d+)\/comments$/.exec(path))) return create(m[1]!, Number(m[2]));
      if (req.method === 'PATCH' && (m = /^\/repos\/.+\/.+\/issues\/comments\/(\d+)$/.exec(path))) return update(Number(m[1]));
      if (req.method === 'POST' && (m = /^\/projects\/([^/]+)\/merge_requests\/(\d+)\/notes$/.exec(path))) return create(m[1]!, Number(m[2]));
      if (req.method === 'PUT' && (m = /^\/projects\/[^/]+\/merge_requests\/\d+\/notes\/(\d+)$/.exec(path))) return update(Number(m[1]));
      return send(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${base}`,
    calls,
    statuses,
    comments,
    deleteComment: (id) => void comments.delete(id),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
