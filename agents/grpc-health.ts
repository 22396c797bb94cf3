import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { CheckResult } from './probe-state.ts';

/**
 * A grpc probe: the gRPC Health Checking Protocol's unary grpc.health.v1.Health/Check over HTTP/2
 * without TLS, as the kubelet runs it. The two messages are one optional field each, so they are
 * encoded by hand rather than with a protobuf library:
 *
 *   message HealthCheckRequest { string service = 1; }
 *   message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; } ServingStatus status = 1; }
 *
 * On the wire each message is a 5-byte frame header (1 byte: 0 = uncompressed; 4 bytes: big-endian
 * length) and the protobuf bytes. The check passes when the trailers say grpc-status 0 and the
 * answer is SERVING; a server that does not know the service answers grpc-status 5 (NOT_FOUND).
 */

export const HEALTH_CHECK_PATH = '/grpc.health.v1.Health/Check';
export const SERVING_STATUSES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
const SERVING = 1;

/** gRPC status codes by number, for messages. */
const GRPC_CODES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
];

/** A health answer is a few bytes; more than this is not a health server, and is not buffered. */
const MAX_RESPONSE_BYTES = 64 * 1024;

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

/** HealthCheckRequest: field 1, wire type 2 (length-delimited) = tag 0x0a; "" is left out, as proto3 does. */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  return name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
}

/** One length-prefixed gRPC message. */
export function grpcFrame(message: Buffer, compressed = false): Buffer {
  const header = Buffer.alloc(5);
  header[0] = compressed ? 1 : 0;
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** The messages of a response body; throws on a truncated frame. */
export function readFrames(body: Buffer): { compressed: boolean; message: Buffer }[] {
  const out: { compressed: boolean; message: Buffer }[] = [];
  for (let at = 0; at < body.length; ) {
    if (body.length - at < 5) throw new Error('truncated gRPC frame header');
    const length = body.readUInt32BE(at + 1);
    if (body.length - at - 5 < length) throw new Error('truncated gRPC message');
    out.push({ compressed: body[at] !== 0, message: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/**
 * HealthCheckResponse's status: field 1 as a varint (tag 0x08); absent is 0 (UNKNOWN), as in proto3.
 * Other fields are skipped by wire type, so a newer server's additions do not break the probe.
 */
export function decodeHealthCheckResponse(message: Buffer): number {
  let status = 0;
  let at = 0;
  const readVarint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= message.length) throw new Error('truncated varint');
      const byte = message[at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new Error('varint too long');
  };
  while (at < message.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    switch (wireType) {
      case 0: {
        const value = readVarint();
        if (field === 1) status = value;
        break;
      }
      case 1:
        at += 8;
        break;
      case 2: {
        // Not `at += readVarint()`: that would add to `at` as it was before the length was read.
        const length = readVarint();
        at += length;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${wireType}`);
    }
    if (at > message.length) throw new Error('truncated field');
  }
  return status;
}

function statusName(status: number): string {
  return SERVING_STATUSES[status] ?? `status ${status}`;
}

function grpcStatusText(code: string, message: string | undefined): string {
  let text = message ?? '';
  try {
    // grpc-message is percent-encoded.
    text = decodeURIComponent(text);
  } catch {
    // shown as sent
  }
  const name = GRPC_CODES[Number(code)];
  return `grpc-status ${code}${name ? ` ${name}` : ''}${text ? `: ${text}` : ''}`;
}

export interface GrpcHealthTarget {
  host: string;
  /** Where to connect: the host port. */
  port: number;
  /** "" asks for the server's overall health. */
  service: string;
  timeoutMs: number;
}

/** One Health/Check call; never throws. */
export function grpcHealthCheck(t: GrpcHealthTarget): Promise<CheckResult> {
  const authority = t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
  const label = `gRPC health check ${authority}${t.service ? ` (service "${t.service}")` : ''}`;
  return new Promise((resolve) => {
    let session: ClientHttp2Session | undefined;
    let settled = false;
    const done = (ok: boolean, why?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      resolve(ok ? { ok: true } : { ok: false, detail: `${label}: ${why}` });
    };
    const timer = setTimeout(() => done(false, `no answer within ${t.timeoutMs / 1000}s`), t.timeoutMs);
    try {
      session = connect(`http://${authority}`);
    } catch (err) {
      return done(false, (err as Error).message);
    }
    session.on('error', (err) => done(false, err.message));
    const req = session.request({
      ':method': 'POST',
      ':path': HEALTH_CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'gantry-probe',
      // The server may stop working on a call we no longer wait for.
      'grpc-timeout': `${Math.max(1, Math.round(t.timeoutMs))}m`,
    });
    let head: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('response', (h) => (head = h));
    req.on('trailers', (h) => (trailers = h));
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) return done(false, `response larger than ${MAX_RESPONSE_BYTES} bytes`);
      chunks.push(chunk);
    });
    // A failed connection cancels the pending stream first: say why it failed, not that it was canceled.
    req.on('error', (err) => done(false, ((err as Error & { cause?: Error }).cause ?? err).message));
    req.on('end', () => {
      const status = Number(head[':status']);
      if (status !== 200) return done(false, `HTTP/2 status ${head[':status'] ?? 'missing'}`);
      // A call that fails without a message is "trailers-only": grpc-status comes with the headers.
      const code = trailers['grpc-status'] ?? head['grpc-status'];
      const message = trailers['grpc-message'] ?? head['grpc-message'];
      if (code === undefined) return done(false, 'no grpc-status in the answer');
      if (String(code) !== '0') return done(false, grpcStatusText(String(code), message === undefined ? undefined : String(message)));
      let serving: number;
      try {
        const frames = readFrames(Buffer.concat(chunks));
        if (frames.length !== 1) return done(false, `${frames.length} messages in the answer, expected 1`);
        if (frames[0]!.compressed) return done(false, 'a compressed answer, which was not asked for');
        serving = decodeHealthCheckResponse(frames[0]!.message);
      } catch (err) {
        return done(false, `invalid HealthCheckResponse: ${(err as Error).message}`);
      }
      done(serving === SERVING, statusName(serving));
    });
    // Reset or closed before the end: whatever the reason, no answer.
    req.on('close', () => done(false, `stream closed before the answer (code ${req.rstCode})`));
    req.end(grpcFrame(encodeHealthCheckRequest(t.service)));
  });
}
