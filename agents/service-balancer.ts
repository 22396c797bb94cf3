import type { CanarySplit, Endpoint } from '../state/records/service.ts';

/**
 * Which endpoints one new connection tries, in order, pure apart from its own counters: round robin
 * within a group, the canary group picked for `weight` percent of connections during a canary
 * split. The order lists every endpoint (the chosen group first, then the others), so a proxy that
 * finds one refusing connections simply tries the next: a dead endpoint costs a retry, never a
 * failed connection while any endpoint answers.
 *
 * The split is deterministic (a credit counter, as smooth weighted round robin does): weight 20
 * sends exactly every fifth connection to the canary, so small samples are not noisy.
 */
export class ServiceBalancer {
  private readonly next = new Map<string, number>();
  private credit = 0;

  order(endpoints: readonly Endpoint[], split?: CanarySplit): Endpoint[] {
    if (endpoints.length === 0) return [];
    const canary = split ? endpoints.filter((e) => e.revision === split.canaryRevision) : [];
    const rest = split ? endpoints.filter((e) => e.revision !== split.canaryRevision) : [...endpoints];
    let first = rest;
    let second = canary;
    if (split && canary.length > 0 && rest.length > 0) {
      this.credit += Math.max(0, Math.min(100, split.weight));
      if (this.credit >= 100) {
        this.credit -= 100;
        first = canary;
        second = rest;
      }
    } else if (rest.length === 0) {
      first = canary;
      second = [];
    }
    const group = first === canary ? 'canary' : 'stable';
    const start = this.next.get(group) ?? 0;
    this.next.set(group, (start + 1) % Number.MAX_SAFE_INTEGER);
    return [...rotate(first, start), ...rotate(second, this.next.get(group === 'canary' ? 'stable' : 'canary') ?? 0)];
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
