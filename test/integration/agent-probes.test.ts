import assert from 'node:assert/strict';
import { test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentWorld, container, instanceRecord } from '../helpers/agent-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Probes of the full Kubernetes shape through a real agent running processes: a gRPC probe on a
 * containerPort reaches the host port the agent allocated, and its verdict is the instance's
 * readiness; a liveness probe's terminationGracePeriodSeconds, not the instance's, bounds the stop
 * of a container that ignores SIGTERM.
 */

function agentTest(name: string, body: (w: AgentWorld) => Promise<void>): void {
  test(name, async () => {
    const world = await AgentWorld.create();
    try {
      await body(world);
    } finally {
      await world.cleanup();
    }
  });
}

/** A grpc.health.v1.Health server on $PORT: SERVING, or NOT_SERVING while a file `sick` is in its cwd (the instance dir). */
const HEALTH_SERVER_JS = [
  "const fs = require('fs');",
  "require('http2').createServer().on('stream', (stream) => {",
  '  stream.resume();',
  "  stream.on('end', () => {",
  "    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });",
  "    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));",
  "    stream.end(Buffer.from([0, 0, 0, 0, 2, 8, fs.existsSync('sick') ? 2 : 1]));",
  '  });',
  "}).listen(Number(process.env.PORT), '127.0.0.1');",
].join('\n');

const TIMING = { initialDelaySeconds: 0, periodSeconds: 1, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 1 };

agentTest('a gRPC readiness probe reaches the allocated host port and the instance follows SERVING / NOT_SERVING', async (w) => {
  await w.startAgent({ address: '127.0.0.1', docker: false });
  const record = instanceRecord(w.node, {
    containers: [container({ command: [process.execPath, '-e', HEALTH_SERVER_JS], ports: [{ name: 'grpc', containerPort: 9090 }], readinessProbe: { grpc: { port: 9090 }, ...TIMING } })],
  });
  await w.bind(record);
  await w.nudge(record.id);
  const ready = await waitFor(async () => {
    const s = await w.status(record.id);
    return s?.phase === 'Running' && s.ready === true ? s : undefined;
  }, { what: 'ready while SERVING' });
  // The process listens on its host port, not on 9090: the probe went where the agent mapped it.
  assert.notEqual(ready.ports[0]!.hostPort, 9090);
  writeFileSync(join(w.dataDir, 'agents', w.node, 'instances', record.id, 'sick'), '');
  await waitFor(async () => (await w.status(record.id))?.ready === false, { what: 'not ready once NOT_SERVING' });
  const after = await w.status(record.id);
  assert.equal(after?.phase, 'Running');
  assert.equal(after?.restarts, 0);
});

agentTest("a liveness probe's terminationGracePeriodSeconds bounds the stop, not the instance's 60 s", async (w) => {
  await w.startAgent({ address: '127.0.0.1', docker: false, restartBackoffMs: 100 });
  // Ignores SIGTERM and listens nowhere: the tcpSocket probe fails, and only SIGKILL ends it.
  const stubborn = "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);";
  const record = instanceRecord(w.node, {
    terminationGracePeriodSeconds: 60,
    containers: [container({ command: [process.execPath, '-e', stubborn], livenessProbe: { tcpSocket: { port: 8080 }, ...TIMING, initialDelaySeconds: 1, terminationGracePeriodSeconds: 1 } })],
  });
  await w.bind(record);
  await w.nudge(record.id);
  const started = Date.now();
  await waitFor(async () => ((await w.status(record.id))?.restarts ?? 0) >= 1, { timeoutMs: 20_000, what: 'restarted after the liveness failure' });
  // initial delay 1 s + one check + 1 s grace, far below the instance's 60 s.
  assert.ok(Date.now() - started < 20_000);
});
