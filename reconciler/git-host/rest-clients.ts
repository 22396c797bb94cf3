import {
  DEFAULT_API_URLS,
  DEFAULT_GIT_HOST_TOKEN_ENV,
  GitHostError,
  hostRequest,
  idOf,
  oneLine,
  type CommitStatus,
  type GitHostClient,
  type GitHostConfig,
  type GitHostKind,
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
 */

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
  };
}
