import { CoalescedRunner } from '../../lib/coalesced-runner.ts';
import { objectKey } from '../../state/keys.ts';
import type { Store } from '../../state/store.ts';
import { canarySplitOf, computeEndpoints, endpointsChanged } from './compute-endpoints.ts';
import { type CanarySplit } from '../../state/records/service.ts';

/**
 * Keeps `endpoints:<ns>:<name>` of every Service in step with what runs. Level-triggered: any poke
 * (an instance status changed, a deployment was reconciled, services changed in Git, a node check,
 * the periodic resync) recomputes every service from Redis; pokes that arrive while a pass runs
 * share one more pass right after it, so the newest state is never missed and bursts cost little.
 * Records that changed are written and announced on the services channel, where proxies listen.
 */

export class EndpointsController {
  private readonly passes: CoalescedRunner<number>;

  constructor(private readonly deps: { store: Store; log?: (line: string) => void }) {
    this.passes = new CoalescedRunner(() => this.recompute(), {
      onError: (err) => deps.log?.(`endpoints: ${err instanceof Error ? err.message : String(err)}`),
    });
  }

  poke(): void {
    this.passes.poke();
  }

  /** One pass over all services; returns how many endpoints records changed. */
  async recompute(now = Date.now()): Promise<number> {
    const { store } = this.deps;
    const services = await store.services.readServices();
    if (services.length === 0) return 0;
    const names = services.map((s) => objectKey(s.namespace, s.name));
    const [instances, lifecycle, previous, deployments] = await Promise.all([
      store.readAllInstances(),
      store.readNodeLifecycles(),
      store.services.readEndpoints(names),
      store.readDeployments(),
    ]);
    const nodeStates: Record<string, string> = {};
    for (const [node, l] of Object.entries(lifecycle)) nodeStates[node] = l.state;
    const splits = new Map<string, CanarySplit>();
    const canaries = deployments.filter((d) => d.strategy.type === 'Canary');
    if (canaries.length > 0) {
      const [states, statuses] = await Promise.all([store.readRollouts(canaries), store.readDeploymentStatuses(canaries)]);
      canaries.forEach((d, i) => {
        const split = canarySplitOf(d, states[i], statuses[i]);
        if (split) splits.set(objectKey(d.namespace, d.name), split);
      });
    }
    const prev = new Map(previous.map((e) => [objectKey(e.namespace, e.name), e]));
    const next = computeEndpoints({ services, instances, nodeStates, splits, previous: prev, now });
    const changed = next.filter((e) => endpointsChanged(prev.get(objectKey(e.namespace, e.name)), e));
    await store.services.writeEndpoints(changed);
    return changed.length;
  }

  stop(): Promise<void> {
    return this.passes.stop();
  }
}
