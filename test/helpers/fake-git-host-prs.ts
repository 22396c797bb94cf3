/**
 * The fake Git host (fake-git-host.ts) plus the reads that decide whether a pull request may run a
 * preview: the pull request itself, its label events and people's access, in the shapes of
 * GitHub, Gitea and GitLab. A front server answers those from what the test sets (`setPull`,
 * `addLabel`, `setAccess`) and passes every other call (statuses, comments) to the fake host,
 * recording all of them in `calls`.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeGitHost, type FakeGitHost, type FakeHostKind, type HostCall } from './fake-git-host.ts';

export type Access = 'none' | 'read' | 'triage' | 'write' | 'maintain' | 'admin';

export interface FakePull {
  /** owner/name, or the GitLab project id. */
  repo: string;
  number: number;
  state: 'open' | 'closed' | 'merged';
  headSha: string;
  headRef: string;
  /** owner/name or project id of the head's repository; null: a deleted fork. */
  headRepo: string | null;
  baseRepo: string;
  author: string;
  /** GitHub only. */
  authorAssociation?: string;
  labels: string[];
}

export interface FakeGitHostWithPulls extends Omit<FakeGitHost, 'calls'> {
  readonly calls: HostCall[];
  setPull(pull: FakePull): void;
  pull(repo: string, n: number): FakePull | undefined;
  /** As if `by` added (or removed) the label on the host: the label list and an event. */
  addLabel(repo: string, n: number, label: string, by: string): void;
  removeLabel(repo: string, n: number, label: string, by: string): void;
  /** `user`'s access to `repo` (default none). */
  setAccess(repo: string, user: string, access: Access): void;
  /** GitLab names users by id: the id of a login (made up the first time). */
  userId(login: string): number;
}

const GITLAB_LEVEL: Record<Access, number> = { none: 0, read: 10, triage: 20, write: 30, maintain: 40, admin: 50 };
const GITEA_PERMISSION: Record<Access, string> = { none: 'none', read: 'read', triage: 'read', write: 'write', maintain: 'write', admin: 'admin' };
const GITHUB_PERMISSION: Record<Access, string> = { none: 'none', read: 'read', triage: 'read', write: 'write', maintain: 'write', admin: 'admin' };

function authorized(kind: FakeHostKind, req: IncomingMessage, token: string): boolean {
  if (kind === 'gitlab') return req.headers['private-token'] === token;
  return req.headers.authorization === (kind === 'github' ? `Bearer ${token}` : `token ${token}`);
}

export async function startFakeGitHostWithPulls(opts: { kind: FakeHostKind; token: string; basePath?: string }): Promise<FakeGitHostWithPulls> {
  const inner = await startFakeGitHost(opts);
  const base = new URL(inner.url).pathname;
  const calls: HostCall[] = [];
  const pulls = new Map<string, FakePull>();
  const events = new Map<string, { id: number; action: 'add' | 'remove'; label: string; by: string; at: string }[]>();
  const access = new Map<string, Access>();
  const ids = new Map<string, number>();
  let nextEvent = 5000;
  const key = (repo: string, n: number) => `${repo}#${n}`;
  const userId = (login: string) => {
    if (!ids.has(login)) ids.set(login, 100 + ids.size);
    return ids.get(login)!;
  };
  const loginOf = (id: number) => [...ids].find(([, v]) => v === id)?.[0];
  const user = (login: string) => (opts.kind === 'gitlab' ? { id: userId(login), username: login } : { id: userId(login), login });

  function pullJson(p: FakePull): unknown {
    if (opts.kind === 'gitlab') {
      return {
        iid: p.number,
        state: p.state === 'open' ? 'opened' : p.state,
        sha: p.headSha,
        source_branch: p.headRef,
        source_project_id: p.headRepo === null ? null : Number(p.headRepo),
        target_project_id: Number(p.baseRepo),
        author: user(p.author),
        labels: p.labels,
      };
    }
    return {
      number: p.number,
      state: p.state === 'open' ? 'open' : 'closed',
      merged: p.state === 'merged',
      merged_at: p.state === 'merged' ? new Date().toISOString() : null,
      user: user(p.author),
      ...(opts.kind === 'github' && p.authorAssociation ? { author_association: p.authorAssociation } : {}),
      labels: p.labels.map((name, i) => ({ id: i + 1, name })),
      head: { ref: p.headRef, sha: p.headSha, repo: p.headRepo === null ? null : { full_name: p.headRepo } },
      base: { ref: 'main', repo: { full_name: p.baseRepo } },
    };
  }

  function eventsJson(repo: string, n: number): unknown[] {
    const list = events.get(key(repo, n)) ?? [];
    if (opts.kind === 'gitlab') return list.map((e) => ({ id: e.id, user: user(e.by), created_at: e.at, resource_type: 'MergeRequest', resource_id: n, label: { id: 1, name: e.label }, action: e.action }));
    if (opts.kind === 'gitea') return list.map((e) => ({ id: e.id, type: 'label', body: e.action === 'add' ? '1' : '', user: user(e.by), label: { id: 1, name: e.label }, created_at: e.at }));
    return list.map((e) => ({ id: e.id, event: e.action === 'add' ? 'labeled' : 'unlabeled', actor: user(e.by), label: { name: e.label, color: 'ededed' }, created_at: e.at }));
  }

  function accessJson(repo: string, who: string): { status: number; json: unknown } {
    const a = access.get(`${repo} ${who}`) ?? 'none';
    if (opts.kind === 'gitlab') return a === 'none' ? { status: 404, json: { message: '404 Not found' } } : { status: 200, json: { id: userId(who), username: who, access_level: GITLAB_LEVEL[a] } };
    if (opts.kind === 'gitea') return { status: 200, json: { permission: GITEA_PERMISSION[a], role_name: GITEA_PERMISSION[a] } };
    return { status: 200, json: { permission: GITHUB_PERMISSION[a], role_name: a === 'none' ? 'none' : a, user: user(who) } };
  }

  /** The pull-request reads, or undefined for a call the fake host answers. */
  function answer(method: string, path: string, query: URLSearchParams): { status: number; json: unknown } | undefined {
    if (method !== 'GET') return undefined;
    const page = Number(query.get('page') ?? '1');
    const paged = (list: unknown[], per: number) => ({ status: 200, json: list.slice((page - 1) * per, page * per) });
    let m: RegExpExecArray | null;
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/pulls\/(\d+)$/.exec(path)) || (m = /^\/projects\/([^/]+)\/merge_requests\/(\d+)$/.exec(path))) {
      const p = pulls.get(key(m[1]!, Number(m[2])));
      return p ? { status: 200, json: pullJson(p) } : { status: 404, json: { message: 'Not Found' } };
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/(events|timeline)$/.exec(path)) || (m = /^\/projects\/([^/]+)\/merge_requests\/(\d+)\/(resource_label_events)$/.exec(path))) {
      const wanted = opts.kind === 'github' ? 'events' : opts.kind === 'gitea' ? 'timeline' : 'resource_label_events';
      if (m[3] !== wanted) return { status: 404, json: { message: 'Not Found' } };
      return paged(eventsJson(m[1]!, Number(m[2])), Number(query.get('per_page') ?? query.get('limit') ?? '30'));
    }
    if ((m = /^\/repos\/([^/]+\/[^/]+)\/collaborators\/([^/]+)\/permission$/.exec(path))) return accessJson(m[1]!, m[2]!);
    if ((m = /^\/projects\/([^/]+)\/members\/all\/(\d+)$/.exec(path))) {
      const login = loginOf(Number(m[2]));
      return login ? accessJson(m[1]!, login) : { status: 404, json: { message: '404 Not found' } };
    }
    return undefined;
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const path = decodeURIComponent(url.pathname).slice(base.length);
        const raw = Buffer.concat(chunks);
        let body: Record<string, unknown> | undefined;
        try {
          body = raw.length ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : undefined;
        } catch {
          body = undefined;
        }
        const method = req.method ?? 'GET';
        const ok = authorized(opts.kind, req, opts.token);
        const own = ok ? answer(method, path, url.searchParams) : { status: 401, json: { message: 'Bad credentials' } };
        let status: number;
        let text: string;
        if (own) {
          status = own.status;
          text = JSON.stringify(own.json);
        } else {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
          const r = await fetch(`${inner.url}${url.pathname.slice(base.length)}${url.search}`, { method, headers, ...(raw.length ? { body: new Uint8Array(raw) } : {}) });
          status = r.status;
          text = await r.text();
        }
        calls.push({ method, path, authorized: ok, body, status });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(text);
      })().catch((err: unknown) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: String(err) }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const label = (repo: string, n: number, name: string, by: string, action: 'add' | 'remove') => {
    const p = pulls.get(key(repo, n));
    if (!p) throw new Error(`no pull request ${key(repo, n)}`);
    p.labels = action === 'add' ? [...new Set([...p.labels, name])] : p.labels.filter((l) => l !== name);
    const list = events.get(key(repo, n)) ?? [];
    list.push({ id: nextEvent++, action, label: name, by, at: new Date().toISOString() });
    events.set(key(repo, n), list);
  };

  return {
    url: `http://127.0.0.1:${port}${base}`,
    calls,
    statuses: inner.statuses,
    comments: inner.comments,
    deleteComment: (id) => inner.deleteComment(id),
    setPull: (p) => void pulls.set(key(p.repo, p.number), { ...p, labels: [...p.labels] }),
    pull: (repo, n) => pulls.get(key(repo, n)),
    addLabel: (repo, n, name, by) => label(repo, n, name, by, 'add'),
    removeLabel: (repo, n, name, by) => label(repo, n, name, by, 'remove'),
    setAccess: (repo, who, a) => void access.set(`${repo} ${who}`, a),
    userId,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await inner.close();
    },
  };
}
