import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NodeTable, type PickOptions } from '../../reconciler/scheduler/node-table.ts';
import { selectNode, type NodeCandidate, type SchedulingNeeds } from '../../reconciler/scheduler/select-node.ts';
import type { HostPortUse } from '../../reconciler/scheduler/host-ports.ts';
import type { NodeRecord } from '../../state/records/node.ts';
import { node } from '../helpers/records.ts';

/**
 * NodeTable.pick makes selectNode's decision without sorting, and explain gives its reason: both
 * are checked against selectNode itself, case by case and on random clusters.
 */

/** A small deterministic generator (mulberry32): the same random clusters on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const Gi = 1024 ** 3;
const Mi = 1024 ** 2;

interface Row {
  name: string;
  labels?: Record<string, string>;
  cpu?: number;
  mem?: number;
  usedCpu?: number;
  usedMem?: number;
  instances?: number;
  maxInstances?: number;
  cordoned?: boolean;
  runtimes?: ('process' | 'docker')[];
  ready?: boolean;
  spread?: number;
  ports?: HostPortUse[];
}

function views(rows: Row[]): NodeCandidate[] {
  return rows.map((r) => ({
    record: node(r.name, { labels: r.labels ?? {}, cpuMilli: r.cpu ?? 4000, memoryBytes: r.mem ?? 8 * Gi, runtimes: r.runtimes ?? ['process'], ...(r.cordoned ? { cordoned: true } : {}), ...(r.maxInstances !== undefined ? { maxInstances: r.maxInstances } : {}) }),
    alloc: { cpuMilli: r.usedCpu ?? 0, memoryBytes: r.usedMem ?? 0, instances: r.instances ?? 0 },
    ready: r.ready ?? true,
    sameDeployment: r.spread ?? 0,
    ...(r.ports ? { usedHostPorts: r.ports } : {}),
  }));
}

/** The table of these views and the options that say the same (by name order, as the table indexes). */
function tableOf(vs: NodeCandidate[], hostPorts?: HostPortUse[]): { table: NodeTable; o: PickOptions } {
  const table = new NodeTable(vs.map((v) => ({ record: v.record, alloc: v.alloc, heartbeatAt: 0 })));
  const byName = new Map(vs.map((v) => [v.record.name, v]));
  const ordered = table.names.map((n) => byName.get(n)!);
  return {
    table,
    o: {
      ready: Uint8Array.from(ordered, (v) => (v.ready ? 1 : 0)),
      spread: Int32Array.from(ordered, (v) => v.sameDeployment),
      ...(hostPorts ? { hostPorts, usedHostPorts: ordered.map((v) => v.usedHostPorts ?? []) } : {}),
    },
  };
}

const want = (over: Partial<SchedulingNeeds> = {}): SchedulingNeeds => ({ runtime: 'process', nodeSelector: {}, cpuMilli: 100, memoryBytes: 64 * Mi, ...over });
const http = (port: number): Pick<SchedulingNeeds, 'containers'> => ({ containers: [{ name: 'c', command: [], args: [], env: [], ports: [{ name: 'http', containerPort: 80, hostPort: port }], cpuMilli: 0, memoryBytes: 0 }] });

const cases: { name: string; inst: SchedulingNeeds; rows: Row[]; node?: string; reason?: string }[] = [
  { name: 'no nodes', inst: want(), rows: [], reason: '0/0 nodes available: no nodes registered' },
  { name: 'single fitting node', inst: want(), rows: [{ name: 'a' }], node: 'a' },
  { name: 'spread first, even against a fuller node', inst: want(), rows: [{ name: 'a', spread: 2 }, { name: 'b', spread: 1, usedCpu: 3000 }], node: 'b' },
  { name: 'least allocated on a spread tie', inst: want(), rows: [{ name: 'a', usedCpu: 2000 }, { name: 'b', usedCpu: 1000 }], node: 'b' },
  { name: 'memory counts in the free share', inst: want(), rows: [{ name: 'a', usedMem: 4 * Gi }, { name: 'b', usedCpu: 1000 }], node: 'b' },
  { name: 'name breaks full ties, whatever the order given', inst: want(), rows: [{ name: 'c' }, { name: 'b' }, { name: 'a' }], node: 'a' },
  { name: 'a lower spread that does not fit loses to one that does', inst: want({ cpuMilli: 500 }), rows: [{ name: 'a', usedCpu: 3600 }, { name: 'b', spread: 3 }], node: 'b' },
  { name: 'nodeSelector filters', inst: want({ nodeSelector: { disk: 'ssd' } }), rows: [{ name: 'a' }, { name: 'b', labels: { disk: 'ssd' } }], node: 'b' },
  { name: 'every selector label must match', inst: want({ nodeSelector: { disk: 'ssd', zone: 'a' } }), rows: [{ name: 'a', labels: { disk: 'ssd' } }, { name: 'b', labels: { disk: 'ssd', zone: 'a' } }], node: 'b' },
  { name: 'not ready and cordoned are skipped', inst: want(), rows: [{ name: 'a', ready: false }, { name: 'b', cordoned: true }, { name: 'c', usedCpu: 3900 }], node: 'c' },
  { name: 'runtime must be offered', inst: want({ runtime: 'docker' }), rows: [{ name: 'a' }, { name: 'b', runtimes: ['process', 'docker'] }], node: 'b' },
  { name: 'maxInstances', inst: want(), rows: [{ name: 'a', instances: 2, maxInstances: 2 }, { name: 'b', instances: 109, usedCpu: 3000 }], node: 'b' },
  { name: 'the default maxInstances is 110', inst: want(), rows: [{ name: 'a', instances: 110 }], reason: '0/1 nodes available: 1 too many instances' },
  { name: 'exact fit is a fit', inst: want({ cpuMilli: 400 }), rows: [{ name: 'a', usedCpu: 3600 }], node: 'a' },
  { name: 'cpu exhausted', inst: want({ cpuMilli: 500 }), rows: [{ name: 'a', usedCpu: 3600 }], reason: '0/1 nodes available: 1 insufficient cpu' },
  {
    name: 'reasons are counted per node, most common first',
    inst: want({ memoryBytes: 4 * Gi, nodeSelector: { zone: 'a' } }),
    rows: [{ name: 'a', labels: { zone: 'a' }, usedMem: 6 * Gi }, { name: 'b', labels: { zone: 'a' }, mem: 2 * Gi }, { name: 'c', labels: { zone: 'b' } }],
    reason: '0/3 nodes available: 2 insufficient memory, 1 node selector mismatch',
  },
  {
    name: 'the first filter a node fails is its reason',
    inst: want({ runtime: 'docker', cpuMilli: 9000 }),
    rows: [{ name: 'a', ready: false }, { name: 'b', cordoned: true }, { name: 'c' }, { name: 'd', runtimes: ['docker'] }],
    reason: '0/4 nodes available: 1 insufficient cpu, 1 node cordoned, 1 node not ready, 1 runtime not offered',
  },
  { name: 'a free hostPort fits', inst: want(http(8080)), rows: [{ name: 'a', ports: [{ port: 9090, protocol: 'TCP' }] }], node: 'a' },
  {
    name: 'a taken hostPort moves the instance to the node where it is free',
    inst: want(http(8080)),
    rows: [{ name: 'a', ports: [{ port: 8080, protocol: 'TCP' }] }, { name: 'b', usedCpu: 3000 }],
    node: 'b',
  },
  {
    name: 'a taken hostPort everywhere is the reason',
    inst: want(http(8080)),
    rows: [{ name: 'a', ports: [{ port: 8080, protocol: 'TCP', ip: '0.0.0.0' }] }],
    reason: "0/1 nodes available: 1 node(s) didn't have free ports for the requested pod ports",
  },
];

for (const c of cases) {
  test(`NodeTable: ${c.name}`, () => {
    const vs = views(c.rows);
    const hostPorts = c.inst.containers ? c.inst.containers.flatMap((k) => k.ports.flatMap((p) => (p.hostPort ? [{ port: p.hostPort, protocol: p.protocol ?? 'TCP' }] : []))) : undefined;
    const { table, o } = tableOf(vs, hostPorts);
    const i = table.pick(c.inst, o);
    const reference = selectNode(c.inst, vs);
    if (c.node) {
      assert.equal(i >= 0 ? table.names[i] : undefined, c.node);
      assert.equal('node' in reference ? reference.node : undefined, c.node, 'selectNode agrees');
    } else {
      assert.equal(i, -1);
      assert.equal(table.explain(c.inst, o), c.reason);
      assert.equal('reason' in reference ? reference.reason : undefined, c.reason, 'selectNode agrees');
    }
  });
}

test('NodeTable: the same node and reason as selectNode on random clusters', () => {
  const random = rng(7);
  const pickOf = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  for (let round = 0; round < 300; round++) {
    const rows: Row[] = Array.from({ length: 1 + Math.floor(random() * 40) }, (_, i) => ({
      name: `n${String(Math.floor(random() * 1000)).padStart(3, '0')}-${i}`,
      labels: { zone: pickOf(['a', 'b', 'c']) },
      // Coarse values, so that ties (equal free shares) are common.
      cpu: pickOf([1000, 2000, 4000]),
      mem: pickOf([1, 2, 4]) * Gi,
      usedCpu: pickOf([0, 250, 500, 1000]),
      usedMem: pickOf([0, 0.5, 1]) * Gi,
      instances: pickOf([0, 1, 5, 110]),
      cordoned: random() < 0.1,
      runtimes: random() < 0.5 ? ['process'] : ['process', 'docker'],
      ready: random() > 0.1,
      spread: pickOf([0, 0, 1, 2]),
    }));
    const inst = want({ runtime: random() < 0.3 ? 'docker' : 'process', nodeSelector: random() < 0.3 ? { zone: pickOf(['a', 'b']) } : {}, cpuMilli: pickOf([100, 500, 1000, 3000]), memoryBytes: pickOf([64 * Mi, Gi, 3 * Gi]) });
    const vs = views(rows);
    const { table, o } = tableOf(vs);
    const i = table.pick(inst, o);
    const reference = selectNode(inst, vs);
    if ('node' in reference) assert.equal(table.names[i], reference.node, `round ${round}`);
    else {
      assert.equal(i, -1, `round ${round}`);
      assert.equal(table.explain(inst, o), reference.reason, `round ${round}`);
    }
  }
});

test('NodeTable: bookings move the next pick; the bind script\'s answers (cordoned, gone, allocation) are kept', () => {
  const records: NodeRecord[] = ['a', 'b', 'c'].map((n) => node(n, { cpuMilli: 1000 }));
  const table = new NodeTable(records.map((record) => ({ record, alloc: { cpuMilli: 0, memoryBytes: 0, instances: 0 }, heartbeatAt: 1000 })));
  const o: PickOptions = { ready: table.readiness(1000, 20_000), spread: new Int32Array(3) };
  const inst = want({ cpuMilli: 600 });
  assert.equal(table.names[table.pick(inst, o)], 'a');
  table.reserve(0, inst, 1);
  assert.equal(table.names[table.pick(inst, o)], 'b', 'a is booked');
  table.reserve(0, inst, -1);
  assert.equal(table.names[table.pick(inst, o)], 'a', 'and given back');
  table.cordon(0);
  assert.equal(table.names[table.pick(inst, o)], 'b', 'cordoned by the script: skipped');
  table.drop(1);
  assert.equal(table.names[table.pick(inst, o)], 'c', 'gone: skipped');
  table.setAlloc(2, { cpuMilli: 500, memoryBytes: 0, instances: 1 });
  assert.equal(table.pick(inst, o), -1);
  assert.equal(table.explain(inst, o), '0/2 nodes available: 1 insufficient cpu, 1 node cordoned', 'a gone node is not counted');
  assert.deepEqual([...table.readiness(30_000, 20_000)], [0, 0, 0], 'heartbeats older than the timeout');
  assert.deepEqual([...table.spreadOf(new Map([['c', 2], ['ghost', 1]]))], [0, 0, 2], 'counts of unknown nodes are ignored');
});

test('NodeTable: still selectNode\'s choice after every booking, giving back and fresh allocation', () => {
  const random = rng(11);
  for (let round = 0; round < 40; round++) {
    // Beyond the table's 64 most free kept per kind, some rounds: its bound on the others is tried.
    const rows: Row[] = Array.from({ length: 2 + Math.floor(random() * (round % 2 === 0 ? 30 : 150)) }, (_, i) => ({ name: `n${i}`, cpu: 1000, mem: 2 * Gi, usedCpu: random() < 0.5 ? 0 : 500 }));
    const vs = views(rows);
    const { table, o } = tableOf(vs);
    const inst = want({ cpuMilli: 100 + Math.floor(random() * 3) * 100 });
    for (let step = 0; step < 200; step++) {
      const i = table.pick(inst, o);
      const reference = selectNode(inst, table.names.map((_, k) => table.candidate(k, o)));
      assert.equal(i >= 0 ? table.names[i] : undefined, 'node' in reference ? reference.node : undefined, `round ${round} step ${step}`);
      const k = Math.floor(random() * table.size);
      const r = random();
      if (r < 0.8 && i >= 0) {
        table.reserve(i, inst, 1);
        o.spread[i]! += 1;
      } else if (r < 0.9 && table.instances[k]! > 0) table.reserve(k, inst, -1);
      else table.setAlloc(k, { cpuMilli: Math.floor(random() * 4) * 250, memoryBytes: 0, instances: 0 });
    }
  }
});
