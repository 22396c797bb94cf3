import type { ServiceView } from '../reconciler/services/service-views.ts';
import { describePorts } from '../reconciler/services/compute-endpoints.ts';
import { table } from './table.ts';

/** `gantry get services` as a table: endpoints as host:port, and what is wrong (conditions). */
export function renderServices(items: ServiceView[]): string {
  return table(
    ['NAMESPACE', 'NAME', 'PORTS', 'ENDPOINTS', 'CONDITIONS'],
    items.map((s) => {
      const first = s.ports[0] ? String(s.ports[0].port) : '';
      const eps = s.endpoints.map((e) => `${e.host}:${e.ports[first] ?? Object.values(e.ports)[0]}`);
      const shown = eps.length > 4 ? `${eps.slice(0, 4).join(',')} +${eps.length - 4} more` : eps.join(',');
      const conditions = s.conditions.filter((c) => c.status === 'True' && c.type !== 'EndpointsReady').map((c) => `${c.type}: ${c.message}`);
      if (s.split) conditions.push(`Canary: ${s.split.weight}% to ${s.split.canaryRevision}`);
      return [s.namespace, s.name, describePorts(s.ports), shown || '<none>', conditions.join('; ') || '-'];
    }),
  );
}
