import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostPortsConflict, requestedHostPorts, type HostPortUse } from '../../reconciler/scheduler/host-ports.ts';
import { selectNode, type NodeCandidate, type SchedulingNeeds } from '../../reconciler/scheduler/select-node.ts';
import type { PortSpec } from '../../state/records/instance.ts';
import { node } from '../helpers/records.ts';

/** The scheduler's hostPort filter (kube-scheduler's NodePorts), table-driven. */

const REASON = "node(s) didn't have free ports for the requested pod ports";

const view = (name: string, used: HostPortUse[] = [], over: { labels?: Record<string, string>; usedCpu?: number } = {}): NodeCandidate => ({
  record: node(name, { address: '127.0.0.1', labels: over.labels ?? {} }),
  alloc: { cpuMilli: over.usedCpu ?? 0, memoryBytes: 0, instances: used.length },
  ready: true,
  sameDeployment: 0,
  usedHostPorts: used,
});
const needs = (...ports: PortSpec[]): SchedulingNeeds => ({
  runtime: 'process',
  nodeSelector: {},
  cpuMilli: 100,
  memoryBytes: 0,
  containers: [{ ports }],
} as SchedulingNeeds);

const cases: { name: string; inst: SchedulingNeeds; nodes: NodeCandidate[]; node?: string; reason?: string }[] = [
  { name: 'no hostPort: used host ports do not matter', inst: needs({ containerPort: 8080 }), nodes: [view('a', [{ port: 8080, protocol: 'TCP' }])], node: 'a' },
  { name: 'a free hostPort fits', inst: needs({ containerPort: 80, hostPort: 8080 }), nodes: [view('a', [{ port: 8081, protocol: 'TCP' }])], node: 'a' },
  { name: 'the same hostPort and protocol does not', inst: needs({ containerPort: 80, hostPort: 8080 }), nodes: [view('a', [{ port: 8080, protocol: 'TCP' }])], reason: `0/1 nodes available: 1 ${REASON}` },
  { name: 'the other protocol does not conflict', inst: needs({ containerPort: 53, hostPort: 53, protocol: 'UDP' }), nodes: [view('a', [{ port: 53, protocol: 'TCP' }])], node: 'a' },
  { name: 'UDP against UDP conflicts', inst: needs({ containerPort: 53, hostPort: 53, protocol: 'UDP' }), nodes: [view('a', [{ port: 53, protocol: 'UDP' }])], reason: `0/1 nodes available: 1 ${REASON}` },
  {
    name: 'the node with the port free is chosen',
    inst: needs({ containerPort: 80, hostPort: 8080 }),
    nodes: [view('a', [{ port: 8080, protocol: 'TCP' }]), view('b', [], { usedCpu: 3000 })],
    node: 'b',
  },
  { name: 'an absent hostIP is the node address: equal to it written out', inst: needs({ containerPort: 80, hostPort: 8080, hostIP: '127.0.0.1' }), nodes: [view('a', [{ port: 8080, protocol: 'TCP' }])], reason: `0/1 nodes available: 1 ${REASON}` },
  { name: 'two different addresses of a node do not conflict', inst: needs({ containerPort: 80, hostPort: 8080, hostIP: '10.0.0.5' }), nodes: [view('a', [{ port: 8080, protocol: 'TCP' }])], node: 'a' },
  { name: '0.0.0.0 in use takes the port on every address', inst: needs({ containerPort: 80, hostPort: 8080, hostIP: '10.0.0.5' }), nodes: [view('a', [{ port: 8080, protocol: 'TCP', ip: '0.0.0.0' }])], reason: `0/1 nodes available: 1 ${REASON}` },
  { name: ':: wanted needs the port free on every address', inst: needs({ containerPort: 80, hostPort: 8080, hostIP: '::' }), nodes: [view('a', [{ port: 8080, protocol: 'TCP', ip: '10.0.0.5' }])], reason: `0/1 nodes available: 1 ${REASON}` },
  {
    name: 'reasons are counted with the others',
    inst: { ...needs({ containerPort: 80, hostPort: 8080 }), nodeSelector: { zone: 'a' } },
    nodes: [view('a', [{ port: 8080, protocol: 'TCP' }], { labels: { zone: 'a' } }), view('b', [{ port: 8080, protocol: 'TCP' }], { labels: { zone: 'a' } }), view('c', [], { labels: { zone: 'b' } })],
    reason: `0/3 nodes available: 2 ${REASON}, 1 node selector mismatch`,
  },
];

for (const c of cases) {
  test(`host ports: ${c.name}`, () => {
    const p = selectNode(c.inst, c.nodes);
    if (c.node) assert.equal('node' in p ? p.node : p.reason, c.node);
    else assert.equal('reason' in p ? p.reason : p.node, c.reason);
  });
}

test('requestedHostPorts: the fixed host ports of every container, protocol and address as written', () => {
  const containers = [{ ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81 }, { containerPort: 82, hostPort: 0 }] }, { ports: [{ containerPort: 53, protocol: 'UDP' as const, hostPort: 53, hostIP: '127.0.0.1' }] }];
  assert.deepEqual(requestedHostPorts(containers), [{ port: 8080, protocol: 'TCP' }, { port: 53, protocol: 'UDP', ip: '127.0.0.1' }]);
  assert.equal(hostPortsConflict([], [{ port: 1, protocol: 'TCP' }], '127.0.0.1'), false);
});
