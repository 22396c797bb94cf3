import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toDeploymentRecord } from '../../reconciler/desired/desired-state.ts';
import { loadManifests } from '../../reconciler/manifests/index.ts';
import { resolveProbes } from '../../reconciler/manifests/probes.ts';
import type { DeploymentObject } from '../../reconciler/manifests/types.ts';
import type { ProbeSpec } from '../../state/records/instance.ts';

/**
 * Probes in their full Kubernetes shape (httpGet scheme/host/httpHeaders, tcpSocket host, grpc,
 * terminationGracePeriodSeconds): what loads, the record it resolves to (defaults left out, named
 * ports resolved), and each mistake as an error at file:line:col.
 */

/** A Deployment whose one container declares ports http (8080) and grpc (9090) and has `probes` (YAML lines at container level). */
const manifest = (probes: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: main
          command: ["sleep", "1000"]
          ports: [{ name: http, containerPort: 8080 }, { name: grpc, containerPort: 9090 }]
${probes}`;

function load(probes: string) {
  return loadManifests([{ path: 'web.yaml', content: manifest(probes) }]);
}

const TIMING = { initialDelaySeconds: 0, periodSeconds: 10, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 };

test('full-shape probes load without warnings and resolve to records with defaults left out', () => {
  const cases: { name: string; yaml: string; want: Record<string, ProbeSpec> }[] = [
    {
      name: 'httpGet with scheme, host, headers and a named port',
      yaml: `          readinessProbe:
            httpGet:
              scheme: HTTPS
              host: 127.0.0.2
              path: healthz?full=1
              port: http
              httpHeaders: [{ name: Host, value: web.example }, { name: X-Probe, value: "1" }, { name: X-Probe, value: "2" }]`,
      want: {
        readinessProbe: {
          httpGet: { path: '/healthz?full=1', port: 8080, scheme: 'HTTPS', host: '127.0.0.2', httpHeaders: [{ name: 'Host', value: 'web.example' }, { name: 'X-Probe', value: '1' }, { name: 'X-Probe', value: '2' }] },
          ...TIMING,
        },
      },
    },
    {
      name: 'scheme HTTP and empty headers are the defaults: the record is as before these fields existed',
      yaml: `          livenessProbe: { httpGet: { scheme: HTTP, port: 8080, httpHeaders: [] } }`,
      want: { livenessProbe: { httpGet: { path: '/', port: 8080 }, ...TIMING } },
    },
    {
      name: 'tcpSocket with a host name',
      yaml: `          readinessProbe: { tcpSocket: { host: localhost, port: grpc } }`,
      want: { readinessProbe: { tcpSocket: { port: 9090, host: 'localhost' }, ...TIMING } },
    },
    {
      name: 'tcpSocket with an IPv6 address',
      yaml: `          readinessProbe: { tcpSocket: { host: "::1", port: 7000 } }`,
      want: { readinessProbe: { tcpSocket: { port: 7000, host: '::1' }, ...TIMING } },
    },
    {
      name: 'grpc with a service',
      yaml: `          readinessProbe: { grpc: { port: 9090, service: shop.Cart }, periodSeconds: 2 }`,
      want: { readinessProbe: { grpc: { port: 9090, service: 'shop.Cart' }, ...TIMING, periodSeconds: 2 } },
    },
    {
      name: 'grpc with the empty service: the server\'s overall health, left out',
      yaml: `          readinessProbe: { grpc: { port: 9090, service: "" } }`,
      want: { readinessProbe: { grpc: { port: 9090 }, ...TIMING } },
    },
    {
      name: 'terminationGracePeriodSeconds on liveness and startup probes',
      yaml: `          livenessProbe: { grpc: { port: 9090 }, terminationGracePeriodSeconds: 2 }
          startupProbe: { exec: { command: ["true"] }, terminationGracePeriodSeconds: 3600 }`,
      want: {
        livenessProbe: { grpc: { port: 9090 }, ...TIMING, terminationGracePeriodSeconds: 2 },
        startupProbe: { exec: { command: ['true'] }, ...TIMING, terminationGracePeriodSeconds: 3600 },
      },
    },
  ];
  for (const c of cases) {
    const r = load(c.yaml);
    assert.deepEqual(r.errors.map(String), [], c.name);
    // In particular no "ignored: Gantry does not implement .../scheme": these fields are honoured now.
    assert.deepEqual(r.warnings.map(String), [], c.name);
    const d = r.objects[0]!.manifest as DeploymentObject;
    assert.deepEqual(resolveProbes(d.spec.template.spec.containers[0]!), c.want, c.name);
  }
});

test('probe mistakes are errors at file:line:col naming the field', () => {
  const P = 'Deployment default/web /spec/template/spec/containers/0';
  const cases: { name: string; yaml: string; want: string[] }[] = [
    {
      name: 'an unknown scheme',
      yaml: `          readinessProbe: { httpGet: { scheme: FTP, port: http } }`,
      want: [`web.yaml:14:48 ${P}/readinessProbe/httpGet/scheme: must be equal to one of: HTTP, HTTPS`],
    },
    {
      name: 'a header name with a space',
      yaml: `          readinessProbe: { httpGet: { port: http, httpHeaders: [{ name: "X Bad", value: v }] } }`,
      want: [`web.yaml:14:74 ${P}/readinessProbe/httpGet/httpHeaders/0/name: must be an HTTP header name: letters, digits and '-'`],
    },
    {
      name: 'a header value with a newline (header injection)',
      yaml: `          readinessProbe: { httpGet: { port: http, httpHeaders: [{ name: X-A, value: "a\\r\\nX-B: b" }] } }`,
      want: [`web.yaml:14:86 ${P}/readinessProbe/httpGet/httpHeaders/0/value: must be an HTTP header value: no control characters (such as a newline) but tab`],
    },
    {
      name: 'a header without a value',
      yaml: `          readinessProbe: { httpGet: { port: http, httpHeaders: [{ name: X-A }] } }`,
      want: [`web.yaml:14:66 ${P}/readinessProbe/httpGet/httpHeaders/0: must have required property 'value'`],
    },
    {
      name: 'a host that is a URL',
      yaml: `          readinessProbe: { httpGet: { host: "http://db:5432", port: http } }`,
      want: [`web.yaml:14:46 ${P}/readinessProbe/httpGet/host: must be a host name (DNS labels joined by '.') or an IP address, without a port or brackets`],
    },
    {
      name: 'a tcpSocket host with a port',
      yaml: `          livenessProbe: { tcpSocket: { host: "db:5432", port: 5432 } }`,
      want: [`web.yaml:14:47 ${P}/livenessProbe/tcpSocket/host: must be a host name (DNS labels joined by '.') or an IP address, without a port or brackets`],
    },
    {
      name: 'a grpc port by name (Kubernetes takes a number only)',
      yaml: `          readinessProbe: { grpc: { port: grpc } }`,
      want: [`web.yaml:14:43 ${P}/readinessProbe/grpc/port: must be integer`],
    },
    {
      name: 'a grpc port out of range',
      yaml: `          readinessProbe: { grpc: { port: 70000 } }`,
      want: [`web.yaml:14:43 ${P}/readinessProbe/grpc/port: must be <= 65535`],
    },
    {
      name: 'a grpc service that is too long',
      yaml: `          readinessProbe: { grpc: { port: 9090, service: ${'s'.repeat(1025)} } }`,
      want: [`web.yaml:14:58 ${P}/readinessProbe/grpc/service: must NOT have more than 1024 characters`],
    },
    {
      name: 'an httpGet port name the container does not declare',
      yaml: `          readinessProbe: { httpGet: { scheme: HTTPS, port: https } }`,
      want: [`web.yaml:14:61 ${P}/readinessProbe/httpGet/port: port "https" is not the name of a port of container "main"`],
    },
    {
      name: 'a tcpSocket port name the container does not declare',
      yaml: `          startupProbe: { tcpSocket: { host: localhost, port: admin } }`,
      want: [`web.yaml:14:63 ${P}/startupProbe/tcpSocket/port: port "admin" is not the name of a port of container "main"`],
    },
    {
      name: 'two actions',
      yaml: `          livenessProbe: { grpc: { port: 9090 }, httpGet: { port: http } }`,
      want: [`web.yaml:14:26 ${P}/livenessProbe: must have exactly one of httpGet, tcpSocket, grpc or exec (has httpGet, grpc)`],
    },
    {
      name: 'terminationGracePeriodSeconds on a readiness probe',
      yaml: `          readinessProbe: { grpc: { port: 9090 }, terminationGracePeriodSeconds: 5 }`,
      want: [`web.yaml:14:82 ${P}/readinessProbe/terminationGracePeriodSeconds: must not be set for a readinessProbe: only liveness and startup probes stop the container`],
    },
    {
      name: 'terminationGracePeriodSeconds of 0 (Kubernetes wants more than 0)',
      yaml: `          livenessProbe: { grpc: { port: 9090 }, terminationGracePeriodSeconds: 0 }`,
      want: [`web.yaml:14:81 ${P}/livenessProbe/terminationGracePeriodSeconds: must be >= 1`],
    },
    {
      name: 'terminationGracePeriodSeconds beyond what a timer may hold',
      yaml: `          startupProbe: { grpc: { port: 9090 }, terminationGracePeriodSeconds: 3601 }`,
      want: [`web.yaml:14:80 ${P}/startupProbe/terminationGracePeriodSeconds: must be <= 3600`],
    },
  ];
  assert.deepEqual(cases.map((c) => [c.name, load(c.yaml).errors.map(String)]), cases.map((c) => [c.name, c.want]));
});

test('the deployment record carries the resolved probes, a probe without the new fields as before', () => {
  const record = (yaml: string) => {
    const r = load(yaml);
    assert.deepEqual(r.errors.map(String), []);
    return toDeploymentRecord(r.objects[0]!.manifest as DeploymentObject, 'c0ffee', 'web.yaml', 1);
  };
  const grpc = record(`          readinessProbe: { grpc: { port: 9090, service: web } }
          livenessProbe: { httpGet: { scheme: HTTPS, port: http, httpHeaders: [{ name: Host, value: web.example }] }, terminationGracePeriodSeconds: 5 }`);
  const [c] = grpc.template.containers;
  assert.deepEqual(c!.readinessProbe, { grpc: { port: 9090, service: 'web' }, ...TIMING });
  assert.deepEqual(c!.livenessProbe, { httpGet: { path: '/', port: 8080, scheme: 'HTTPS', httpHeaders: [{ name: 'Host', value: 'web.example' }] }, ...TIMING, terminationGracePeriodSeconds: 5 });
  const plain = record(`          readinessProbe: { httpGet: { port: http } }`);
  assert.deepEqual(plain.template.containers[0]!.readinessProbe, { httpGet: { path: '/', port: 8080 }, ...TIMING });
});
