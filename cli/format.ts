import { stringify } from 'yaml';
import { formatCpu, formatMemory } from '../reconciler/manifests/quantity.ts';
import type { DeploymentView, InstanceView, NodeView } from '../reconciler/api/views.ts';
import type { ServiceView } from '../reconciler/services/service-views.ts';
import { renderServices } from './service-format.ts';

/** Renders API items for `gantry get` as an aligned table, JSON or YAML. */

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function age(sinceMs: number | null | undefined, now = Date.now()): string {
  if (!sinceMs) return '-';
  const s = Math.max(0, Math.round((now - sinceMs) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

export function render(kind: 'nodes' | 'deployments' | 'instances' | 'services', items: unknown[], format: 'table' | 'json' | 'yaml'): string {
  if (format === 'json') return JSON.stringify({ items }, null, 2);
  if (format === 'yaml') return stringify({ items }).trimEnd();
  if (items.length === 0) return `No ${kind} found.`;
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
        d.commit.slice(0, 7),
        d.templateHash,
        d.conditions.filter((c) => c.status === 'True' || c.type === 'Progressing').map((c) => (c.status === 'True' ? c.type : `${c.type}=${c.reason}`)).join(',') || '-',
      ]),
    );
  }
  return table(
    ['NAMESPACE', 'ID', 'NODE', 'PHASE', 'PID', 'PORTS', 'RESTARTS', 'AGE', 'REASON'],
    (items as InstanceView[]).map((i) => [
      i.namespace,
      i.id,
      i.node ?? '<none>',
      i.phase,
      i.pid === null ? '-' : String(i.pid),
      i.ports.map((p) => `${i.hostIP ?? ''}:${p.hostPort}->${p.containerPort}`).join(',') || '-',
      String(i.restarts),
      age(i.createdAt),
      i.phase === 'Running' ? '' : (i.message ?? i.reason ?? ''),
    ]),
  );
}
