import { Command, CommanderError, Option } from 'commander';
import type { DeploymentView, NodeView } from '../reconciler/api/views.ts';
import type { ServiceView } from '../reconciler/services/service-views.ts';
import type { GantryEvent } from '../state/events.ts';
import type { Condition } from '../state/records/status.ts';
import { callApi } from './api-client.ts';
import { describeInstance, type InstanceItem } from './instance-format.ts';
import { age, table } from './table.ts';
import { shortSha } from '../lib/short-sha.ts';

/**
 * `gantry describe deployment|instance|node|service NAME [-n NS]`, in kubectl's layout: the
 * object's fields, its conditions, then its recent events. Pure formatting over the API's views.
 */

type Row = [label: string, value: string | undefined];

function fields(rows: Row[]): string[] {
  const shown = rows.filter((r): r is [string, string] => r[1] !== undefined && r[1] !== '');
  const width = Math.max(0, ...shown.map(([l]) => l.length + 1));
  return shown.map(([l, v]) => `${`${l}:`.padEnd(width)}  ${v}`);
}

const labelsText = (m: Record<string, string>) => Object.entries(m).map(([k, v]) => `${k}=${v}`).join(',') || '<none>';
const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(2)}Gi`;
const pct = (used: number, total: number) => (total > 0 ? `${Math.round((used / total) * 100)}%` : '-');

function conditionsSection(conditions: readonly Condition[]): string[] {
  if (conditions.length === 0) return ['Conditions:  <none>'];
  const rows = conditions.map((c) => [c.type, c.status, c.reason, c.message]);
  return ['Conditions:', ...table(['Type', 'Status', 'Reason', 'Message'], rows).split('\n').map((l) => `  ${l}`)];
}

export function eventsSection(events: readonly GantryEvent[], now = Date.now()): string[] {
  if (events.length === 0) return ['Events:  <none>'];
  const rows = events.map((e) => [e.type, e.reason, age(e.time, now), e.object, e.message]);
  return ['Events:', ...table(['Type', 'Reason', 'Age', 'Object', 'Message'], rows).split('\n').map((l) => `  ${l}`)];
}

export function describeDeployment(d: DeploymentView, events: readonly GantryEvent[], now = Date.now()): string {
  return [
    ...fields([
      ['Name', d.name],
      ['Namespace', d.namespace],
      ['File', d.file],
      ['Commit', shortSha(d.commit)],
      ['Observed commit', d.observedCommit ? shortSha(d.observedCommit) : '<none>'],
      ['Generation', `${d.generation} (observed ${d.observedGeneration ?? '-'})`],
      ['Replicas', `${d.replicas} desired | ${d.updated} updated | ${d.ready} ready | ${d.available} available | ${d.pending} pending`],
      ['Template hash', d.templateHash],
      ['Running', d.running ? `revision ${d.running.revision} (${d.running.templateHash}, commit ${shortSha(d.running.commit)})${d.running.pinned ? ', pinned' : ''}` : '<none>'],
    ]),
    ...conditionsSection(d.conditions),
    ...eventsSection(events, now),
  ].join('\n');
}

export function describeNode(n: NodeView, instances: readonly InstanceItem[], events: readonly GantryEvent[], now = Date.now()): string {
  const rows = instances.map((i) => [i.id, i.phase, i.ready ? 'True' : 'False']);
  return [
    ...fields([
      ['Name', n.name],
      ['State', `${n.state}${n.cordoned ? ', SchedulingDisabled' : ''}${n.draining ? ', Draining' : ''}`],
      ['Address', n.address],
      ['Labels', labelsText(n.labels)],
      ['Runtimes', n.runtimes.join(', ') || '<none>'],
      ['Last heartbeat', `${new Date(n.lastHeartbeat).toISOString()} (${age(n.lastHeartbeat, now)} ago)`],
    ]),
    'Allocated resources:',
    ...table(['Resource', 'Requests', 'Capacity', 'Percent'], [
      ['cpu', `${n.allocatedCpuMilli}m`, `${n.cpuMilli}m`, pct(n.allocatedCpuMilli, n.cpuMilli)],
      ['memory', gib(n.allocatedMemoryBytes), gib(n.memoryBytes), pct(n.allocatedMemoryBytes, n.memoryBytes)],
    ]).split('\n').map((l) => `  ${l}`),
    `Instances (${instances.length}):`,
    ...(rows.length ? table(['Name', 'Phase', 'Ready'], rows).split('\n').map((l) => `  ${l}`) : ['  <none>']),
    ...eventsSection(events, now),
  ].join('\n');
}

export function describeService(s: ServiceView, events: readonly GantryEvent[], now = Date.now()): string {
  const ports = s.ports.map((p) => `${p.name ?? '<unnamed>'} ${p.port}/${p.protocol ?? 'TCP'} -> ${p.targetPort}${p.nodePort ? ` (nodePort ${p.nodePort})` : ''}`);
  const endpoints = s.endpoints.map((e) => `${e.host}:${Object.values(e.ports).join(',')} (${e.instanceId})`);
  return [
    ...fields([
      ['Name', s.name],
      ['Namespace', s.namespace],
      ['Type', `${s.type}${s.headless ? ' (headless)' : ''}`],
      ['File', s.file],
      ['Selector', labelsText(s.selector)],
      ['Ports', ports.join('; ') || '<none>'],
      ['Endpoints', endpoints.join(', ') || '<none>'],
      ['Canary split', s.split ? JSON.stringify(s.split) : undefined],
    ]),
    ...conditionsSection(s.conditions),
    ...eventsSection(events, now),
  ].join('\n');
}

const KINDS: Record<string, 'deployment' | 'instance' | 'node' | 'service'> = { deployment: 'deployment', deployments: 'deployment', deploy: 'deployment', instance: 'instance', instances: 'instance', inst: 'instance', node: 'node', nodes: 'node', no: 'node', service: 'service', services: 'service', svc: 'service' };

export function registerDescribeCommand(program: Command, apiOption: () => Option): void {
  program
    .command('describe')
    .description('show one object in detail, as kubectl does: fields, conditions, then recent events')
    .argument('<kind>', 'deployment | instance | node | service')
    .argument('<name>', 'its name (an instance: its id)')
    .option('-n, --namespace <ns>', 'namespace of a deployment or service', 'default')
    .addOption(apiOption())
    .action(async (kindArg: string, name: string, o: { namespace: string; api: string }) => {
      const kind = KINDS[kindArg];
      if (!kind) throw new CommanderError(2, 'gantry.usage', `error: unknown kind ${JSON.stringify(kindArg)}: expected deployment, instance, node or service`);
      const events = async (object: string) => (await callApi<{ items: GantryEvent[] }>(o.api, `/api/v1/events?for=${encodeURIComponent(object)}&limit=20`)).items;
      const notFound = (what: string, list: string) => new Error(`${what} not found (gantry get ${list} lists them)`);
      if (kind === 'instance') {
        const { items } = await callApi<{ items: InstanceItem[] }>(o.api, '/api/v1/instances');
        const found = items.find((i) => i.id === name);
        if (!found) throw notFound(`instance ${JSON.stringify(name)}`, 'instances');
        console.log(`${describeInstance(found)}\n${eventsSection(await events(`instance/${name}`)).join('\n')}`);
      } else if (kind === 'deployment') {
        const { items } = await callApi<{ items: DeploymentView[] }>(o.api, `/api/v1/deployments?namespace=${encodeURIComponent(o.namespace)}`);
        const found = items.find((d) => d.name === name);
        if (!found) throw notFound(`deployment ${JSON.stringify(`${o.namespace}/${name}`)}`, 'deployments');
        console.log(describeDeployment(found, await events(`deployment/${o.namespace}/${name}`)));
      } else if (kind === 'node') {
        const { items } = await callApi<{ items: NodeView[] }>(o.api, '/api/v1/nodes');
        const found = items.find((n) => n.name === name);
        if (!found) throw notFound(`node ${JSON.stringify(name)}`, 'nodes');
        const { items: instances } = await callApi<{ items: InstanceItem[] }>(o.api, '/api/v1/instances');
        console.log(describeNode(found, instances.filter((i) => i.node === name), await events(`node/${name}`)));
      } else {
        const { items } = await callApi<{ items: ServiceView[] }>(o.api, `/api/v1/services?namespace=${encodeURIComponent(o.namespace)}`);
        const found = items.find((s) => s.name === name);
        if (!found) throw notFound(`service ${JSON.stringify(`${o.namespace}/${name}`)}`, 'services');
        console.log(describeService(found, await events(`service/${o.namespace}/${name}`)));
      }
    });
}
