import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Real servers for probe tests: a self-signed certificate made with openssl, and a gRPC health
 * server on node:http2 that decodes and answers by hand (bytes spelled out, independently of
 * agents/grpc-health.ts, so that a bug there cannot hide in a shared encoder).
 */

/** A self-signed certificate for 127.0.0.1, made asynchronously (the test's event loop keeps running). */
export async function selfSignedCert(): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'gantry-probe-tls-'));
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=gantry-probe-test', '-addext', 'subjectAltName=IP:127.0.0.1',
    ]);
    return { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface HealthServer {
  port: number;
  /** ServingStatus by service name ("" is the server's overall health); a name not here is unknown (grpc-status 5). */
  statuses: Map<string, number>;
  /** What each call asked: path, content-type and the decoded service. */
  calls: { path: string; contentType: string; service: string }[];
  close(): Promise<void>;
}

export const SERVING = 1;
export const NOT_SERVING = 2;

/** A grpc.health.v1.Health server over HTTP/2 cleartext on 127.0.0.1. */
export async function startHealthServer(statuses: Record<string, number> = { '': SERVING }): Promise<HealthServer> {
  const server: Http2Server = createHttp2Server();
  const state: HealthServer = {
    port: 0,
    statuses: new Map(Object.entries(statuses)),
    calls: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const sessions = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      // Frame: flag 0, 4-byte big-endian length; message: [0x0a, len, ...utf8] or nothing for "".
      const message = body.subarray(5, 5 + body.readUInt32BE(1));
      const service = message.length === 0 ? '' : message.subarray(2, 2 + message[1]!).toString('utf8');
      state.calls.push({ path: String(headers[':path']), contentType: String(headers['content-type']), service });
      const status = state.statuses.get(service);
      if (headers[':path'] !== '/grpc.health.v1.Health/Check' || status === undefined) {
        // Trailers-only, as grpc servers answer an error.
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': status === undefined ? '5' : '12', 'grpc-message': status === undefined ? 'unknown%20service' : 'unimplemented' }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      // HealthCheckResponse { status = 1 (varint) }: tag 0x08, then the value.
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  const close = state.close;
  state.close = async () => {
    for (const s of sessions) s.destroy();
    await close();
  };
  return state;
}
