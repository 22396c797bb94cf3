/**
 * Repository identity across the URL forms a Git host puts in a webhook (clone URL, web URL, SSH
 * URL) and the one Gantry was configured with, pure. `https://user:tok@GitHub.com/Org/Repo.git/`,
 * `git@github.com:org/repo.git` and `ssh://git@github.com/org/repo` all become
 * `github.com/org/repo`: credentials, scheme, `.git` and case are dropped (GitHub, GitLab, Gitea
 * and Bitbucket treat paths case-insensitively). An http(s) port other than the default is kept.
 */
export function normalizeRepoUrl(raw: string): string | undefined {
  const url = raw.trim();
  if (!url) return undefined;
  let host: string;
  let path: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return undefined;
    }
    const web = u.protocol === 'http:' || u.protocol === 'https:';
    host = u.hostname + (web && u.port ? `:${u.port}` : '');
    try {
      path = decodeURIComponent(u.pathname);
    } catch {
      path = u.pathname;
    }
  } else {
    // scp-like syntax: [user@]host:path
    const m = /^(?:[^@/\s]+@)?([^:/\s]+):(.+)$/.exec(url);
    if (!m) return undefined;
    host = m[1]!;
    path = m[2]!;
  }
  path = path.replace(/^\/+|\/+$/g, '').replace(/\.git$/i, '').replace(/\/+$/g, '');
  if (!host || !path) return undefined;
  return `${host}/${path}`.toLowerCase();
}

/** True when any of `candidates` names the same repository as one of `tracked` (normalized). */
export function sameRepository(candidates: readonly string[], tracked: ReadonlySet<string>): boolean {
  return candidates.some((c) => {
    const n = normalizeRepoUrl(c);
    return n !== undefined && tracked.has(n);
  });
}
