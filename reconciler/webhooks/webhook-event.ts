import { GantryError, registerErrorClass } from '../../lib/errors/index.ts';
import type { ProviderName } from '../../state/records/preview.ts';

/**
 * What a webhook delivery means to Gantry, whatever the Git host: the normalized event every
 * provider parser (github.ts, gitlab.ts, bitbucket.ts) produces, and the small readers they share.
 * Pure: no I/O.
 */

export type Headers = Record<string, string | string[] | undefined>;

/** A repository as a payload names it. */
export interface RepoRef {
  /** Every URL the payload gives for it (clone, web, SSH): matched against the tracked source. */
  urls: string[];
  /** What the Git host's API calls it: `owner/name`, or GitLab's numeric project id. */
  apiName: string;
}

/** One branch update of a push (Bitbucket sends several in one delivery). */
export interface RefUpdate {
  /** Full ref, e.g. refs/heads/main. */
  ref: string;
  /** New commit sha ('' when the host does not say). */
  after: string;
  /** The branch was deleted. */
  deleted: boolean;
}

/** `label`: only its labels changed (which may allow or stop its preview). */
export type PullRequestAction = 'open' | 'update' | 'close' | 'label' | 'other';

export interface PullRequestEvent {
  type: 'pull-request';
  action: PullRequestAction;
  /** The host's own word for it (opened, synchronize, merge...), for messages. */
  rawAction: string;
  number: number;
  /** The repository the pull request targets. */
  repo: RepoRef;
  /** Branch the pull request would merge into (short name). */
  baseBranch: string;
  headBranch: string;
  /** Head commit as the payload names it (Bitbucket abbreviates it). */
  headSha: string;
  /** Refs of the target repository to fetch the head from, best first; empty when none can work (a fork on Bitbucket). */
  headRefs: string[];
  /** Why headRefs is empty. */
  headProblem?: string;
  merged: boolean;
  /**
   * Where its head branch lives, named as `repo.apiName` is (owner/name, GitLab project id):
   * undefined when the payload does not say, null when that repository is gone (a deleted fork).
   */
  headRepo?: string | null;
  /** Its author's login (GitHub, Gitea, Bitbucket) or username, and numeric id (GitLab). */
  author?: { login: string; id?: number };
  /** GitHub's author_association (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE...). */
  authorAssociation?: string;
  /** Its labels, as the payload lists them. */
  labels?: string[];
  /** For `label`: the labels added or removed (undefined when the host does not say, as Gitea), and who did it. */
  labelChange?: { names?: string[]; by?: string };
}

export type WebhookEvent =
  | { type: 'ping' }
  | { type: 'push'; repo: RepoRef; updates: RefUpdate[] }
  | PullRequestEvent;

/** A payload that is not what its event promises: answered with 400 MALFORMED_PAYLOAD. */
export class MalformedPayload extends GantryError {
  declare readonly code: 'MALFORMED_PAYLOAD';

  constructor(message: string) {
    super('MALFORMED_PAYLOAD', message);
  }
}
registerErrorClass(MalformedPayload, 'MalformedPayload');

export const ZERO_SHA = /^0+$/;

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** The value at a dotted path of a JSON object, or undefined. */
export function at(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function requireString(obj: unknown, path: string): string {
  const v = at(obj, path);
  if (typeof v !== 'string' || v.length === 0) throw new MalformedPayload(`${path} must be a non-empty string`);
  return v;
}

export function optionalString(obj: unknown, path: string): string | undefined {
  const v = at(obj, path);
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export function requirePositiveInt(obj: unknown, path: string): number {
  const v = at(obj, path);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new MalformedPayload(`${path} must be a positive integer`);
  return v;
}

export function requireObject(obj: unknown, path: string): Record<string, unknown> {
  const v = at(obj, path);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MalformedPayload(`${path} must be an object`);
  return v as Record<string, unknown>;
}

/** The string values at `paths` that exist (URLs of one repository). */
export function strings(obj: unknown, paths: string[]): string[] {
  return paths.map((p) => at(obj, p)).filter((v): v is string => typeof v === 'string' && v.length > 0);
}

/** Names of the objects in a payload's list (labels: `name` on GitHub and Gitea, `title` on GitLab). */
export function namesAt(obj: unknown, path: string, field = 'name'): string[] {
  const list = at(obj, path);
  return Array.isArray(list) ? list.map((x) => at(x, field)).filter((n): n is string => typeof n === 'string' && n.length > 0) : [];
}

export function shortBranch(ref: string): string {
  return ref.replace(/^refs\/heads\//, '');
}

/** How a provider reads a delivery. `parse` throws MalformedPayload. */
export interface WebhookProvider {
  name: ProviderName;
  /** Event names it understands; any other is acknowledged (202) and ignored. */
  events: ReadonlySet<string>;
  eventName(headers: Headers): string | undefined;
  deliveryId(headers: Headers): string | undefined;
  /** Checks the signature (or token) against the raw body bytes, in constant time. */
  verify(headers: Headers, body: Buffer, secret: string): boolean;
  parse(event: string, payload: unknown): WebhookEvent;
}
