import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeEndpoints, describePorts, type EndpointsInput } from '../../reconciler/services/compute-endpoints.ts';
import { allocateNodePorts } from '../../reconciler/services/node-ports.ts';
import { NODE_PORT_MAX, NODE_PORT_MIN, type EndpointsRecord, type ServiceRecord } from '../../state/records/service.ts';
import type { ActualInstance } from '../../state/records/instance.ts';
import { deployment, instance } from '../helpers/records.ts';

/**
 * nodePort allocation (stable across commits because the endpoints records are the allocation
 * table), and what agents are told to listen on: service ports and nodePorts, TCP and UDP, conflicts,
 * headless services, and target ports no container declares.
 */

const svc = (name: string, over: Partial<ServiceRecord> = {}): ServiceRecord => ({
  namespace: 'default',
  name,
  commit: 'c1',
  file: `${name}.yaml`,
  line: 1,
  type: 'NodePort',
  selector: { app: 'web' },
  ports: [{ name: 'http', port: 8000, targetPort: 'http' }],
  ...over,
});

const byKey = (records: EndpointsRecord[]) => new Map(records.map((r) => [`${r.namespace}/${r.name}`, r]));
const input = (services: ServiceRecord[], over: Partial<EndpointsInput> = {}): EndpointsInput => ({ services, instances: [], nodeStates: {}, splits: new Map(), previous: new Map(), now: 1, ...over });
const nodePortsOf = (records: EndpointsRecord[]) => Object.fromEntries(records.map((r) => [r.name, r.ports.map((p) => p.nodePort)]));
const sorted = (services: ServiceRecord[]) => [...services].sort((a, b) => (a.name < b.name ? -1 : 1));

/** Applies commits one after another, each pass reading the records the previous one wrote. */
function passes(...commits: ServiceRecord[][]): EndpointsRecord[][] {
  let previous = new Map<string, EndpointsRecord>();
  return commits.map((services) => {
    const out = computeEndpoints(input(sorted(services), { previous }));
    previous = byKey(out);
    return out;
  });
}

test('allocated nodePorts are in range, distinct, and the same for the same services', () => {
  const services = sorted(['a', 'b', 'c', 'd'].map((n) => svc(n, { ports: [{ name: 'http', port: 8000, targetPort: 'http' }, { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' }] })));
  const first = computeEndpoints(input(services));
  const all = first.flatMap((r) => r.ports.map((p) => p.nodePort!));
  assert.equal(all.length, 8);
  assert.equal(new Set(all).size, 8);
  assert.ok(all.every((n) => n >= NODE_PORT_MIN && n <= NODE_PORT_MAX), all.join(','));
  assert.deepEqual(nodePortsOf(computeEndpoints(input(services))), nodePortsOf(first));
});

// [name, commits, what must hold between the first and the last pass]
const stability: [string, ServiceRecord[][], (first: Record<string, (number | undefined)[]>, last: Record<string, (number | undefined)[]>) => void][] = [
  [
    'services added before and after keep everyone else where they were',
    [[svc('m')], [svc('a'), svc('m'), svc('z')]],
    (f, l) => assert.deepEqual(l.m, f.m),
  ],
  [
    'a removed service frees nothing that moves the others',
    [[svc('a'), svc('b'), svc('c')], [svc('a'), svc('c')]],
    (f, l) => assert.deepEqual([l.a, l.c], [f.a, f.c]),
  ],
  [
    'a new commit of the same service (another selector, another port added) keeps the ports it had',
    [[svc('a')], [svc('a', { selector: { app: 'other' }, ports: [{ name: 'http', port: 8000, targetPort: 'http' }, { name: 'admin', port: 9000, targetPort: 9000 }] })]],
    (f, l) => assert.equal(l.a![0], f.a![0]),
  ],
  [
    'an explicit nodePort removed from Git stays what it was',
    [[svc('a', { ports: [{ name: 'http', port: 8000, targetPort: 'http', nodePort: 31234 }] })], [svc('a')]],
    (_f, l) => assert.deepEqual(l.a, [31234]),
  ],
];

for (const [name, commits, check] of stability) {
  test(`nodePort allocation: ${name}`, () => {
    const out = passes(...commits);
    check(nodePortsOf(out[0]!), nodePortsOf(out[out.length - 1]!));
  });
}

test('nodePort allocation: Git wins: another service writing an allocated number gets it, the allocated one moves', () => {
  const [first] = passes([svc('a')]);
  const taken = first![0]!.ports[0]!.nodePort!;
  const b = svc('b', { ports: [{ name: 'http', port: 8000, targetPort: 'http', nodePort: taken }] });
  const [, last] = passes([svc('a')], [svc('a'), b]);
  const l = nodePortsOf(last!);
  assert.deepEqual(l.b, [taken]);
  assert.notEqual(l.a![0], taken);
});

test('nodePort allocation: a pure function of the services would move an old one for a new one; the previous records keep it', () => {
  const [z] = computeEndpoints(input([svc('z')]));
  const zPort = z!.ports[0]!.nodePort!;
  // A name sorting before "z" whose own first choice is z's port (found by trying: deterministic).
  const rival = Array.from({ length: 50_000 }, (_, i) => `a${i}`).find((n) => allocateNodePorts([svc(n)], new Map()).get(`default/${n}`)!.get('8000') === zPort);
  assert.ok(rival, "a name whose first choice is z's port");
  const both = [svc(rival), svc('z')];
  const fresh = byKey(computeEndpoints(input(both)));
  assert.equal(fresh.get(`default/${rival}`)!.ports[0]!.nodePort, zPort, 'without history the new service takes it');
  const kept = byKey(computeEndpoints(input(both, { previous: new Map([['default/z', z!]]) })));
  assert.equal(kept.get('default/z')!.ports[0]!.nodePort, zPort);
  assert.notEqual(kept.get(`default/${rival}`)!.ports[0]!.nodePort, zPort);
});

test('nodePorts avoid every service port and explicit nodePort; none left gives NodePortUnavailable', () => {
  const ports = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ name: `p${i}`, port: from + i, targetPort: 80 }));
  // ClusterIP services holding 30000-32767 except 30100 as service ports: the only free nodePort.
  const holders = Array.from({ length: 22 }, (_, k) => svc(`h${String(k).padStart(2, '0')}`, { type: undefined, ports: ports(NODE_PORT_MIN + k * 128, 128).filter((p) => p.port !== 30100 && p.port <= NODE_PORT_MAX) }));
  const wants = svc('zz', { ports: [{ name: 'a', port: 80, targetPort: 80 }, { name: 'b', port: 81, targetPort: 80 }] });
  const rec = computeEndpoints(input([...holders, wants])).find((r) => r.name === 'zz')!;
  assert.deepEqual(rec.ports.map((p) => p.nodePort), [30100, undefined]);
  const cond = rec.conditions.find((c) => c.type === 'NodePortUnavailable')!;
  assert.match(cond.message, /no free nodePort in 30000-32767 for port 81/);
  assert.deepEqual(rec.listeners!.filter((l) => l.nodePort).map((l) => l.port), [30100]);
});

test('listeners: ports and nodePorts per protocol; one number for TCP and UDP; ClusterIP and headless', () => {
  const dns = svc('dns', { ports: [{ name: 'dns', port: 53, targetPort: 'dns', protocol: 'UDP', nodePort: 30053 }, { name: 'dns-tcp', port: 53, targetPort: 'dns', nodePort: 30054 }] });
  const plain = svc('plain', { type: undefined, ports: [{ port: 8000, targetPort: 8080 }] });
  const headless = svc('quiet', { type: undefined, headless: true, ports: [{ port: 8001, targetPort: 8080 }] });
  const lb = svc('zlb', { type: 'LoadBalancer', ports: [{ port: 8002, targetPort: 8080, nodePort: 30002 }] });
  const r = byKey(computeEndpoints(input([dns, plain, headless, lb])));
  assert.deepEqual(r.get('default/dns')!.listeners, [
    { protocol: 'UDP', port: 53, target: '53/UDP' },
    { protocol: 'TCP', port: 53, target: '53' },
    { protocol: 'UDP', port: 30053, target: '53/UDP', nodePort: true },
    { protocol: 'TCP', port: 30054, target: '53', nodePort: true },
  ]);
  assert.deepEqual(r.get('default/dns')!.listen, [53]);
  assert.deepEqual(r.get('default/plain')!.listeners, [{ protocol: 'TCP', port: 8000, target: '8000' }]);
  assert.deepEqual([r.get('default/quiet')!.listeners, r.get('default/quiet')!.listen, r.get('default/quiet')!.headless], [[], [], true]);
  assert.deepEqual(r.get('default/zlb')!.listeners!.map((l) => l.port), [8002, 30002]);
  assert.equal(r.get('default/zlb')!.type, 'LoadBalancer');
  assert.equal(describePorts(r.get('default/dns')!.ports), '53:30053->dns/UDP,53:30054->dns');
  assert.equal(describePorts(r.get('default/plain')!.ports), '8000->8080');
});

test('a nodePort another service listens on as a port: PortConflict for the later one, per protocol', () => {
  const a = svc('a', { type: undefined, ports: [{ port: 30080, targetPort: 80 }] });
  const b = svc('b', { ports: [{ name: 'tcp', port: 80, targetPort: 80, nodePort: 30080 }, { name: 'udp', port: 80, targetPort: 80, protocol: 'UDP', nodePort: 30081 }] });
  const r = byKey(computeEndpoints(input([a, b])));
  const conflict = r.get('default/b')!.conditions.find((c) => c.type === 'PortConflict')!;
  assert.equal(conflict.message, 'nodePort 30080 is already used by service default/a: not listening there');
  assert.deepEqual(r.get('default/b')!.listeners!.map((l) => `${l.port}/${l.protocol}`), ['80/TCP', '80/UDP', '30081/UDP']);
});

function readyWeb(ordinal: number, ports: { name?: string; containerPort: number; hostPort: number }[]): ActualInstance {
  const i = instance(deployment(), ordinal, { node: 'node-1', phase: 'Running' });
  i.status!.hostIP = '127.0.0.2';
  i.status!.ports = ports;
  return i;
}

test('a targetPort (name or number) some ready instances do not declare: TargetPortNotFound, naming them', () => {
  const s = svc('web', { type: undefined, ports: [{ name: 'http', port: 8000, targetPort: 'http' }, { name: 'udp', port: 9000, targetPort: 9090, protocol: 'UDP' }] });
  const good = readyWeb(0, [{ name: 'http', containerPort: 8080, hostPort: 41000 }, { containerPort: 9090, hostPort: 41001 }]);
  const typo = readyWeb(1, [{ name: 'htp', containerPort: 8080, hostPort: 41002 }]);
  const [rec] = computeEndpoints(input([s], { instances: [good, typo] }));
  assert.deepEqual(rec!.endpoints.map((e) => e.ports), [{ '8000': 41000, '9000/UDP': 41001 }]);
  const c = rec!.conditions.find((x) => x.type === 'TargetPortNotFound')!;
  assert.equal(c.status, 'True');
  assert.equal(
    c.message,
    `port 8000: 1 of 2 ready instance(s) declare no port named "http" (${typo.record.id}), so get no traffic on it; port 9000/UDP: 1 of 2 ready instance(s) declare no containerPort 9090 (${typo.record.id}), so get no traffic on it`,
  );
  // All of them: no endpoint at all, and EndpointsReady says why.
  const [none] = computeEndpoints(input([s], { instances: [typo] }));
  assert.match(none!.conditions.find((x) => x.type === 'EndpointsReady')!.message, /matches app=web and declares one of its target ports \(1 match but declare none: see TargetPortNotFound\)/);
  // Fixed: the condition goes.
  const [fixed] = computeEndpoints(input([s], { instances: [good], previous: new Map([['default/web', rec!]]) }));
  assert.equal(fixed!.conditions.some((x) => x.type === 'TargetPortNotFound'), false);
});
