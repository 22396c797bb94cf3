import type { Redis } from 'ioredis';

/**
 * Fencing for an agent that was away: frozen (SIGSTOP, a VM pause), or cut off from Redis. While
 * it was away its instances may have been moved to other nodes, so on its return the agent must
 * first check every local instance against Redis and stop stale copies, before it heartbeats,
 * handles a job or starts anything. A record's `uid` is the epoch of an assignment: a moved
 * instance is recreated with a new uid, so a copy whose uid differs (or whose record is bound
 * elsewhere or gone) is stale.
 *
 * Away is noticed two ways: the event loop did not tick for `gapMs` (frozen), or the Redis
 * connection closed and came back. With `stopAfterDisconnectMs`, an agent without a Redis answer
 * for that long stops its instances (for singletons that must never run twice).
 */

export interface ConnectionGuardOptions {
  /** Watched for connection events (close, ready). */
  redis: Redis;
  /** One round trip to Redis (AgentStore.ping). */
  ping: () => Promise<unknown>;
  /** A pause of the event loop longer than this counts as having been away. */
  gapMs: number;
  stopAfterDisconnectMs?: number;
  /** Stops stale copies; awaited before anything else proceeds. */
  fence: () => Promise<void>;
  /** After a fence: look at everything again. */
  afterFence: () => void;
  /** Cut off for stopAfterDisconnectMs: stop every instance. */
  cutOff: () => Promise<void>;
  log: (line: string) => void;
}

const TICK_MS = 250;

export class ConnectionGuard {
  private lastTick = Date.now();
  private lastOk = Date.now();
  private fencing?: Promise<void>;
  private wasDisconnected = false;
  private cutOffDone = false;
  private ticker?: NodeJS.Timeout;
  private pinging = false;

  constructor(private readonly opts: ConnectionGuardOptions) {}

  start(): void {
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.opts.redis.on('close', () => {
      this.wasDisconnected = true;
    });
    this.opts.redis.on('ready', () => {
      if (!this.wasDisconnected) return;
      this.wasDisconnected = false;
      this.markOk();
      this.beginFence('the Redis connection came back');
    });
  }

  stop(): void {
    clearInterval(this.ticker);
  }

  /** A Redis round trip succeeded. */
  markOk(): void {
    this.lastOk = Date.now();
    this.cutOffDone = false;
  }

  /**
   * Resolves once no fence is in progress. Checks for a gap first, so a timer that fires right
   * after SIGCONT (before the ticker) still waits for the fence.
   */
  async whenFenced(): Promise<void> {
    this.checkGap();
    while (this.fencing) await this.fencing;
  }

  private checkGap(): void {
    const now = Date.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (gap > this.opts.gapMs) this.beginFence(`the agent did not run for ${Math.round(gap / 100) / 10}s`);
  }

  private tick(): void {
    this.checkGap();
    const limit = this.opts.stopAfterDisconnectMs;
    if (limit === undefined || this.fencing) return;
    if (!this.pinging) {
      // Its own round trip: heartbeats may be rarer than the limit.
      this.pinging = true;
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), Math.max(500, limit / 2)).unref());
      Promise.race([this.opts.ping(), timeout])
        .then(() => this.markOk(), () => {})
        .finally(() => (this.pinging = false));
    }
    if (!this.cutOffDone && Date.now() - this.lastOk > limit) {
      this.cutOffDone = true;
      this.opts.log(`no answer from Redis for ${limit / 1000}s: stopping this node's instances (--stop-after-disconnect)`);
      void this.opts.cutOff().catch((err) => this.opts.log(`stopping instances failed: ${err}`));
    }
  }

  private beginFence(why: string): void {
    if (this.fencing) return;
    this.opts.log(`${why}: checking every local instance against Redis before anything else`);
    this.fencing = this.opts
      .fence()
      .then(() => this.markOk())
      .catch((err) => this.opts.log(`fencing failed: ${err}`))
      .finally(() => {
        this.fencing = undefined;
        this.lastTick = Date.now();
        this.opts.afterFence();
      });
  }
}
