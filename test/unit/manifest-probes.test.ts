import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Container } from '../../schemas/generated/index.ts';
import { checkProbes, resolveProbes } from '../../reconciler/manifests/probes.ts';

const c = (extra: Partial<Container>): Container => ({ name: 'web', command: ['x'], ports: [{ name: 'http', containerPort: 8080 }], ...extra });

test('probes resolve with Kubernetes defaults and named ports', () => {
  assert.deepEqual(resolveProbes(c({ readinessProbe: { httpGet: { port: 'http' } }, livenessProbe: { tcpSocket: { port: 9000 }, periodSeconds: 2 } })), {
    readinessProbe: { httpGet: { path: '/', port: 8080 }, initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
    livenessProbe: { tcpSocket: { port: 9000 }, initialDelaySeconds: 0, periodSeconds: 2, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 },
  });
  assert.deepEqual(resolveProbes(c({})), {});
});

test('probe checks: one action, known port names, successThreshold 1 for liveness and startup', () => {
  const messages = (x: Partial<Container>) => checkProbes(c(x), '/c').map((i) => `${i.pointer}: ${i.message}`);
  assert.deepEqual(messages({ readinessProbe: { httpGet: { port: 'http' }, successThreshold: 2 } }), []);
  assert.deepEqual(messages({ readinessProbe: {} }), ['/c/readinessProbe: must have exactly one of httpGet, tcpSocket, grpc or exec (has none)']);
  assert.deepEqual(messages({ livenessProbe: { httpGet: { port: 'metrics' }, exec: { command: ['true'] } } }), [
    '/c/livenessProbe: must have exactly one of httpGet, tcpSocket, grpc or exec (has httpGet, exec)',
    '/c/livenessProbe/httpGet/port: port "metrics" is not the name of a port of container "web"',
  ]);
  assert.deepEqual(messages({ startupProbe: { tcpSocket: { port: 1 }, successThreshold: 2 } }), ['/c/startupProbe/successThreshold: must be 1 for a startupProbe']);
});
