import type { Store } from '../../state/store.ts';

/**
 * Notices that Redis lost its data. The reconciler makes a random `cluster-epoch` at start (SET NX)
 * and looks at it on every periodic resync and whenever its connection comes back: gone (FLUSHALL,
 * a restart without persistence) or different (a failover to a replica that lags) means that
 * every record is gone. Then it logs it, records a `RedisDataLost` event, makes a new epoch and
 * calls `onDataLost`, which re-applies the source from Git at once and opens the adoption hold.
 * The agents notice it too, keep what they run and claim it for adoption (agents/epoch-watch.ts).
 */
export interface ClusterEpochDeps {
  store: Store;
  onDataLost: () => Promise<void>;
  log?: (line: string) => void;
}

export class ClusterEpoch {
  private epoch?: string;
  private looking?: Promise<boolean>;

  constructor(private readonly deps: ClusterEpochDeps) {}

  /**
   * At start. An epoch missing then is a new cluster, unless agents already claim what they run:
   * then Redis lost its data while no reconciler looked (or together with it), and it is handled
   * as such. A loss no agent noticed yet cannot be told from a new cluster.
   */
  async ensure(): Promise<void> {
    const { store, log } = this.deps;
    const { epoch, created } = await store.recovery.ensureClusterEpoch();
    this.epoch = epoch;
    if (!created) return;
    log?.(`cluster epoch ${epoch} created`);
    if (await store.recovery.anyClaims()) await this.lost(`no cluster epoch at start, but agents claim the instances they still run: Redis lost its data (new epoch ${epoch})`);
  }

  /** True when Redis lost its data since the last look (and it was handled). Concurrent callers share one look. */
  check(): Promise<boolean> {
    this.looking ??= this.look().finally(() => (this.looking = undefined));
    return this.looking;
  }

  private async look(): Promise<boolean> {
    const { store } = this.deps;
    const current = await store.recovery.readClusterEpoch();
    if (current !== undefined && current === this.epoch) return false;
    if (this.epoch === undefined) {
      // Redis did not answer at start: this is the first look.
      if (current !== undefined) this.epoch = current;
      else await this.ensure();
      return false;
    }
    const before = this.epoch;
    const { epoch } = await store.recovery.ensureClusterEpoch();
    this.epoch = epoch;
    await this.lost(current === undefined ? `Redis lost its data (the cluster epoch ${before} is gone; new epoch ${epoch})` : `the cluster epoch changed from ${before} to ${current}: Redis lost its data`);
    return true;
  }

  private async lost(why: string): Promise<void> {
    const message = `${why}: re-applying the source from Git and adopting the instances agents still run`;
    this.deps.log?.(message);
    await this.deps.store.events.record({ type: 'Warning', reason: 'RedisDataLost', object: 'cluster', message });
    await this.deps.onDataLost();
  }
}
