import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectNode, type NodeCandidate } from '../../reconciler/scheduler/select-node.ts';
import { node } from '../helpers/records.ts';

const Gi = 1024 ** 3;
const view = (name: string, over: Partial<NodeCandidate> & { labels?: Record<string, string>; cpu?: number; mem?: number; usedCpu?: number; usedMem?: number; cordoned?: boolean; runtimes?: ('process' | 'docker')[] } = {}): NodeCandidate => ({
  record: node(name, { labels: over.labels ?? {}, cpuMilli: over.cpu ?? 4000, memoryBytes: over.mem ?? 8 * Gi, cordoned: over.cordoned, runtimes: over.runtimes ?? ['process'] }),
  alloc: { cpuMilli: over.usedCpu ?? 0, memoryBytes: over.usedMem ?? 0, instances: 0 },
  ready: over.ready ?? true,
  sameDeployment: over.sameDeployment ?? 0,
});
const want = (over: { cpu?: number; mem?: number; selector?: Record<string, string>; runtime?: 'process' | 'docker' } = {}) => ({
  runtime: over.runtime ?? ('process' as const),
  nodeSelector: over.selector ?? {},
  cpuMilli: over.cpu ?? 100,
  memoryBytes: over.mem ?? 64 * 1024 ** 2,
});

const cases: { name: string; inst: ReturnType<typeof want>; nodes: NodeCandidate[]; node?: string; reason?: string }[] = [
  { name: 'no nodes', inst: want(), nodes: [], reason: '0/0 nodes available: no nodes registered' },
  { name: 'single fitting node', inst: want(), nodes: [view('a')], node: 'a' },
  { name: 'spread: fewer replicas of the same deployment wins', inst: want(), nodes: [view('a', { sameDeployment: 2 }), view('b', { sameDeployment: 1, usedCpu: 3000 })], node: 'b' },
  { name: 'least allocated on a spread tie', inst: want(), nodes: [view('a', { usedCpu: 2000 }), view('b', { usedCpu: 1000 })], node: 'b' },
  { name: 'name breaks full ties', inst: want(), nodes: [view('b'), view('a')], node: 'a' },
  { name: 'nodeSelector filters', inst: want({ selector: { disk: 'ssd' } }), nodes: [view('a'), view('b', { labels: { disk: 'ssd' } })], node: 'b' },
  { name: 'not-ready and cordoned nodes are skipped', inst: want(), nodes: [view('a', { ready: false }), view('b', { cordoned: true }), view('c', { usedCpu: 3900 })], node: 'c' },
  { name: 'runtime must be offered', inst: want({ runtime: 'docker' }), nodes: [view('a'), view('b', { runtimes: ['process', 'docker'] })], node: 'b' },
  {
    name: 'reasons are counted per node, most common first',
    inst: want({ mem: 4 * Gi, selector: { zone: 'a' } }),
    nodes: [view('a', { labels: { zone: 'a' }, usedMem: 6 * Gi }), view('b', { labels: { zone: 'a' }, mem: 2 * Gi }), view('c', { labels: { zone: 'b' } })],
    reason: '0/3 nodes available: 2 insufficient memory, 1 node selector mismatch',
  },
  { name: 'cpu exhausted', inst: want({ cpu: 500 }), nodes: [view('a', { usedCpu: 3600 })], reason: '0/1 nodes available: 1 insufficient cpu' },
  { name: 'exact fit is a fit', inst: want({ cpu: 400 }), nodes: [view('a', { usedCpu: 3600 })], node: 'a' },
];

for (const c of cases) {
  test(`selectNode: ${c.name}`, () => {
    const p = selectNode(c.inst, c.nodes);
    if (c.node) assert.equal('node' in p ? p.node : undefined, c.node);
    else assert.equal('reason' in p ? p.reason : undefined, c.reason);
  });
}
