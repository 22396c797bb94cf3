import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadManifests } from '../../reconciler/manifests/index.ts';
import { buildDesiredState } from '../../reconciler/desired/desired-state.ts';

/**
 * Service types, nodePorts, protocols and cluster IPs as the loader reads them: what is an error at
 * file:line, what is a warning, and the records a valid one becomes (defaults left out, so records
 * of services written before these fields existed stay byte for byte the same).
 */

const service = (spec: string, name = 'web') => `apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec:
  selector: { app: web }
${spec}`;
const load = (files: Record<string, string>) => loadManifests(Object.entries(files).map(([path, content]) => ({ path, content })));

// [name, files, errors, warnings]: each line as `gantry validate` prints it.
const cases: [string, Record<string, string>, string[], string[]][] = [
  ['ClusterIP, TCP: as before', { 's.yaml': service('  ports: [{ port: 80 }]') }, [], []],
  ['NodePort with a nodePort in the range', { 's.yaml': service('  type: NodePort\n  ports: [{ port: 80, nodePort: 30080 }]') }, [], []],
  ['NodePort without one: allocated later, not an error', { 's.yaml': service('  type: NodePort\n  ports: [{ port: 80 }]') }, [], []],
  [
    'a nodePort outside 30000-32767',
    { 's.yaml': service('  type: NodePort\n  ports:\n    - { name: a, port: 80, nodePort: 8080 }\n    - { name: b, port: 81, nodePort: 32768 }') },
    [
      "s.yaml:8:38 Service default/web /spec/ports/0/nodePort: must be in the node port range 30000-32767 (Kubernetes' default), or be left out to have one allocated",
      "s.yaml:9:38 Service default/web /spec/ports/1/nodePort: must be in the node port range 30000-32767 (Kubernetes' default), or be left out to have one allocated",
    ],
    [],
  ],
  [
    'a nodePort on a ClusterIP service (explicit or by default)',
    { 's.yaml': service('  ports: [{ port: 80, nodePort: 30080 }]'), 't.yaml': service('  type: ClusterIP\n  ports: [{ port: 80, nodePort: 30081 }]', 'api') },
    [
      's.yaml:6:33 Service default/web /spec/ports/0/nodePort: may only be set when the service type is NodePort or LoadBalancer, not ClusterIP',
      't.yaml:7:33 Service default/api /spec/ports/0/nodePort: may only be set when the service type is NodePort or LoadBalancer, not ClusterIP',
    ],
    [],
  ],
  [
    'a nodePort twice in one service: an error per protocol, fine across TCP and UDP',
    { 's.yaml': service('  type: NodePort\n  ports:\n    - { name: a, port: 80, nodePort: 30080 }\n    - { name: b, port: 81, nodePort: 30080 }\n    - { name: c, port: 82, nodePort: 30080, protocol: UDP }') },
    ['s.yaml:9:38 Service default/web /spec/ports/1/nodePort: duplicate nodePort 30080 (also /spec/ports/0)'],
    [],
  ],
  [
    'a nodePort another Service wrote first (path order), whatever the protocol',
    {
      'a.yaml': service('  type: NodePort\n  ports: [{ port: 80, nodePort: 30080 }]', 'first'),
      'b.yaml': service('  type: LoadBalancer\n  ports: [{ port: 81, nodePort: 30080, protocol: UDP }]', 'second'),
    },
    ['b.yaml:7:33 Service default/second /spec/ports/0/nodePort: nodePort 30080 is already used by Service default/first at a.yaml:1:1'],
    ['b.yaml:6:3 Service default/second /spec/type: LoadBalancer is served as NodePort: every agent listens on each nodePort, but Gantry provisions no external load balancer (status.loadBalancer stays empty)'],
  ],
  [
    'a nodePort equal to a port of the same service',
    { 's.yaml': service('  type: NodePort\n  ports:\n    - { name: a, port: 30080 }\n    - { name: b, port: 81, nodePort: 30080 }') },
    ["s.yaml:9:38 Service default/web /spec/ports/1/nodePort: is also the port of /spec/ports/0: both would listen on each agent's address"],
    [],
  ],
  [
    'one port number for TCP and UDP is fine; twice for one protocol is not',
    {
      'dns.yaml': service('  ports:\n    - { name: dns, port: 53, protocol: UDP }\n    - { name: dns-tcp, port: 53, protocol: TCP }', 'dns'),
      'bad.yaml': service('  ports:\n    - { name: a, port: 53, protocol: UDP }\n    - { name: b, port: 53, protocol: UDP }', 'bad'),
    },
    ['bad.yaml:8:24 Service default/bad /spec/ports/1/port: duplicate port 53/UDP (also /spec/ports/0)'],
    [],
  ],
  ['SCTP is not run', { 's.yaml': service('  ports: [{ port: 80, protocol: SCTP }]') }, ['s.yaml:6:33 Service default/web /spec/ports/0/protocol: must be equal to one of: TCP, UDP'], []],
  ['ExternalName is not run', { 's.yaml': service('  type: ExternalName\n  ports: [{ port: 80 }]') }, ['s.yaml:6:9 Service default/web /spec/type: must be equal to one of: ClusterIP, NodePort, LoadBalancer'], []],
  [
    'LoadBalancer: served as NodePort, with a warning',
    { 's.yaml': service('  type: LoadBalancer\n  ports: [{ port: 80 }]') },
    [],
    ['s.yaml:6:3 Service default/web /spec/type: LoadBalancer is served as NodePort: every agent listens on each nodePort, but Gantry provisions no external load balancer (status.loadBalancer stays empty)'],
  ],
  [
    'clusterIP None is headless; another value is ignored',
    { 'h.yaml': service('  clusterIP: None\n  ports: [{ port: 80 }]', 'headless'), 'i.yaml': service('  clusterIP: 10.96.0.10\n  clusterIPs: [10.96.0.10]\n  ports: [{ port: 80 }]', 'ip') },
    [],
    [
      'h.yaml:6:3 Service default/headless /spec/clusterIP: headless: no agent listens for this service (Gantry has no cluster DNS to hand out its endpoints); the endpoints are listed by `gantry get services` and the API',
      'i.yaml:6:3 Service default/ip /spec/clusterIP: ignored: Gantry allocates no cluster IPs; "10.96.0.10" is not used, the service is served on each agent\'s address',
      'i.yaml:7:16 Service default/ip /spec/clusterIPs/0: ignored: Gantry allocates no cluster IPs; "10.96.0.10" is not used, the service is served on each agent\'s address',
    ],
  ],
  [
    'a headless NodePort, and clusterIPs that contradict clusterIP',
    { 'h.yaml': service('  type: NodePort\n  clusterIP: None\n  ports: [{ port: 80 }]'), 'i.yaml': service('  clusterIP: None\n  clusterIPs: [10.96.0.10]\n  ports: [{ port: 80 }]', 'ip') },
    [
      'h.yaml:7:14 Service default/web /spec/clusterIP: may not be None when the service type is NodePort: a headless service is not exposed on nodes',
      'i.yaml:7:16 Service default/ip /spec/clusterIPs/0: must agree with clusterIP "None": "None" in both or in neither',
    ],
    [
      'h.yaml:7:3 Service default/web /spec/clusterIP: headless: no agent listens for this service (Gantry has no cluster DNS to hand out its endpoints); the endpoints are listed by `gantry get services` and the API',
      'i.yaml:6:3 Service default/ip /spec/clusterIP: headless: no agent listens for this service (Gantry has no cluster DNS to hand out its endpoints); the endpoints are listed by `gantry get services` and the API',
      'i.yaml:7:16 Service default/ip /spec/clusterIPs/0: ignored: Gantry allocates no cluster IPs; "10.96.0.10" is not used, the service is served on each agent\'s address',
    ],
  ],
  [
    'fields of these types that Gantry does not honour are still dropped with the generic warning',
    { 's.yaml': service('  type: LoadBalancer\n  loadBalancerIP: 1.2.3.4\n  externalTrafficPolicy: Local\n  ports: [{ port: 80 }]') },
    [],
    [
      's.yaml:6:3 Service default/web /spec/type: LoadBalancer is served as NodePort: every agent listens on each nodePort, but Gantry provisions no external load balancer (status.loadBalancer stays empty)',
      's.yaml:7:3 Service default/web /spec/loadBalancerIP: ignored: Gantry does not implement /spec/loadBalancerIP',
      's.yaml:8:3 Service default/web /spec/externalTrafficPolicy: ignored: Gantry does not implement /spec/externalTrafficPolicy',
    ],
  ],
];

for (const [name, files, errors, warnings] of cases) {
  test(`Service: ${name}`, () => {
    const r = load(files);
    assert.deepEqual(r.errors.map(String), errors);
    assert.deepEqual(r.warnings.map(String), warnings);
    if (warnings.length > 0) assert.ok(r.warnings.every((w) => w.code === 'IGNORED_FIELD'));
  });
}

test('records: defaults left out (a ClusterIP TCP record is as before); type, headless, UDP and Git nodePorts kept', () => {
  const loaded = load({
    'a.yaml': service('  ports: [{ port: 80 }]', 'plain'),
    'b.yaml': service('  type: NodePort\n  ports:\n    - { name: http, port: 80, targetPort: http, nodePort: 30080 }\n    - { name: dns, port: 53, protocol: UDP }', 'np'),
    'c.yaml': service('  clusterIP: None\n  ports: [{ port: 80, protocol: TCP }]', 'headless'),
  });
  assert.deepEqual(loaded.errors.map(String), []);
  const services = buildDesiredState(loaded.objects, 'c1', []).services!;
  const byName = new Map(services.map((s) => [s.name, s]));
  assert.equal(JSON.stringify(byName.get('plain')), JSON.stringify({ namespace: 'default', name: 'plain', commit: 'c1', file: 'a.yaml', line: 1, selector: { app: 'web' }, ports: [{ port: 80, targetPort: 80 }] }));
  assert.deepEqual(byName.get('np')!.type, 'NodePort');
  assert.deepEqual(byName.get('np')!.ports, [
    { name: 'http', port: 80, targetPort: 'http', nodePort: 30080 },
    { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' },
  ]);
  assert.equal(byName.get('headless')!.headless, true);
  assert.equal(byName.get('headless')!.type, undefined);
  assert.deepEqual(byName.get('headless')!.ports, [{ port: 80, targetPort: 80 }]);
});

test('the loaded object keeps protocol UDP (normalization defaults only a missing one to TCP)', () => {
  const r = load({ 's.yaml': service('  ports:\n    - { name: a, port: 53, protocol: UDP }\n    - { name: b, port: 54 }') });
  const m = r.objects[0]!.manifest;
  assert.ok(m.kind === 'Service');
  assert.deepEqual(m.spec.ports.map((p) => p.protocol as string), ['UDP', 'TCP']);
});
