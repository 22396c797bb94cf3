/**
 * A token bucket: up to `capacity` takes at once, refilled at `perMinute` a minute. Pure apart
 * from the clock, which callers may pass in (tests do).
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly capacity: number,
    readonly perMinute: number,
    now: number = Date.now(),
  ) {
    if (!(capacity >= 1) || !(perMinute > 0)) throw new RangeError(`a token bucket needs capacity >= 1 and a refill > 0, got ${capacity} and ${perMinute}/min`);
    this.tokens = capacity;
    this.at = now;
  }

  /** Takes one token: 0 when there was one, else how many ms until there is. */
  take(now: number = Date.now()): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
  }

  private refill(now: number): void {
    // A clock that went back refills nothing (and does not drain either).
    const elapsed = Math.max(0, now - this.at);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.perMinute) / 60_000);
    this.at = Math.max(this.at, now);
  }
}
