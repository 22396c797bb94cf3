import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serviceEnv, serviceHost } from '../../agents/service-env.ts';
import type { EndpointsRecord } from '../../state/records/service.ts';

test('service host: a Docker container is given the gateway of its network, a process the agent address', () => {
  assert.equal(serviceHost('docker', '127.0.0.33', '172.17.0.1'), '172.17.0.1');
  assert.equal(serviceHost('process', '127.0.0.33', '172.17.0.1'), '127.0.0.33');
  // No gateway on this host (an engine elsewhere, none learned yet): the agent address, as before.
  assert.equal(serviceHost('docker', '127.0.0.33', undefined), '127.0.0.33');
  assert.equal(serviceHost('process', '127.0.0.33', undefined), '127.0.0.33');
});

test('service env of a container: <NAME>_SERVICE_HOST is the gateway, ports unchanged', () => {
  const rec: EndpointsRecord = { namespace: 'shop', name: 'api', ports: [{ name: 'http', port: 8000, targetPort: 'http' }], listen: [8000], endpoints: [], conditions: [], updatedAt: 0 };
  assert.deepEqual(serviceEnv([rec], 'shop', serviceHost('docker', '127.0.0.33', '172.17.0.1')), { API_SERVICE_HOST: '172.17.0.1', API_SERVICE_PORT: '8000', API_SERVICE_PORT_HTTP: '8000' });
});
