/**
 * Pull-request previews (reconciler/preview/): what was planned and reported for a pull request,
 * kept in Redis so that a restarted reconciler resumes waiting for it.
 */

/** The Git hosts Gantry takes webhooks from. */
export type ProviderName = 'github' | 'gitlab' | 'gitea' | 'bitbucket';

/** One object a revision adds, changes or removes, and how (field by field; instances affected). */
export interface PlanRow {
  /** Absent in plans stored before every kind was diffed: a Deployment. */
  kind?: string;
  /** "<ns>/<name>", or the name of a Namespace. */
  name: string;
  changes: string[];
}

/** What syncing a revision would change (`gantry plan`, `gantry diff`, the plan of a preview). */
export interface HeadDiff {
  commit: string;
  /** The commit applied now (what the diff is against), when there is one. */
  base?: string;
  valid: boolean;
  /** The first MAX_REPORTED_ERRORS (records/status.ts) of an invalid revision's errors... */
  errors: string[];
  /** ...and how many it has in all (absent: as many as `errors`). */
  errorCount?: number;
  /** The revision's first warnings (ignored objects and fields, skipped files, deprecations)... */
  warnings?: string[];
  /** ...and how many it has in all. */
  warningCount?: number;
  summary: string;
  added: PlanRow[];
  changed: PlanRow[];
  removed: PlanRow[];
}

export type PreviewPhase = 'deploying' | 'ready' | 'failed';

export interface PreviewRecord {
  number: number;
  provider: ProviderName;
  /** The Git host API's name of the repository (owner/name, GitLab project id). */
  repo: string;
  headBranch: string;
  /** The ref the head was fetched from (refs/pull/7/head...). */
  headRef: string;
  /** The commit the preview runs. */
  commit: string;
  state: PreviewPhase;
  message: string;
  plan: HeadDiff;
  namespaces: string[];
  /** `<ns>/<name>` of its deployments. */
  deployments: string[];
  createdAt: number;
  updatedAt: number;
}


/**
 * A label approval of a pull request (reconciler/preview/pr-trust.ts): the Git host's id of the
 * event that added the label, and the head commit it was first seen with. It approves that head
 * only; commits pushed after it need the label added again (a new event). Kept after the pull
 * request closes, so a reopened one with new commits needs a new approval too.
 */
export interface PreviewApproval {
  event: string;
  commit: string;
  /** Who added the label. */
  by: string;
  at: number;
}
