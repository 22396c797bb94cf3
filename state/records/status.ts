/** Status records: what the reconciler observed, written by it for the API, CLI and previews. */

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: number;
}

export interface DeploymentStatus {
  namespace: string;
  name: string;
  replicas: number;
  desiredReplicas: number;
  updatedReplicas: number;
  readyReplicas: number;
  availableReplicas: number;
  pendingReplicas: number;
  observedCommit: string;
  observedGeneration: number;
  templateHash: string;
  rollout?: RolloutStatus;
  conditions: Condition[];
  updatedAt: number;
}

export interface RolloutStatus {
  revision: number;
  stableRevision: number | null;
  phase: 'Progressing' | 'Complete' | 'Failed';
  reason: string;
  message: string;
  /** Commit of the target revision (what runs, or is being rolled out): Git's, or a pinned one's. */
  commit: string;
  paused: boolean;
  pinned: { revision: number; reason: string; failedCommit: string | null } | null;
  canaryStep: number | null;
  canaryReplicas: number | null;
}

/** A rejected commit's status, event and API answers hold this many of its errors, plus their count. */
export const MAX_REPORTED_ERRORS = 100;

/** The first MAX_REPORTED_ERRORS errors and how many there are in all. */
export function firstErrors(errors: readonly string[]): { errors: string[]; errorCount: number } {
  return { errors: errors.slice(0, MAX_REPORTED_ERRORS), errorCount: errors.length };
}

/** `e1; e2; ...; and 99900 more`: errors (the first ones) on one line, saying how many were left out. */
export function joinErrors(errors: readonly string[], errorCount: number = errors.length, separator = '; '): string {
  const more = errorCount - errors.length;
  return `${errors.join(separator)}${more > 0 ? `${separator}and ${more} more` : ''}`;
}

export interface SourceStatus {
  source: string;
  branch: string;
  /** Commit currently applied (the last good one). */
  lastAppliedCommit?: string;
  lastAppliedAt?: number;
  /** Last commit looked at, good or not. */
  lastAttemptedCommit?: string;
  lastAttemptedAt?: number;
  /** Set while the newest commit is rejected; cleared by the next good commit. */
  rejectedCommit?: string;
  lastError?: string;
  /** The rejected commit's first MAX_REPORTED_ERRORS errors... */
  errors?: string[];
  /** ...and how many it has in all. */
  errorCount?: number;
  /**
   * The applied commit's first MAX_REPORTED_ERRORS warnings (objects of kinds Gantry does not run,
   * fields it ignores, skipped files, deprecated apiVersions), each `file:line:col Kind ns/name: ...`...
   */
  warnings?: string[];
  /** ...and how many it has in all. */
  warningCount?: number;
  lastFetchError?: string;
}
