import type { InstanceTemplate } from './instance.ts';

/**
 * What Gantry remembers about a deployment's rollouts, in Redis (`rollout:<ns>:<name>`), so that a
 * reconciler killed mid-rollout picks up where it stopped. Git says what the template should be;
 * this says which revision is being rolled out, which one is known good, and whether a user or an
 * automatic rollback has pinned another revision for now.
 */

export interface Revision {
  /** 1, 2, 3... in order of first appearance. */
  revision: number;
  /** Template hash, including a restart nonce when `gantry rollout restart` made it. */
  templateHash: string;
  template: InstanceTemplate;
  commit: string;
  message: string;
  createdAt: number;
}

export type RolloutPhase = 'Progressing' | 'Complete' | 'Failed';

export interface RolloutPin {
  revision: number;
  /** The pin holds while Git still asks for this generation of the deployment. */
  generation: number;
  reason: 'undo' | 'rollback' | 'abort';
  /** For rollbacks: the revision that failed, and why. */
  failedRevision?: number;
  failedCommit?: string;
  /**
   * Set by `gantry rollout restart` while pinned: a restart rolls what runs, the pinned revision,
   * not Git's. advanceRollout turns it into a new revision of the pinned template and moves the pin
   * there (the top-level restartNonce only ever applies to Git's template).
   */
  restartNonce?: string;
}

export interface RolloutState {
  revisions: Revision[];
  /** The revision being rolled out or running. */
  target: number;
  /** The last revision that completed: where rollbacks and aborts return to. */
  stable?: number;
  phase: RolloutPhase;
  reason: string;
  message: string;
  startedAt: number;
  /** Last time the counts of updated/ready/old instances moved. */
  lastProgressAt: number;
  progressKey: string;
  paused?: boolean;
  pin?: RolloutPin;
  /** Canary: index of the current step, when it began, and whether a promote was asked for. */
  canaryStep?: number;
  canaryStepStartedAt?: number;
  promote?: boolean;
  /** Set by `gantry rollout restart`: folded into the template hash to roll every instance. */
  restartNonce?: string;
  /** Generation of the deployment the restart nonce applies to. */
  restartGeneration?: number;
}

export function revisionByNumber(state: RolloutState | undefined, n: number | undefined): Revision | undefined {
  return n === undefined ? undefined : state?.revisions.find((r) => r.revision === n);
}
