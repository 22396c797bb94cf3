/**
 * What an agent decides when Redis lost its data (pure; the agent does the I/O).
 *
 * The reconciler keeps a random `cluster-epoch` in Redis. An empty Redis (FLUSHALL, a restart
 * without persistence, a failover to a lagging replica) has no epoch, or, once the reconciler made
 * a new one, another one. Then a missing instance record says nothing about what is wanted: the
 * agent keeps what it ran at that moment ("held"), claims it for the reconciler to adopt, and stops
 * only what got no record back within the adoption window. Instances it starts afterwards, and any
 * held one once a record for its id exists again, are handled as always.
 */

export const DEFAULT_ADOPTION_WINDOW_MS = 60_000;

/** `lost`: Redis lost its data just now (begin holding); `same`: nothing to do. */
export type EpochVerdict = 'lost' | 'same';

export class EpochWatch {
  /** The epoch last seen: undefined before the first look, null when it was seen missing. */
  private seen: string | null | undefined;
  private since?: number;
  private readonly held = new Set<string>();

  constructor(readonly windowMs: number = DEFAULT_ADOPTION_WINDOW_MS) {}

  /**
   * The epoch as read now (`current`, undefined when missing), whether this node's record is still
   * there (`registered`: the agent wrote it, and only a loss of data removes it), and the instances
   * running here. Lost when the epoch is missing (and was not already seen missing), differs from
   * the one seen, or the node's record is gone; the first look only remembers what it saw, and a
   * new epoch made after one was seen missing is simply remembered.
   */
  observe(current: string | undefined, registered: boolean, now: number, running: Iterable<string>): EpochVerdict {
    const cur = current ?? null;
    const before = this.seen;
    this.seen = cur;
    // The first look only remembers: a just-started agent runs nothing it could hold yet.
    if (before === undefined) return 'same';
    const lost = !registered || (cur === null ? before !== null : before !== null && before !== cur);
    if (!lost) return 'same';
    this.since = now;
    this.held.clear();
    for (const id of running) this.held.add(id);
    return 'lost';
  }

  /** Whether a missing record of `id` must not stop it: it ran when the data was lost, and the window is open. */
  holds(id: string, now: number): boolean {
    return this.since !== undefined && now - this.since < this.windowMs && this.held.has(id);
  }

  /** A record for `id` exists again (adopted, or re-created): from now on it is handled as always. */
  release(id: string): void {
    this.held.delete(id);
  }

  /** Whether a window is open (claims are out). */
  get recovering(): boolean {
    return this.since !== undefined;
  }

  /**
   * Once the window has passed: ends it and returns the instances never adopted (they are stopped
   * as before, being no longer desired); undefined while it is open or when there is none.
   */
  expire(now: number): string[] | undefined {
    if (this.since === undefined || now - this.since < this.windowMs) return undefined;
    const left = [...this.held];
    this.since = undefined;
    this.held.clear();
    return left;
  }
}
