import { objectKey } from '../../state/keys.ts';
import type { RolloutState } from '../../state/records/rollout.ts';
import type { DeploymentStatus } from '../../state/records/status.ts';
import type { Store } from '../../state/store.ts';
import { canarySplitOf, computeEndpoints, endpointsChanged } from './compute-endpoints.ts';
import { readEndpoints, readServices } from '../../state/service-store.ts';
import { type CanarySplit } from '../../state/records/service.ts';

/**
 * Keeps `endpoints:<ns>:<name>` of every Service in step with what runs. Level-triggered: any poke
 * (an instance status changed, a deployment was reconciled, services changed in Git, a node check,
 * the periodic resync) recomputes every service from Redis; pokes that arrive while a pass runs
 * share one more pass right after it, so the newest state is never missed and bursts cost little.
 * Records that changed are written and announced on the services channel, where proxies listen.
 */

export class EndpointsController {
  private running = false;
  private again = false;
  private stopped = false;
  private idle?: Promise<void>;

  constructor(private readonly deps: { store: Store; log?: (line: string) => void }) {}

  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.idle = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        try {
          await this.recompute();
        } catch (err) {
          this.deps.log?.(`endpoints: ${err instanceof Error ? err.message : String(err)}`);
        }
      } while (this.again && !this.stopped);
    } finally {
      this.running = false;
    }
  }

  /** One pass over all services; returns how many endpoints records changed. */
  async recompute(now = Date.now()): Promise<number> {
    const { store } = this.deps;
    const { redis, keys } = store;
    const services = await readServices(redis, keys);
    if (services.length === 0) return 0;
    const names = services.map((s) => objectKey(s.namespace, s.name));
    const [instances, lifecycle, previous, deployments] = await Promise.all([
      store.readAllInstances(),
      redis.hgetall(keys.nodeLifecycle),
      readEndpoints(redis, keys, names),
      store.readDeployments(),
    ]);
    const nodeStates: Record<string, string> = {};
    for (const [node, raw] of Object.entries(lifecycle)) {
      try {
        nodeStates[node] = (JSON.parse(raw) as { state: string }).state;
      } catch {
        // unreadable: the node lifecycle controller rewrites it within a second
      }
    }
    const splits = new Map<string, CanarySplit>();
    const canaries = deployments.filter((d) => d.strategy.type === 'Canary');
    if (canaries.length > 0) {
      const pipe = redis.pipeline();
      for (const d of canaries) pipe.get(keys.rollout(d.namespace, d.name)).get(keys.deploymentStatus(d.namespace, d.name));
      const res = (await pipe.exec()) ?? [];
      canaries.forEach((d, i) => {
        const state = parseJson<RolloutState>(res[2 * i]?.[1]);
        const status = parseJson<DeploymentStatus>(res[2 * i + 1]?.[1]);
        const split = canarySplitOf(d, state, status);
        if (split) splits.set(objectKey(d.namespace, d.name), split);
      });
    }
    const prev = new Map(previous.map((e) => [objectKey(e.namespace, e.name), e]));
    const next = computeEndpoints({ services, instances, nodeStates, splits, previous: prev, now });
    const changed = next.filter((e) => endpointsChanged(prev.get(objectKey(e.namespace, e.name)), e));
    if (changed.length === 0) return 0;
    const tx = redis.multi();
    for (const e of changed) tx.set(keys.endpoints(e.namespace, e.name), JSON.stringify(e));
    tx.publish(keys.servicesChannel, 'endpoints');
    await tx.exec();
    // A service pruned while this pass ran must not keep the record just written for it.
    const desired = new Set(await redis.smembers(keys.services));
    const stale = changed.filter((e) => !desired.has(objectKey(e.namespace, e.name)));
    if (stale.length > 0) await redis.del(...stale.map((e) => keys.endpoints(e.namespace, e.name)));
    return changed.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle;
  }
}

function parseJson<T>(raw: unknown): T | undefined {
  if (typeof raw !== 'string' || !raw) return undefined;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return undefined;
  }
}
