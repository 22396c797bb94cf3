import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findRedisServer, freePort } from '../../cli/redis-server.ts';
import { connectRedis } from '../../state/connection.ts';
import { createKeys } from '../../state/keys.ts';
import { spawnGantry } from '../helpers/gantry-process.ts';
import { freshPrefix } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * `rediss://`: a real redis-server with TLS (a CA and a server certificate made here with openssl),
 * reached by connectRedis with the CA and by a `gantry agent` process given `--redis-ca`.
 */
test('rediss:// with a CA: connections verify the server, and an agent runs over TLS', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gantry-tls-'));
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=gantry-test-ca');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext');
  const port = await freePort();
  const server = spawn(findRedisServer()!, ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', join(dir, 'server.crt'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', join(dir, 'ca.crt'), '--tls-auth-clients', 'no', '--save', '', '--dir', dir], { stdio: 'ignore' });
  const url = `rediss://127.0.0.1:${port}`;
  const ca = join(dir, 'ca.crt');
  const prefix = freshPrefix();
  const keys = createKeys(prefix);
  const verified = connectRedis(url, 'tls-test', { caFile: ca });
  const unverified = connectRedis(url, 'tls-test-no-ca', { caFile: '' });
  const errors: string[] = [];
  unverified.on('error', (e: Error) => errors.push(e.message));
  const agent = spawnGantry(['agent', '--node', 'tls-node', '--prefix', prefix, '--data-dir', dir, '--redis-ca', ca, '--heartbeat', '200ms', '--no-docker'], { env: { GANTRY_REDIS_URL: url } });
  try {
    assert.equal(await waitFor(() => verified.ping().catch(() => undefined), { what: 'a TLS PING' }), 'PONG');
    // Without the CA, the self-signed chain is refused: TLS is really checked.
    await waitFor(() => errors.some((e) => /self[- ]signed|unable to verify|certificate/i.test(e)), { what: 'a certificate error without the CA' });
    const record = await waitFor(() => verified.get(keys.node('tls-node')), { timeoutMs: 30_000, what: 'the agent registered over TLS' });
    assert.equal(JSON.parse(record).name, 'tls-node');
    assert.ok(!agent.output().includes('error'), agent.output());
  } finally {
    await agent.stop();
    verified.disconnect();
    unverified.disconnect();
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
