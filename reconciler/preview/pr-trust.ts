import { ACCESS_LEVELS, atLeast, type AccessLevel } from '../git-host/git-host-client.ts';
import type { ProviderName } from '../../state/records/preview.ts';

/**
 * Whether a pull request may run its code on the nodes (a preview), pure. Anyone who can open a
 * pull request, from a fork too, could otherwise have their own `command` run; so, as GitHub
 * Actions' "approve to run" and Argo CD's pull-request generators do, a preview runs only when
 *   same-repo  its head branch lives in the tracked repository itself (its pusher can write there),
 *   author     its author is trusted: GitHub author_association in the list (OWNER, MEMBER,
 *              COLLABORATOR), or on GitLab and Gitea at least the configured access (Developer /
 *              write), read through the host's API,
 *   label      someone with at least that access added the label (default `gantry-preview`):
 *              presence and adder read through the host's API, and the approval holds for the
 *              head it was given to; commits pushed after it need the label added again,
 * or `anyone` is configured. Every other pull request still gets its plan (parsing and validation
 * run no workload), and the reason plus how to allow it.
 */

export const TRUST_RULES = ['same-repo', 'author', 'label', 'anyone'] as const;
export type TrustRule = (typeof TRUST_RULES)[number];

export interface TrustPolicy {
  /** The ways a pull request can be trusted; `anyone` trusts all (as before trust existed). */
  rules: readonly TrustRule[];
  /** GitHub author_association values whose authors are trusted (upper case). */
  associations: readonly string[];
  /** Least access of a trusted person: GitLab and Gitea authors, and whoever adds the label. */
  minAccess: AccessLevel;
  /** The label a trusted person adds to allow a preview. */
  label: string;
}

export const DEFAULT_TRUST_POLICY: TrustPolicy = {
  rules: ['same-repo', 'author', 'label'],
  associations: ['OWNER', 'MEMBER', 'COLLABORATOR'],
  minAccess: 'write',
  label: 'gantry-preview',
};

/** GitHub's author_association values. */
export const GITHUB_ASSOCIATIONS = ['OWNER', 'MEMBER', 'COLLABORATOR', 'CONTRIBUTOR', 'FIRST_TIME_CONTRIBUTOR', 'FIRST_TIMER', 'MANNEQUIN', 'NONE'] as const;

export interface LabelFacts {
  /** The label is on the pull request now. */
  present: boolean;
  /** Who added it (the latest event that did), and what they may do in the repository. */
  by?: string;
  byAccess?: AccessLevel;
  /** The head the approval was given to, when commits were pushed after it. */
  approvedHead?: string;
}

export interface TrustFacts {
  provider: ProviderName;
  /** True when these facts were read through the Git host's API (a host is configured). */
  checked: boolean;
  /** The API's name of the tracked repository the pull request targets. */
  baseRepo: string;
  /** Where its head lives: undefined when nobody says, null when that repository is gone. */
  headRepo?: string | null;
  author?: string;
  /** GitHub's author_association. */
  association?: string;
  /** The author's access (GitLab, Gitea: read through the API). */
  authorAccess?: AccessLevel;
  label?: LabelFacts;
}

export type TrustDecision =
  | { trusted: true; rule: TrustRule; reason: string }
  /** `status`: the short form of both, for a commit status (GitHub shows 140 characters). */
  | { trusted: false; reason: string; allow: string; status: string };

const sameRepo = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function decideTrust(f: TrustFacts, policy: TrustPolicy): TrustDecision {
  const rules = new Set(policy.rules);
  const who = f.author ? `@${f.author}` : 'its author';
  if (rules.has('anyone')) return { trusted: true, rule: 'anyone', reason: 'previews run for every pull request (--preview-trust anyone)' };
  if (rules.has('same-repo') && typeof f.headRepo === 'string' && sameRepo(f.headRepo, f.baseRepo)) {
    return { trusted: true, rule: 'same-repo', reason: `its head branch is in ${f.baseRepo} itself` };
  }
  const associations = new Set(policy.associations.map((a) => a.toUpperCase()));
  if (rules.has('author')) {
    if (f.association !== undefined && associations.has(f.association.toUpperCase())) return { trusted: true, rule: 'author', reason: `its author ${who} is ${f.association.toUpperCase()}` };
    if (f.authorAccess !== undefined && f.authorAccess !== 'none' && atLeast(f.authorAccess, policy.minAccess)) return { trusted: true, rule: 'author', reason: `its author ${who} has ${f.authorAccess} access` };
  }
  const label = f.label;
  const labelOk = rules.has('label') && f.checked && label?.present === true && label.by !== undefined && label.byAccess !== undefined && atLeast(label.byAccess, policy.minAccess) && label.byAccess !== 'none';
  if (labelOk && label.approvedHead === undefined) return { trusted: true, rule: 'label', reason: `@${label.by} (${label.byAccess} access) added the label ${policy.label}` };

  const why: string[] = [];
  if (f.headRepo === null) why.push('its head repository was deleted');
  else if (f.headRepo === undefined) why.push('nothing says where its head branch lives');
  else if (!sameRepo(f.headRepo, f.baseRepo)) why.push(`its head is in the fork ${f.headRepo}`);
  if (rules.has('author')) {
    if (f.association !== undefined) why.push(`${who} is ${f.association.toUpperCase()}`);
    else if (f.authorAccess !== undefined) why.push(`${who} has ${f.authorAccess} access`);
    else if (f.provider === 'gitlab' || f.provider === 'gitea') why.push(f.checked ? `${who}'s access is unknown` : `${who}'s access cannot be checked without --git-host`);
  }
  if (rules.has('label') && label?.present) {
    if (labelOk) why.push(`commits were pushed after @${label.by} added the label ${policy.label}`);
    else if (label.by !== undefined) why.push(`the label ${policy.label} was added by @${label.by}, who has ${label.byAccess ?? 'unknown'} access (${policy.minAccess} needed)`);
    else why.push(`who added the label ${policy.label} is unknown`);
  }
  return { trusted: false, reason: why.join('; ') || 'it matches no trust rule', allow: howToAllow(f, policy, rules, labelOk), status: statusLine(f, policy, rules, labelOk) };
}

function statusLine(f: TrustFacts, policy: TrustPolicy, rules: Set<TrustRule>, staleApproval: boolean): string {
  const label = f.label;
  let why: string;
  if (rules.has('label') && label?.present) {
    why = staleApproval
      ? `commits after @${label.by} added ${policy.label}`
      : label.by !== undefined
        ? `${policy.label} added by @${label.by} (${label.byAccess ?? 'unknown'} access, ${policy.minAccess} needed)`
        : `${policy.label} added by someone unknown`;
  } else {
    const where = f.headRepo === null ? 'a deleted fork' : f.headRepo === undefined ? 'an unknown repository' : sameRepo(f.headRepo, f.baseRepo) ? f.baseRepo : `fork ${f.headRepo}`;
    const role = f.association !== undefined ? ` (${f.association.toUpperCase()})` : f.authorAccess !== undefined ? ` (${f.authorAccess} access)` : '';
    why = `${where} by ${f.author ? `@${f.author}` : 'an unknown author'}${role}`;
  }
  let allow: string;
  if (rules.has('label') && f.checked) allow = staleApproval ? `remove ${policy.label} and add it again` : `someone with ${policy.minAccess} access adds ${label?.present ? 'it' : `the label ${policy.label}`}`;
  else if (rules.has('label')) allow = 'label approvals need --git-host';
  else if (rules.has('same-repo')) allow = `push the branch to ${f.baseRepo}`;
  else allow = 'see --preview-trust';
  return `awaiting approval: ${why}; ${allow}`;
}

function howToAllow(f: TrustFacts, policy: TrustPolicy, rules: Set<TrustRule>, staleApproval: boolean): string {
  if (rules.has('label')) {
    if (!f.checked) return `a label approval needs the Git host's API (--git-host) to check who added ${policy.label}; or push the branch to ${f.baseRepo} itself`;
    if (staleApproval) return `someone with ${policy.minAccess} access removes the label ${policy.label} and adds it again to approve the new commits`;
    return `someone with ${policy.minAccess} access (or more) adds the label ${policy.label}`;
  }
  if (rules.has('same-repo')) return `push the branch to ${f.baseRepo} itself, or allow more with --preview-trust`;
  return 'allow more with --preview-trust';
}

/** Parses `--preview-trust same-repo,author,label` (or `anyone`). */
export function parseTrustRules(text: string): TrustRule[] {
  const rules = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = rules.find((r) => !(TRUST_RULES as readonly string[]).includes(r));
  if (bad !== undefined || rules.length === 0) throw new TypeError(`expected a comma-separated list of ${TRUST_RULES.join(', ')}, got ${JSON.stringify(text)}`);
  return [...new Set(rules)] as TrustRule[];
}

/** Parses `--preview-trusted-associations OWNER,MEMBER,COLLABORATOR`. */
export function parseAssociations(text: string): string[] {
  const list = text.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  const bad = list.find((a) => !(GITHUB_ASSOCIATIONS as readonly string[]).includes(a));
  if (bad !== undefined || list.length === 0) throw new TypeError(`expected a comma-separated list of ${GITHUB_ASSOCIATIONS.join(', ')}, got ${JSON.stringify(text)}`);
  return [...new Set(list)];
}

/** Parses `--preview-min-access write` (GitLab's role names work too: developer, maintainer, owner). */
export function parseAccessLevel(text: string): AccessLevel {
  const s = text.trim().toLowerCase();
  const alias: Record<string, AccessLevel> = { guest: 'read', reporter: 'triage', developer: 'write', maintainer: 'maintain', owner: 'admin' };
  const level = alias[s] ?? ((ACCESS_LEVELS as readonly string[]).includes(s) && s !== 'none' ? (s as AccessLevel) : undefined);
  if (!level) throw new TypeError(`expected one of ${ACCESS_LEVELS.filter((l) => l !== 'none').join(', ')} (or developer, maintainer, owner), got ${JSON.stringify(text)}`);
  return level;
}
