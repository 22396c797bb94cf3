import {
  ACCESS_LEVELS,
  DEFAULT_API_URLS,
  DEFAULT_GIT_HOST_TOKEN_ENV,
  GitHostError,
  hostRequest,
  idOf,
  oneLine,
  type AccessLevel,
  type CommitStatus,
  type GitHostClient,
  type GitHostConfig,
  type GitHostKind,
  type HostUser,
  type LabelEvent,
} from './git-host-client.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * The three REST dialects. GitHub and Gitea share theirs:
 *   POST  /repos/{owner}/{repo}/statuses/{sha}          {state, context, description, target_url}
 *   POST  /repos/{owner}/{repo}/issues/{n}/comments     {body} -> {id}
 *   PATCH /repos/{owner}/{repo}/issues/comments/{id}    {body}
 * (GitHub authenticates with `Authorization: Bearer`, Gitea with `Authorization: token`.) GitLab:
 *   POST  /projects/{id}/statuses/{sha}                       {state: pending|success|failed, name, description}
 *   POST  /projects/{id}/merge_requests/{iid}/notes           {body} -> {id}
 *   PUT   /projects/{id}/merge_requests/{iid}/notes/{note_id} {body}
 * Reads that decide whether a pull request may run (pr-trust.ts), GitHub and Gitea:
 *   GET   /repos/{owner}/{repo}/pulls/{n}                   state, merged, head.sha, head.repo, base.repo, user, author_association (GitHub), labels
 *   GET   /repos/{owner}/{repo}/issues/{n}/events           GitHub: `labeled` events with label.name and actor
 *   GET   /repos/{owner}/{repo}/issues/{n}/timeline         Gitea: comments of type `label`, body "1" when added, with user
 *   GET   /repos/{owner}/{repo}/collaborators/{login}/permission  role_name / permission
 * GitLab:
 *   GET   /projects/{id}/merge_requests/{iid}                       state, sha, source_project_id, target_project_id, author, labels
 *   GET   /projects/{id}/merge_requests/{iid}/resource_label_events action add/remove, label.name, user
 *   GET   /projects/{id}/members/all/{user_id}                      access_level (inherited memberships included)
 */

/** Event lists are paged; this many pages at most are read (the newest events are on the last). */
const MAX_PAGES = 20;

const repoPath = (repo: string) => repo.split('/').map(encodeURIComponent).join('/');

export function createGitHostClient(cfg: GitHostConfig): GitHostClient {
  const base = (cfg.apiUrl ?? DEFAULT_API_URLS[cfg.kind] ?? '').replace(/\/+$/, '');
  if (!/^https?:\/\//i.test(base)) throw new GitHostError('GIT_HOST_NOT_CONFIGURED', `--git-host ${cfg.kind} needs --git-host-api (the API base URL, e.g. https://gitea.example.com/api/v1)`);
  const tokenEnv = cfg.tokenEnv ?? DEFAULT_GIT_HOST_TOKEN_ENV;
  const token = (): string => {
    const t = process.env[tokenEnv];
    if (!t) throw new GitHostError('GIT_HOST_NOT_CONFIGURED', `no Git host token: set $${tokenEnv}`);
    return t;
  };
  const call = (kind: GitHostKind, method: string, path: string, body: unknown) => {
    const t = token();
    const auth: Record<string, string> =
      kind === 'github' ? { authorization: `Bearer ${t}`, 'x-github-api-version': '2022-11-28', accept: 'application/vnd.github+json' } : kind === 'gitea' ? { authorization: `token ${t}` } : { 'private-token': t };
    return hostRequest(method, `${base}${path}`, { auth, token: t, body });
  };
  const kind = cfg.kind;

  if (kind === 'gitlab') {
    const project = (repo: string) => `/projects/${encodeURIComponent(repo)}`;
    return {
      kind,
      async setStatus(repo, sha, s: CommitStatus) {
        const state = s.state === 'failure' ? 'failed' : s.state;
        const res = await call(kind, 'POST', `${project(repo)}/statuses/${encodeURIComponent(sha)}`, { state, name: s.context, description: oneLine(s.description, 255), ...(s.targetUrl ? { target_url: s.targetUrl } : {}) });
        if (res.status === 404) throw new GitHostError('GIT_HOST_NOT_FOUND', `project ${repo} or commit ${shortSha(sha)} not found`, 404);
      },
      async createComment(repo, pr, body) {
        const res = await call(kind, 'POST', `${project(repo)}/merge_requests/${pr}/notes`, { body });
        if (res.status === 404) throw new GitHostError('GIT_HOST_NOT_FOUND', `merge request !${pr} of project ${repo} not found`, 404);
        return idOf(res.json, 'create note');
      },
      async updateComment(repo, pr, id, body) {
        const res = await call(kind, 'PUT', `${project(repo)}/merge_requests/${pr}/notes/${encodeURIComponent(id)}`, { body });
        return res.status !== 404;
      },
      async getPullRequest(repo, pr) {
        const res = await call(kind, 'GET', `${project(repo)}/merge_requests/${pr}`, undefined);
        if (res.status === 404) return undefined;
        const what = `merge request !${pr} of project ${repo}`;
        const j = res.json;
        const state = str(j, 'state', what);
        const source = at(j, 'source_project_id');
        return {
          // "locked" is a merge in progress: not closed yet.
          state: state === 'merged' ? 'merged' : state === 'opened' || state === 'locked' ? 'open' : 'closed',
          headSha: str(j, 'sha', what),
          headRepo: typeof source === 'number' ? String(source) : null,
          baseRepo: String(num(j, 'target_project_id', what)),
          author: { login: str(j, 'author.username', what), id: num(j, 'author.id', what) },
          labels: names(at(j, 'labels'), (l) => (typeof l === 'string' ? l : at(l, 'name'))),
        };
      },
      async lastLabeled(repo, pr, label) {
        const events = await pages((page) => call(kind, 'GET', `${project(repo)}/merge_requests/${pr}/resource_label_events?per_page=100&page=${page}`, undefined), 100);
        return newest(events.filter((e) => at(e, 'action') === 'add' && sameLabel(at(e, 'label.name'), label)), 'user');
      },
      async accessOf(repo, user) {
        if (user.id === undefined) return 'none';
        const res = await call(kind, 'GET', `${project(repo)}/members/all/${user.id}`, undefined);
        if (res.status === 404) return 'none';
        const level = at(res.json, 'access_level');
        return typeof level === 'number' ? gitlabAccess(level) : 'none';
      },
    };
  }

  return {
    kind,
    async setStatus(repo, sha, s: CommitStatus) {
      const res = await call(kind, 'POST', `/repos/${repoPath(repo)}/statuses/${encodeURIComponent(sha)}`, { state: s.state, context: s.context, description: oneLine(s.description), ...(s.targetUrl ? { target_url: s.targetUrl } : {}) });
      if (res.status === 404) throw new GitHostError('GIT_HOST_NOT_FOUND', `repository ${repo} or commit ${shortSha(sha)} not found`, 404);
    },
    async createComment(repo, pr, body) {
      const res = await call(kind, 'POST', `/repos/${repoPath(repo)}/issues/${pr}/comments`, { body });
      if (res.status === 404) throw new GitHostError('GIT_HOST_NOT_FOUND', `pull request #${pr} of ${repo} not found`, 404);
      return idOf(res.json, 'create comment');
    },
    async updateComment(repo, _pr, id, body) {
      const res = await call(kind, 'PATCH', `/repos/${repoPath(repo)}/issues/comments/${encodeURIComponent(id)}`, { body });
      return res.status !== 404;
    },
    async getPullRequest(repo, pr) {
      const res = await call(kind, 'GET', `/repos/${repoPath(repo)}/pulls/${pr}`, undefined);
      if (res.status === 404) return undefined;
      const what = `pull request #${pr} of ${repo}`;
      const j = res.json;
      const headRepo = at(j, 'head.repo');
      const association = at(j, 'author_association');
      return {
        state: at(j, 'merged') === true || typeof at(j, 'merged_at') === 'string' ? 'merged' : str(j, 'state', what) === 'open' ? 'open' : 'closed',
        headSha: str(j, 'head.sha', what),
        headRepo: headRepo === null || headRepo === undefined ? null : str(headRepo, 'full_name', what),
        baseRepo: str(j, 'base.repo.full_name', what),
        author: user(at(j, 'user'), what),
        ...(typeof association === 'string' ? { authorAssociation: association.toUpperCase() } : {}),
        labels: names(at(j, 'labels'), (l) => at(l, 'name')),
      };
    },
    async lastLabeled(repo, pr, label) {
      if (kind === 'gitea') {
        const items = await pages((page) => call(kind, 'GET', `/repos/${repoPath(repo)}/issues/${pr}/timeline?limit=50&page=${page}`, undefined), 50);
        // A label comment's body is "1" when the label was added, empty when it was removed.
        return newest(items.filter((c) => at(c, 'type') === 'label' && at(c, 'body') === '1' && sameLabel(at(c, 'label.name'), label)), 'user');
      }
      const events = await pages((page) => call(kind, 'GET', `/repos/${repoPath(repo)}/issues/${pr}/events?per_page=100&page=${page}`, undefined), 100);
      return newest(events.filter((e) => at(e, 'event') === 'labeled' && sameLabel(at(e, 'label.name'), label)), 'actor');
    },
    async accessOf(repo, u) {
      const res = await call(kind, 'GET', `/repos/${repoPath(repo)}/collaborators/${encodeURIComponent(u.login)}/permission`, undefined);
      if (res.status === 404) return 'none';
      return accessName(at(res.json, 'role_name')) ?? accessName(at(res.json, 'permission')) ?? 'none';
    },
  };
}

function at(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function str(obj: unknown, path: string, what: string): string {
  const v = at(obj, path);
  if (typeof v !== 'string' || v.length === 0) throw new GitHostError('GIT_HOST_BAD_RESPONSE', `${what}: the response has no ${path}`);
  return v;
}

function num(obj: unknown, path: string, what: string): number {
  const v = at(obj, path);
  if (typeof v !== 'number') throw new GitHostError('GIT_HOST_BAD_RESPONSE', `${what}: the response has no ${path}`);
  return v;
}

function user(obj: unknown, what: string): HostUser {
  const id = at(obj, 'id');
  return { login: str(obj, 'login', what), ...(typeof id === 'number' ? { id } : {}) };
}

function names(list: unknown, name: (item: unknown) => unknown): string[] {
  return Array.isArray(list) ? list.map(name).filter((n): n is string => typeof n === 'string' && n.length > 0) : [];
}

/** Hosts compare label names without case (GitHub, Gitea) or keep them unique anyway. */
function sameLabel(name: unknown, label: string): boolean {
  return typeof name === 'string' && name.toLowerCase() === label.toLowerCase();
}

/** Every item of a paged list, page after page until a short one (at most MAX_PAGES). */
async function pages(get: (page: number) => Promise<{ status: number; json: unknown }>, perPage: number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let page = 1; page <= MAX_PAGES; page++) {
    const res = await get(page);
    if (res.status === 404 || !Array.isArray(res.json)) break;
    out.push(...res.json);
    if (res.json.length < perPage) break;
  }
  return out;
}

/** The event with the highest id (the latest), with the user under `userField`. */
function newest(events: unknown[], userField: string): LabelEvent | undefined {
  let best: { id: number; user: HostUser } | undefined;
  for (const e of events) {
    const id = at(e, 'id');
    const u = at(e, userField);
    const login = at(u, 'login') ?? at(u, 'username');
    if (typeof id !== 'number' || typeof login !== 'string') continue;
    const uid = at(u, 'id');
    if (!best || id > best.id) best = { id, user: { login, ...(typeof uid === 'number' ? { id: uid } : {}) } };
  }
  return best && { id: String(best.id), user: best.user };
}

function accessName(v: unknown): AccessLevel | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase();
  if (s === 'owner') return 'admin';
  return (ACCESS_LEVELS as readonly string[]).includes(s) ? (s as AccessLevel) : undefined;
}

/** GitLab's access levels: 10 Guest, 20 Reporter, 30 Developer, 40 Maintainer, 50 Owner (5: minimal access). */
function gitlabAccess(level: number): AccessLevel {
  if (level >= 50) return 'admin';
  if (level >= 40) return 'maintain';
  if (level >= 30) return 'write';
  if (level >= 20) return 'triage';
  if (level >= 10) return 'read';
  return 'none';
}
