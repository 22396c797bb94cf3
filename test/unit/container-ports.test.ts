import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dockerCreateOptions } from '../../agents/docker-spec.ts';
import { buildDesiredState } from '../../reconciler/desired/desired-state.ts';
import { loadManifests } from '../../reconciler/manifests/index.ts';
import { computeEndpoints, resolveTargetPort } from '../../reconciler/services/compute-endpoints.ts';
import type { PortStatus } from '../../state/records/instance.ts';
import { deployment, instance } from '../helpers/records.ts';

/**
 * Container ports as Kubernetes declares them: `protocol` (TCP, UDP), `hostPort` and `hostIP`,
 * from the manifest (schema and checks) to the records, the endpoints' target ports and Docker's
 * port bindings. TCP ports without the new fields must stay byte for byte what they were.
 */

/** A Deployment whose one container declares `ports` (a YAML flow sequence). */
const web = (ports: string, more = '') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: server
          command: [node, server.js]
          ports: ${ports}
${more}`;

function load(yaml: string) {
  return loadManifests([{ path: 'web.yaml', content: yaml }]);
}
const errorsOf = (yaml: string) => load(yaml).errors.map(String);

function records(yaml: string) {
  const loaded = load(yaml);
  assert.deepEqual(loaded.errors.map(String), []);
  return buildDesiredState(loaded.objects, 'c1', []).deployments[0]!;
}

test('protocol, hostPort and hostIP are honoured, not ignored as fields Gantry does not implement', () => {
  const res = load(web('[{ name: dns, containerPort: 53, protocol: UDP, hostPort: 5353, hostIP: 127.0.0.1 }]'));
  assert.deepEqual(res.errors.map(String), []);
  assert.deepEqual(res.warnings.map(String), []);
});

test('the schema takes TCP or UDP, and host ports 0-65535', () => {
  assert.match(errorsOf(web('[{ containerPort: 53, protocol: SCTP }]')).join('\n'), /ports\/0\/protocol: must be equal to one of: TCP, UDP/);
  assert.match(errorsOf(web('[{ containerPort: 80, hostPort: 70000 }]')).join('\n'), /ports\/0\/hostPort: must be <= 65535/);
  assert.match(errorsOf(web('[{ containerPort: 80, hostPort: -1 }]')).join('\n'), /ports\/0\/hostPort: must be >= 0/);
  assert.deepEqual(errorsOf(web('[{ containerPort: 80, hostPort: 0 }]')), [], 'hostPort 0 is "none", as in Kubernetes');
});

test('a containerPort is unique per protocol: 53/TCP and 53/UDP together, the same one twice not', () => {
  assert.deepEqual(errorsOf(web('[{ name: dns-tcp, containerPort: 53 }, { name: dns, containerPort: 53, protocol: UDP }]')), []);
  assert.deepEqual(errorsOf(web('[{ containerPort: 53 }, { containerPort: 53, protocol: TCP }]')), [
    'web.yaml:11:59 Deployment default/web /spec/template/spec/containers/0/ports/1/containerPort: duplicate containerPort 53 in container "server", also used by /spec/template/spec/containers/0/ports/0',
  ]);
  assert.deepEqual(errorsOf(web('[{ containerPort: 53, protocol: UDP }, { containerPort: 53, protocol: UDP }]')), [
    'web.yaml:11:74 Deployment default/web /spec/template/spec/containers/0/ports/1/containerPort: duplicate containerPort 53/UDP in container "server", also used by /spec/template/spec/containers/0/ports/0',
  ]);
});

test('a hostPort is used once per protocol and address in the whole pod; hostIP must be an IP address', () => {
  const second = `        - name: sidecar
          command: [node, sidecar.js]
          ports: [{ containerPort: 9090, hostPort: 8080 }, { containerPort: 9091, hostPort: 8080, protocol: UDP }, { containerPort: 9092, hostPort: 8081, hostIP: 127.0.0.3 }]
`;
  assert.deepEqual(errorsOf(web('[{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 8081, hostIP: 127.0.0.2 }]', second)), [
    'web.yaml:14:52 Deployment default/web /spec/template/spec/containers/1/ports/0/hostPort: duplicate hostPort 8080/TCP, also used by /spec/template/spec/containers/0/ports/0: both could not bind it',
  ]);
  // 0.0.0.0 is every address: it overlaps with any other.
  assert.equal(errorsOf(web('[{ containerPort: 80, hostPort: 8080, hostIP: 0.0.0.0 }, { containerPort: 81, hostPort: 8080, hostIP: 127.0.0.2 }]')).length, 1);
  assert.deepEqual(errorsOf(web('[{ containerPort: 80, hostIP: 127.0.0.300 }]')), [
    'web.yaml:11:48 Deployment default/web /spec/template/spec/containers/0/ports/0/hostIP: must be an IPv4 or IPv6 address',
  ]);
  assert.deepEqual(errorsOf(web('[{ containerPort: 80, hostPort: 80, hostIP: "::1" }]')), []);
});

test('records: TCP ports stay as they were (protocol omitted, also when written out); UDP, hostPort and hostIP only when set', () => {
  const tcp = records(web('[{ name: http, containerPort: 8080 }, { containerPort: 9090 }]'));
  // Pinned: the record and hashes the code before protocols gave these templates. The hash is of
  // what Git says (no default added: that would roll every deployment), so writing `protocol: TCP`
  // out is a template change, as it always was; the record is the same.
  assert.equal(JSON.stringify(tcp.template.containers[0]!.ports), '[{"name":"http","containerPort":8080},{"containerPort":9090}]');
  assert.deepEqual([tcp.templateHash, tcp.specHash], ['f2d35482cb', '5a4f4a0e36178957']);
  const explicit = records(web('[{ name: http, containerPort: 8080, protocol: TCP }, { containerPort: 9090 }]'));
  assert.equal(JSON.stringify(explicit.template.containers[0]!.ports), JSON.stringify(tcp.template.containers[0]!.ports));
  assert.deepEqual([explicit.templateHash, explicit.specHash], ['ea8de30b62', '64ff581189b33f61']);
  const all = records(web('[{ name: dns, containerPort: 53, protocol: UDP, hostPort: 5353, hostIP: 127.0.0.1 }, { containerPort: 80, hostPort: 0 }]'));
  assert.equal(JSON.stringify(all.template.containers[0]!.ports), '[{"name":"dns","containerPort":53,"protocol":"UDP","hostPort":5353,"hostIP":"127.0.0.1"},{"containerPort":80}]');
});

test('a target port resolves to the container port of the service port\'s protocol', () => {
  const st = {
    ports: [
      { name: 'dns-tcp', containerPort: 53, hostPort: 41000 },
      { name: 'dns', containerPort: 53, hostPort: 41001, protocol: 'UDP' },
      { name: 'legacy', containerPort: 5353, hostPort: 41002 },
      { name: 'stats', containerPort: 9125, hostPort: 41003, protocol: 'UDP' },
    ] satisfies PortStatus[],
  };
  assert.equal(resolveTargetPort(st, 53), 41000);
  assert.equal(resolveTargetPort(st, 53, 'TCP'), 41000);
  assert.equal(resolveTargetPort(st, 53, 'UDP'), 41001);
  assert.equal(resolveTargetPort(st, 'dns', 'UDP'), 41001);
  // A UDP port is never a TCP service's target.
  assert.equal(resolveTargetPort(st, 'stats', 'TCP'), undefined);
  assert.equal(resolveTargetPort(st, 9125), undefined);
  // Declared before container ports had a protocol (no protocol: TCP): a UDP service still reaches it.
  assert.equal(resolveTargetPort(st, 'legacy', 'UDP'), 41002);
  assert.equal(resolveTargetPort(st, 'dns-tcp', 'UDP'), 41000);
});

test('endpoints of a TCP+UDP service on one number map each service port to the host port of its protocol', () => {
  const d = deployment();
  const i = instance(d, 0, { node: 'node-1', phase: 'Running' });
  i.status!.ports = [{ name: 'dns-tcp', containerPort: 53, hostPort: 41000 }, { name: 'dns', containerPort: 53, hostPort: 41001, protocol: 'UDP' }];
  const [rec] = computeEndpoints({
    services: [{ namespace: 'default', name: 'dns', commit: 'c1', file: 's.yaml', line: 1, selector: { app: 'web' }, ports: [{ port: 53, targetPort: 53 }, { port: 53, targetPort: 53, protocol: 'UDP' }] }],
    instances: [i],
    nodeStates: {},
    splits: new Map(),
    previous: new Map(),
    now: 1,
  });
  assert.deepEqual(rec!.endpoints.map((e) => e.ports), [{ '53': 41000, '53/UDP': 41001 }]);
  assert.equal(rec!.conditions.find((c) => c.type === 'TargetPortNotFound'), undefined);
});

test('Docker publishes a UDP port as <containerPort>/udp, on the port\'s hostIP when it has one', () => {
  const d = deployment();
  const { record } = instance(d, 0, { node: 'node-1' });
  const container = { ...record.containers[0]!, image: 'busybox' };
  const ports: PortStatus[] = [
    { name: 'dns-tcp', containerPort: 53, hostPort: 41000 },
    { name: 'dns', containerPort: 53, hostPort: 41001, protocol: 'UDP' },
    { name: 'all', containerPort: 80, hostPort: 8080, hostIP: '0.0.0.0' },
  ];
  const opts = dockerCreateOptions({ node: 'node-1', scope: 's', address: '127.0.0.2', record, container, ports, identity: {}, restarts: 0, logMaxBytes: 1024 });
  assert.deepEqual(opts.ExposedPorts, { '53/tcp': {}, '53/udp': {}, '80/tcp': {} });
  assert.deepEqual(opts.HostConfig!.PortBindings, {
    '53/tcp': [{ HostIp: '127.0.0.2', HostPort: '41000' }],
    '53/udp': [{ HostIp: '127.0.0.2', HostPort: '41001' }],
    '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '8080' }],
  });
  // PORT is the first declared port whatever its protocol; each named one has its own variable.
  assert.ok(opts.Env!.includes('PORT=53') && opts.Env!.includes('PORT_DNS=53') && opts.Env!.includes('PORT_ALL=80'));
});
