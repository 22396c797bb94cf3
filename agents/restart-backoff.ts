/**
 * Restart backoff as the kubelet does it (pure): a container that ended is restarted at once the
 * first time, then after 10 s, 20 s, 40 s ... capped at 5 min; a run that lasted 10 min clean
 * resets the sequence. The figures are agent options (`--restart-backoff`, `--restart-backoff-max`).
 */

export interface BackoffConfig {
  initialMs: number;
  maxMs: number;
  /** A run at least this long starts the sequence over. */
  resetMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = { initialMs: 10_000, maxMs: 300_000, resetMs: 600_000 };

/** Delay before the restart that follows `step` earlier back-to-back crashes: 0, initial, 2x ... max. */
export function restartDelayMs(step: number, cfg: BackoffConfig): number {
  if (step <= 0) return 0;
  // 2 ** large overflows to Infinity, which Math.min caps.
  return Math.min(cfg.initialMs * 2 ** (step - 1), cfg.maxMs);
}

/**
 * The step after a run that started at `startedAt` and ended at `finishedAt`: back to the start
 * after a long clean run, else one further (a container that never started counts as a crash).
 */
export function nextBackoffStep(step: number, startedAt: number | undefined, finishedAt: number, cfg: BackoffConfig): number {
  if (startedAt !== undefined && finishedAt - startedAt >= cfg.resetMs) return 1;
  return step + 1;
}
