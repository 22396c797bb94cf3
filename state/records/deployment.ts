import type { InstanceTemplate } from './instance.ts';

/** One canary step: `{ setWeight }` or `{ pause: { durationMs? } }` (no duration: until promoted). */
export type CanaryStep = { setWeight: number } | { pause: { durationMs?: number } };

export type IntOrPercent = number | string;

/** A desired deployment as stored in Redis: the manifest's meaning, resolved, plus its origin. */
export interface DeploymentRecord {
  namespace: string;
  name: string;
  /** Commit the manifest was read from, and its message (for revision history). */
  commit: string;
  commitMessage?: string;
  /** Manifest file (repo-relative) and line, for messages. */
  file: string;
  line: number;
  /** Bumped whenever the spec changes (not when only the commit does). */
  generation: number;
  /** Hash of the spec, to tell whether the generation must move. */
  specHash: string;
  replicas: number;
  /** spec.selector.matchLabels (the template's labels when no selector is written). */
  selector: Record<string, string>;
  /** spec.selector.matchExpressions, when written. */
  selectorExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
  strategy: { type: 'RollingUpdate' | 'Recreate' | 'Canary'; maxSurge: IntOrPercent; maxUnavailable: IntOrPercent; steps?: CanaryStep[] };
  minReadySeconds: number;
  revisionHistoryLimit: number;
  progressDeadlineSeconds: number;
  rollback: 'auto' | 'none';
  /**
   * "<ns>/<kind>/<name>@<version>" of the ConfigMap and Secret versions the template's env uses
   * (records/config.ts), part of templateHash; absent: none.
   */
  configRefs?: string[];
  /** spec.paused: a new template waits (replicas still follow) until it is false again. */
  paused?: boolean;
  templateHash: string;
  template: InstanceTemplate;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /**
   * Who wrote the record and alone replaces or prunes it: absent or 'main' for the tracked branch,
   * 'pr-<N>' for the preview of pull request N (see reconciler/preview/).
   */
  owner?: string;
}

export interface NamespaceRecord {
  name: string;
  commit: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** As DeploymentRecord.owner. */
  owner?: string;
}

/** Owner of the records written from the tracked branch; records without an owner are main's. */
export const MAIN_OWNER = 'main';

/** Who may replace or prune a record: 'main' or 'pr-<N>' (see DeploymentRecord.owner). */
export function ownerOf(record: { owner?: string }): string {
  return record.owner ?? MAIN_OWNER;
}
