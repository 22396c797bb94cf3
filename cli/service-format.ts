import type { ServiceView } from '../reconciler/services/service-views.ts';
import { describePorts } from '../reconciler/services/compute-endpoints.ts';
import { table } from './table.ts';
import { portKey } from '../state/records/service.ts';

/**
 * `gantry get services` as a table: ports as `port[:nodePort][->target][/UDP]`, endpoints as
 * host:port, and what is wrong (conditions).
 */
export function renderServices(items: ServiceView[]): string {
  return table(
    ['NAMESPACE', 'NAME', 'PORTS', 'ENDPOINTS', 'CONDITIONS'],
    items.map((s) => {
      const first = s.ports[0] ? portKey(s.ports[0]) : '';
      const eps = s.endpoints.map((e) => `${e.host}:${e.ports[first] ?? Object.values(e.ports)[0]}`);
      const shown = eps.length > 4 ? `${eps.slice(0, 4).join(',')} +${eps.length - 4} more` : eps.join(',');
      const conditions = s.conditions.filter((c) => c.status === 'True' && c.type !== 'EndpointsReady').map((c) => `${c.type}: ${c.message}`);
      if (s.split) conditions.push(`Canary: ${s.split.weight}% to ${s.split.canaryRevision}`);
      // NodePort and LoadBalancer show as their nodePorts; a headless one listens nowhere, so say so.
      const ports = describePorts(s.ports) + (s.headless ? ' (headless)' : '');
      return [s.namespace, s.name, ports, shown || '<none>', conditions.join('; ') || '-'];
    }),
  );
}
