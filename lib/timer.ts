/**
 * Node's timers hold at most 2^31-1 ms (about 24.8 days); a longer delay fires after 1 ms instead,
 * with a TimeoutOverflowWarning, which turns a long wait fed from user input into a hot loop.
 * Every delay that comes from a manifest or a stored record goes through clampDelay first.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a delay a timer can hold: NaN and negatives become 0, anything longer MAX_TIMER_MS. */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}
