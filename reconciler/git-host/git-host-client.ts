import { GantryError, registerErrorClass } from '../../lib/errors/index.ts';
import { redact } from '../git/redact.ts';

/**
 * Reporting back to the Git host: commit statuses and one pull-request comment, over the host's
 * REST API. GitHub (and GitHub Enterprise at its own API URL), Gitea (GitHub's shapes under
 * /api/v1) and GitLab (statuses on a project, notes on a merge request) are supported. The token
 * is read from the environment at each call and never appears in errors or logs.
 */

export type GitHostKind = 'github' | 'gitlab' | 'gitea';
export const GIT_HOST_KINDS: readonly GitHostKind[] = ['github', 'gitlab', 'gitea'];
export const DEFAULT_GIT_HOST_TOKEN_ENV = 'GANTRY_GIT_HOST_TOKEN';

export interface GitHostConfig {
  kind: GitHostKind;
  /** API base, e.g. https://api.github.com, https://ghe.example.com/api/v3, https://gitlab.com/api/v4, https://gitea.example.com/api/v1. */
  apiUrl?: string;
  /** Environment variable holding the API token. */
  tokenEnv?: string;
}

export type CommitState = 'pending' | 'success' | 'failure';

export interface CommitStatus {
  /** e.g. gantry/plan */
  context: string;
  state: CommitState;
  /** One line; hosts cut long ones (GitHub at 140 characters), so it is cut here first. */
  description: string;
  targetUrl?: string;
}

export interface GitHostClient {
  readonly kind: GitHostKind;
  /** `repo`: owner/name, or for GitLab the project id. */
  setStatus(repo: string, sha: string, status: CommitStatus): Promise<void>;
  /** Returns the new comment's id. */
  createComment(repo: string, pr: number, body: string): Promise<string>;
  /** False when that comment no longer exists (someone deleted it). */
  updateComment(repo: string, pr: number, id: string, body: string): Promise<boolean>;
  /** The pull request as the host has it now; undefined when the host does not know it. */
  getPullRequest(repo: string, pr: number): Promise<PullRequestInfo | undefined>;
  /** The latest event that added `label` to the pull request (who added it), if any. */
  lastLabeled(repo: string, pr: number, label: string): Promise<LabelEvent | undefined>;
  /** What `user` may do in the repository ('none' for a stranger). */
  accessOf(repo: string, user: HostUser): Promise<AccessLevel>;
}

/**
 * What a person may do in a repository, least first, in GitHub's role names. GitLab's roles map
 * to them as Guest read, Reporter triage, Developer write, Maintainer maintain, Owner admin;
 * Gitea's as read, write, admin, and owner admin.
 */
export const ACCESS_LEVELS = ['none', 'read', 'triage', 'write', 'maintain', 'admin'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];

export function atLeast(level: AccessLevel, min: AccessLevel): boolean {
  return ACCESS_LEVELS.indexOf(level) >= ACCESS_LEVELS.indexOf(min);
}

/** A user at the host: GitHub and Gitea name them by login, GitLab's API by numeric id. */
export interface HostUser {
  login: string;
  id?: number;
}

export interface PullRequestInfo {
  state: 'open' | 'closed' | 'merged';
  headSha: string;
  /** The API's name of the repository the head lives in (owner/name, GitLab project id); null when it is gone (a deleted fork). */
  headRepo: string | null;
  /** The API's name of the repository it targets. */
  baseRepo: string;
  author: HostUser;
  /** GitHub's author_association (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...); other hosts have none. */
  authorAssociation?: string;
  /** Names of its labels now. */
  labels: string[];
}

export interface LabelEvent {
  /** The host's id of the event: a label removed and added again is a new event. */
  id: string;
  user: HostUser;
}

export type GitHostErrorCode = 'GIT_HOST_NOT_CONFIGURED' | 'GIT_HOST_UNREACHABLE' | 'GIT_HOST_REJECTED' | 'GIT_HOST_NOT_FOUND' | 'GIT_HOST_BAD_RESPONSE';

/** A failed call to the Git host's API. Its message is scrubbed of the token; `status` is the host's HTTP status, if it answered. */
export class GitHostError extends GantryError {
  declare readonly code: GitHostErrorCode;

  constructor(code: GitHostErrorCode, message: string, status?: number) {
    super(code, message, status === undefined ? {} : { status });
  }

  get status(): number | undefined {
    const status = this.data.status;
    return typeof status === 'number' ? status : undefined;
  }
}
registerErrorClass(GitHostError, 'GitHostError');

export const DEFAULT_API_URLS: Partial<Record<GitHostKind, string>> = {
  github: 'https://api.github.com',
  gitlab: 'https://gitlab.com/api/v4',
};

/** A JSON request to the host's API; the token goes in `auth` headers and is scrubbed from any error. */
export async function hostRequest(
  method: string,
  url: string,
  opts: { auth: Record<string, string>; token: string; body?: unknown; timeoutMs?: number },
): Promise<{ status: number; json: unknown }> {
  const path = new URL(url).pathname;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { accept: 'application/json', 'content-type': 'application/json', 'user-agent': 'gantry', ...opts.auth },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    throw new GitHostError('GIT_HOST_UNREACHABLE', redact(`${method} ${path}: ${err instanceof Error ? err.message : String(err)}`, [opts.token]));
  }
  const text = await res.text().catch(() => '');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.status === 404) return { status: 404, json };
  if (!res.ok) {
    const detail = (json as { message?: unknown } | undefined)?.message;
    const why = typeof detail === 'string' ? detail : JSON.stringify(detail ?? text.slice(0, 200));
    // Rate limits and server errors pass; anything else the host refused stays refused.
    const code = res.status === 429 || res.status >= 500 ? 'GIT_HOST_UNREACHABLE' : 'GIT_HOST_REJECTED';
    throw new GitHostError(code, redact(`${method} ${path}: HTTP ${res.status}: ${why.slice(0, 300)}`, [opts.token]), res.status);
  }
  return { status: res.status, json };
}

export function oneLine(text: string, max = 140): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export function idOf(json: unknown, what: string): string {
  const id = (json as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'number' && typeof id !== 'string') throw new GitHostError('GIT_HOST_BAD_RESPONSE', `${what}: the response has no id`);
  return String(id);
}
