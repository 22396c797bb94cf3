import type { ConfigView } from '../reconciler/api/config-views.ts';
import { stringify } from 'yaml';
import { formatCpu, formatMemory } from '../reconciler/manifests/quantity.ts';
import type { DeploymentView, NodeView } from '../reconciler/api/views.ts';
import { renderInstances, type InstanceItem } from './instance-format.ts';
import type { ServiceView } from '../reconciler/services/service-views.ts';
import { renderServices } from './service-format.ts';
import { age, table } from './table.ts';
import { shortSha } from '../lib/short-sha.ts';

/** Renders API items for `gantry get` as an aligned table, JSON or YAML. */

/** `wide` adds columns where a kind has more to say (instances: each container); elsewhere it is the table. */
export function render(kind: 'nodes' | 'deployments' | 'instances' | 'services' | 'configmaps' | 'secrets', items: unknown[], format: 'table' | 'wide' | 'json' | 'yaml'): string {
  if (format === 'json') return JSON.stringify({ items }, null, 2);
  if (format === 'yaml') return stringify({ items }).trimEnd();
  if (items.length === 0) return `No ${kind} found.`;
  if (kind === 'configmaps' || kind === 'secrets') {
    // The API already masks a Secret's values; the table shows only keys anyway.
    return table(
      ['NAMESPACE', 'NAME', ...(kind === 'secrets' ? ['TYPE'] : []), 'KEYS', 'VERSION', 'USED BY'],
      (items as ConfigView[]).map((c) => [c.namespace, c.name, ...(kind === 'secrets' ? [c.type ?? 'Opaque'] : []), String(Object.keys(c.data).length + Object.keys(c.binaryData ?? {}).length), c.version.slice(0, 8), c.usedBy.join(',') || '-']),
    );
  }
  if (kind === 'services') return renderServices(items as ServiceView[]);
  if (kind === 'nodes') {
    return table(
      ['NAME', 'STATUS', 'CPU', 'MEMORY', 'INSTANCES', 'RUNTIMES', 'LABELS', 'HEARTBEAT'],
      (items as NodeView[]).map((n) => [
        n.name,
        n.state + (n.cordoned ? ',SchedulingDisabled' : ''),
        `${formatCpu(n.allocatedCpuMilli)}/${formatCpu(n.cpuMilli)}`,
        `${formatMemory(n.allocatedMemoryBytes)}/${formatMemory(n.memoryBytes)}`,
        String(n.instances),
        n.runtimes.join(','),
        Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || '-',
        age(n.lastHeartbeat) + ' ago',
      ]),
    );
  }
  if (kind === 'deployments') {
    return table(
      ['NAMESPACE', 'NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'COMMIT', 'REVISION', 'CONDITIONS'],
      (items as DeploymentView[]).map((d) => [
        d.namespace,
        d.name,
        `${d.ready}/${d.replicas}`,
        String(d.updated),
        String(d.available),
        // What runs: while a pin holds, that is not Git's commit (the Pinned condition says why).
        shortSha(d.running?.commit ?? d.commit),
        d.running?.templateHash ?? d.templateHash,
        d.conditions.filter((c) => c.status === 'True' || c.type === 'Progressing').map((c) => (c.status === 'True' && c.type !== 'Pinned' ? c.type : `${c.type}=${c.reason}`)).join(',') || '-',
      ]),
    );
  }
  return renderInstances(items as InstanceItem[], format === 'wide');
}
