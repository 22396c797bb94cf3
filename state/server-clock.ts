import type { Redis } from 'ioredis';

/**
 * Redis's clock, as seen from this process: every time Gantry compares across machines
 * (heartbeats, NotReady and eviction, minReadySeconds, progress deadlines) is on it, so a machine
 * whose own clock is minutes off is judged right. The offset is measured with TIME (half the round
 * trip is taken as the delay) and refreshed by whoever owns the clock (the agent on each heartbeat,
 * the reconciler on each node check); until the first measurement it is 0.
 */
export class ServerClock {
  private offsetMs = 0;

  constructor(private readonly redis: Redis) {}

  /** Measures the offset again; returns Redis's time now. */
  async sync(): Promise<number> {
    const before = Date.now();
    const [seconds, micros] = await this.redis.time();
    const after = Date.now();
    const server = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.offsetMs = server - Math.round((before + after) / 2);
    return server;
  }

  /** Redis's time now, in ms since the epoch. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** A local timestamp of this process, on Redis's clock. */
  toServer(localMs: number): number {
    return localMs + this.offsetMs;
  }
}
