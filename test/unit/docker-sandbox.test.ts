import assert from 'node:assert/strict';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { joinSandbox, sandboxCreateOptions, sandboxHostname } from '../../agents/docker-sandbox.ts';
import { dockerCreateOptions } from '../../agents/docker-spec.ts';
import type { InstanceRecord } from '../../state/records/instance.ts';

/** The pure parts of the Docker pod sandbox; the engine's side is test/integration/docker-sandbox.test.ts. */

function record(overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id: 'default.web-abc12345-0',
    uid: 'uid-1',
    namespace: 'default',
    deployment: 'web',
    templateHash: 'abc12345',
    ordinal: 0,
    commit: '0'.repeat(40),
    labels: { app: 'web' },
    containers: [{ name: 'main', image: 'gantry-test/busybox:latest', command: ['httpd'], args: [], env: [], ports: [{ name: 'http', containerPort: 8080 }], cpuMilli: 100, memoryBytes: 32 * 1024 ** 2 }],
    cpuMilli: 100,
    memoryBytes: 32 * 1024 ** 2,
    nodeSelector: {},
    restartPolicy: 'Always',
    runtime: 'docker',
    terminationGracePeriodSeconds: 2,
    createdAt: 0,
    node: 'node-1',
    ...overrides,
  };
}

const ports = [
  { name: 'http', containerPort: 8080, hostPort: 31000 },
  { containerPort: 53, hostPort: 31001, protocol: 'UDP' as const, hostIP: '0.0.0.0' },
];

test('joinSandbox: the network of the sandbox, and nothing the engine refuses with that mode', () => {
  const app = dockerCreateOptions({ node: 'node-1', scope: 's', address: '127.0.0.1', record: record(), container: record().containers[0]!, ports, identity: { GANTRY_NODE: 'node-1' }, restarts: 0, logMaxBytes: 1024 });
  const withAll: Docker.ContainerCreateOptions = {
    ...app,
    Hostname: 'web',
    Domainname: 'example.test',
    NetworkingConfig: { EndpointsConfig: { bridge: {} } },
    HostConfig: { ...app.HostConfig, PublishAllPorts: true, Dns: ['1.1.1.1'], DnsSearch: ['x'], DnsOptions: ['ndots:2'], ExtraHosts: ['a:1.2.3.4'], Links: ['b:b'], Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '65536' } },
  };
  const before = structuredClone(withAll);
  const joined = joinSandbox(withAll, 'abc123');
  assert.deepEqual(withAll, before, 'the input is not changed');

  assert.equal(joined.HostConfig?.NetworkMode, 'container:abc123');
  for (const key of ['Hostname', 'Domainname', 'ExposedPorts', 'NetworkingConfig'] as const) assert.equal(key in joined, false, key);
  for (const key of ['PortBindings', 'PublishAllPorts', 'Dns', 'DnsSearch', 'DnsOptions', 'ExtraHosts', 'Links'] as const) assert.equal(key in joined.HostConfig!, false, key);
  assert.deepEqual(joined.HostConfig?.Sysctls, { 'kernel.msgmax': '65536' }, 'only the net.* sysctls go');

  // Everything else stays as the app container had it.
  const { HostConfig: h, ...rest } = joined;
  assert.deepEqual(rest, { name: app.name, Image: app.Image, Entrypoint: app.Entrypoint, Cmd: app.Cmd, Env: app.Env, Labels: app.Labels, StopTimeout: app.StopTimeout });
  assert.equal(h?.Init, true);
  assert.deepEqual(h?.RestartPolicy, { Name: 'no' });
  assert.deepEqual(h?.LogConfig, app.HostConfig?.LogConfig);
  assert.equal(h?.Memory, app.HostConfig?.Memory);
});

test('joinSandbox: options without a HostConfig get one', () => {
  assert.deepEqual(joinSandbox({ Image: 'x' }, 'id'), { Image: 'x', HostConfig: { NetworkMode: 'container:id' } });
});

test('sandboxCreateOptions: the pod ports published as for an app container, on the bridge, labelled as the sandbox', () => {
  const r = record();
  const opts = sandboxCreateOptions({ node: 'node-1', scope: 's', address: '127.0.0.1', record: r, ports, image: 'gantry/pause:0123456789ab', logMaxBytes: 4096 });
  const app = dockerCreateOptions({ node: 'node-1', scope: 's', address: '127.0.0.1', record: r, container: r.containers[0]!, ports, identity: {}, restarts: 0, logMaxBytes: 4096 });
  assert.equal(opts.name, 'gantry-node-1-default.web-abc12345-0-POD');
  assert.equal(opts.Image, 'gantry/pause:0123456789ab');
  assert.equal(opts.Hostname, 'web-abc12345-0');
  assert.deepEqual(opts.ExposedPorts, app.ExposedPorts);
  assert.deepEqual(opts.HostConfig?.PortBindings, app.HostConfig?.PortBindings);
  assert.deepEqual(opts.HostConfig?.PortBindings, { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '31000' }], '53/udp': [{ HostIp: '0.0.0.0', HostPort: '31001' }] });
  assert.equal(opts.HostConfig?.NetworkMode, 'bridge');
  assert.deepEqual(opts.HostConfig?.RestartPolicy, { Name: 'no' });
  assert.equal(opts.HostConfig?.Init, undefined);
  assert.deepEqual(opts.HostConfig?.LogConfig, app.HostConfig?.LogConfig);
  assert.equal(opts.Labels?.['dev.gantry.sandbox'], 'true');
  assert.equal(opts.Labels?.['dev.gantry.container'], 'POD');
  assert.equal(opts.Labels?.['dev.gantry.instance'], r.id);
  assert.equal(opts.Labels?.['dev.gantry.uid'], r.uid);
  assert.equal(opts.Labels?.['dev.gantry.scope'], 's');
});

test('sandboxHostname: the pod name, cut to a DNS label', () => {
  assert.equal(sandboxHostname(record()), 'web-abc12345-0');
  const long = `default.${'a'.repeat(62)}-x-0`;
  assert.equal(sandboxHostname(record({ id: long })), 'a'.repeat(62), 'at most 63 characters, no trailing dash');
});
