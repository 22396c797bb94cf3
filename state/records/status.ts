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
  paused: boolean;
  pinned: { revision: number; reason: string; failedCommit: string | null } | null;
  canaryStep: number | null;
  canaryReplicas: number | null;
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
  errors?: string[];
  lastFetchError?: string;
}
