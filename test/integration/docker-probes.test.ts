import { after } from 'node:test';
import assert from 'node:assert/strict';
import type { InstanceStatus } from '../../state/records/instance.ts';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { dockerTest, removeContainersWithLabels, TEST_IMAGE } from '../helpers/docker.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Probes of a Docker container go to the port published on the node address, with the full
 * httpGet shape (headers, a Host header) and tcpSocket `host`, as for processes (agent-probes.test.ts).
 */

const nodesUsed = new Set<string>();
after(async () => {
  for (const node of nodesUsed) await removeContainersWithLabels([`dev.gantry.node=${node}`]);
});

const TIMING = { initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 2, successThreshold: 1, failureThreshold: 3 };

dockerTest('httpGet with headers and tcpSocket with host reach a Docker container through its published port', async () => {
  const w = await AgentWorld.create();
  nodesUsed.add(w.node);
  try {
    await w.startAgent({ address: '127.0.0.1' });
    // busybox httpd answers /ok with 404 until the file exists, 2 s after the start.
    const serve = ['sh', '-c', 'mkdir -p /www && (sleep 2; echo ok > /www/ok) & exec httpd -f -p "$PORT" -h /www'];
    const record = instanceRecord(w.node, {
      runtime: 'docker',
      terminationGracePeriodSeconds: 2,
      containers: [
        container({
          image: TEST_IMAGE,
          imagePullPolicy: 'IfNotPresent',
          command: serve,
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/ok', port: 8080, httpHeaders: [{ name: 'Host', value: 'web.example' }, { name: 'X-Probe', value: '1' }] }, ...TIMING },
          livenessProbe: { tcpSocket: { port: 8080, host: '127.0.0.1' }, ...TIMING },
        }),
      ],
    });
    await w.bind(record);
    await w.nudge(record.id);
    const status = (what: string, ok: (s: InstanceStatus) => boolean) =>
      waitFor(async () => {
        const s = await w.status(record.id);
        return s && ok(s) ? s : undefined;
      }, { what, timeoutMs: 30_000 });
    const first = await status('Running', (s) => s.phase === 'Running');
    assert.equal(first.ready, false, 'not ready while /ok is a 404');
    const ready = await status('ready', (s) => s.phase === 'Running' && s.ready === true);
    assert.equal(ready.restarts, 0, 'the tcpSocket liveness probe with host passed all along');
    assert.notEqual(ready.ports[0]!.hostPort, 8080);
  } finally {
    try {
      await w.cleanup();
    } finally {
      await removeContainersWithLabels([`dev.gantry.node=${w.node}`]);
    }
  }
});
