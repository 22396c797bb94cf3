/**
 * What `gantry get instances` (table and `-o wide`) and `gantry describe instance` print. Pure:
 * API views in, text out (`now` is a parameter so tests can pin ages).
 *
 * The table of instances whose statuses carry no per-container states (older agents) is exactly
 * what it always was: PHASE, no READY. Once any listed instance reports them, PHASE becomes
 * kubectl's STATUS word (state/records/instance-display.ts) and READY counts ready containers.
 */
import type { InstanceView } from '../reconciler/api/views.ts';
import type { ContainerStatus } from '../state/records/instance.ts';
import { containerState, hasContainerStates, instanceStatusWord, readyContainers, type DisplayStatus } from '../state/records/instance-display.ts';
import { shortSha } from '../lib/short-sha.ts';
import { age, table } from './table.ts';

/** An instance as the API lists it; the per-container fields may be missing from an older reconciler's answer. */
export type InstanceItem = Omit<InstanceView, 'containers' | 'initContainers' | 'podIP' | 'status'> & { containers?: ContainerStatus[]; initContainers?: ContainerStatus[]; podIP?: string | null; status?: string };

function displayStatus(i: InstanceItem): DisplayStatus {
  return { phase: i.phase, ready: i.ready, ...(i.containers ? { containers: i.containers } : {}), ...(i.initContainers?.length ? { initContainers: i.initContainers } : {}) };
}

const portsText = (i: InstanceItem) => i.ports.map((p) => `${p.hostIP ?? i.hostIP ?? ''}:${p.hostPort}->${p.containerPort}${p.protocol === 'UDP' ? '/UDP' : ''}`).join(',') || '-';

/** One container for the CONTAINERS column: `name:word[,ready][,restarts=N]`, init containers marked `(init)`. */
function containerCell(c: ContainerStatus, init: boolean): string {
  const word = c.reason ?? containerState(c);
  return `${c.name}${init ? '(init)' : ''}:${word}${c.ready ? ',ready' : ''}${c.restarts > 0 ? `,restarts=${c.restarts}` : ''}`;
}

export function containersText(i: InstanceItem): string {
  const cells = [...(i.initContainers ?? []).map((c) => containerCell(c, true)), ...(i.containers ?? []).map((c) => containerCell(c, false))];
  return cells.join(' ') || '-';
}

/** The instances table; `wide` adds each container's state and restarts. */
export function renderInstances(items: InstanceItem[], wide: boolean, now = Date.now()): string {
  const states = items.some((i) => hasContainerStates(displayStatus(i)));
  const header = ['NAMESPACE', 'ID', 'NODE', ...(states ? ['READY', 'STATUS'] : ['PHASE']), 'PID', 'PORTS', 'RESTARTS', 'AGE', ...(wide ? ['CONTAINERS'] : []), 'REASON'];
  return table(
    header,
    items.map((i) => [
      i.namespace,
      i.id,
      i.node ?? '<none>',
      ...(states ? [readyContainers(displayStatus(i)) ?? '-', instanceStatusWord(displayStatus(i))] : [i.phase]),
      i.pid === null ? '-' : String(i.pid),
      portsText(i),
      String(i.restarts),
      age(i.createdAt, now),
      ...(wide ? [containersText(i)] : []),
      i.phase === 'Running' ? '' : (i.message ?? i.reason ?? ''),
    ]),
  );
}

/** A row of `describe`: its indentation, label and value (rows without a value are left out). */
type Row = [indent: string, label: string, value: string | undefined];

/** `label:` padded so that every value of the rows lines up, whatever its indentation, as kubectl describe prints them. */
function aligned(rows: Row[]): string[] {
  const shown = rows.filter((r): r is [string, string, string] => r[2] !== undefined && r[2] !== '');
  const width = Math.max(0, ...shown.map(([indent, label]) => indent.length + label.length + 1));
  return shown.map(([indent, label, value]) => `${`${indent}${label}:`.padEnd(width)}  ${value}`);
}

const when = (ms: number | null | undefined, now: number) => (ms ? `${new Date(ms).toISOString()} (${age(ms, now)} ago)` : undefined);

function describeContainer(c: ContainerStatus, now: number): string[] {
  const state = containerState(c);
  const last = c.lastTermination;
  const [top, nested] = ['    ', '      '];
  const rows: Row[] = [
    [top, 'State', state],
    [nested, 'Reason', c.reason],
    [nested, 'Message', c.message],
    [nested, 'Exit Code', state === 'Terminated' && c.exitCode !== undefined ? String(c.exitCode) : undefined],
    [nested, 'Started', when(c.startedAt, now)],
    [nested, 'Finished', state === 'Terminated' ? when(c.finishedAt, now) : undefined],
    ...(last
      ? ([
          [top, 'Last State', 'Terminated'],
          [nested, 'Reason', last.reason],
          [nested, 'Exit Code', last.exitCode !== undefined ? String(last.exitCode) : undefined],
          [nested, 'Started', when(last.startedAt, now)],
          [nested, 'Finished', when(last.finishedAt, now)],
        ] satisfies Row[])
      : []),
    [top, 'Ready', c.ready === undefined ? undefined : c.ready ? 'True' : 'False'],
    [top, 'Restart Count', String(c.restarts)],
    [top, 'Pid', c.pid !== undefined ? String(c.pid) : undefined],
  ];
  return [`  ${c.name}:`, ...aligned(rows)];
}

/** `gantry describe instance ID`: the instance, then its init containers and containers with state, reason, readiness, restarts and last termination. */
export function describeInstance(i: InstanceItem, now = Date.now()): string {
  const status = displayStatus(i);
  const word = instanceStatusWord(status);
  const lines = aligned([
    ['', 'Name', i.id],
    ['', 'Namespace', i.namespace],
    ['', 'Deployment', i.deployment],
    ['', 'Revision', i.revision],
    ['', 'Commit', shortSha(i.commit)],
    ['', 'Node', i.node ?? '<none>'],
    ['', 'Status', word],
    ['', 'Phase', word === i.phase ? undefined : i.phase],
    ['', 'Ready', readyContainers(status) ?? (i.ready ? 'True' : 'False')],
    ['', 'Reason', i.reason ?? undefined],
    ['', 'Message', i.message ?? undefined],
    ['', 'IP', i.podIP ?? undefined],
    ['', 'Host IP', i.hostIP ?? undefined],
    ['', 'Ports', i.ports.length > 0 ? portsText(i) : undefined],
    ['', 'Pid', i.pid === null ? undefined : String(i.pid)],
    ['', 'Exit Code', i.exitCode === null ? undefined : String(i.exitCode)],
    ['', 'Restarts', String(i.restarts)],
    ['', 'Created', when(i.createdAt, now)],
    ['', 'Started', when(i.startedAt, now)],
  ]);
  if (i.initContainers?.length) lines.push('Init Containers:', ...i.initContainers.flatMap((c) => describeContainer(c, now)));
  lines.push('Containers:', ...(i.containers?.length ? i.containers.flatMap((c) => describeContainer(c, now)) : ['  (no status reported yet)']));
  return lines.join('\n');
}
