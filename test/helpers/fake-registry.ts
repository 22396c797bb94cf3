import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { docker, TEST_IMAGE } from './docker.ts';

/**
 * A minimal Docker Registry HTTP API v2 on 127.0.0.1 (which Docker treats as an insecure registry
 * by default, so plain HTTP works), for pulls with credentials without any external registry. It
 * wants HTTP Basic auth everywhere (`GET /v2/` answers 401 with `WWW-Authenticate: Basic` until
 * a known user:password comes along) and serves one image, `<host>/<repository>:<tag>`: the layers
 * of the test image (exported from the engine, as `docker save` does) plus one small layer of its
 * own holding /pulltest.txt, so a pull always downloads a blob even where the test image is
 * present. Manifest (schema 2), config and layer blobs carry their sha256 digests, by HEAD and GET.
 */

export interface RegistryRequest {
  method: string;
  path: string;
  /** The user whose password matched, if any; never the password. */
  user?: string;
  /** An Authorization header came, right or wrong. */
  sentCredentials: boolean;
  status: number;
}

export interface FakeRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** `<host>/<repository>:<tag>`, the one image it serves. */
  image: string;
  /** What /pulltest.txt holds in that image. */
  marker: string;
  requests: RegistryRequest[];
  close(): Promise<void>;
}

const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The regular files of a tar archive (ustar, with pax `path` records honoured). */
export function readTar(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let paxPath: string | undefined;
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const text = (from: number, len: number) => header.subarray(from, from + len).toString('utf8').replace(/\0.*$/s, '');
    const size = Number.parseInt(text(124, 12).trim() || '0', 8);
    const type = text(156, 1) || '0';
    const prefix = text(345, 155);
    const body = tar.subarray(at + 512, at + 512 + size);
    if (type === 'x') {
      paxPath = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1];
    } else {
      if (type === '0' || type === '7') files.set(paxPath ?? (prefix ? `${prefix}/${text(0, 100)}` : text(0, 100)), Buffer.from(body));
      paxPath = undefined;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/** A tar archive of regular files at the root (mode 0644, owned by root). */
export function writeTar(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.from(content, 'utf8');
    const header = Buffer.alloc(512);
    const put = (value: string, from: number) => header.write(value, from, 'utf8');
    put(name, 0);
    put('0000644\0', 100);
    put('0000000\0', 108);
    put('0000000\0', 116);
    put(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
    put(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136);
    put('        ', 148);
    put('0', 156);
    put('ustar\0', 257);
    put('00', 263);
    const sum = header.reduce((s, b) => s + b, 0);
    put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, body, Buffer.alloc(Math.ceil(body.length / 512) * 512 - body.length));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The test image as the engine exports it (`docker save`): its config and uncompressed layers. */
async function exportImage(image: string): Promise<{ config: Record<string, unknown>; layers: Buffer[] }> {
  const stream = await docker.getImage(image).get();
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  const files = readTar(Buffer.concat(chunks));
  const [entry] = JSON.parse(files.get('manifest.json')!.toString('utf8')) as { Config: string; Layers: string[] }[];
  return { config: JSON.parse(files.get(entry!.Config)!.toString('utf8')) as Record<string, unknown>, layers: entry!.Layers.map((l) => files.get(l)!) };
}

export async function startFakeRegistry(opts: { users: Record<string, string>; repository?: string; tag?: string }): Promise<FakeRegistry> {
  const repository = opts.repository ?? 'gantry/pulltest';
  const tag = opts.tag ?? '1';
  const marker = `pulled from the fake registry ${Date.now()}`;
  const base = await exportImage(TEST_IMAGE);
  const layers = [...base.layers, writeTar({ 'pulltest.txt': `${marker}\n` })];
  const blobs = new Map<string, Buffer>();
  const layerDescriptors = layers.map((tar) => {
    const gz = gzipSync(tar);
    blobs.set(sha256(gz), gz);
    return { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: gz.length, digest: sha256(gz) };
  });
  const history = Array.isArray(base.config.history) ? base.config.history : [];
  const config = Buffer.from(
    JSON.stringify({
      ...base.config,
      created: new Date().toISOString(),
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) },
      history: [...history, { created: new Date().toISOString(), created_by: 'fake-registry: /pulltest.txt' }],
    }),
  );
  blobs.set(sha256(config), config);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) }, layers: layerDescriptors }),
  );
  const manifestDigest = sha256(manifest);
  const requests: RegistryRequest[] = [];

  const userOf = (req: IncomingMessage): { sent: boolean; user?: string } => {
    const header = req.headers.authorization;
    if (!header?.startsWith('Basic ')) return { sent: !!header };
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    return { sent: true, ...(colon > 0 && opts.users[user] === password ? { user } : {}) };
  };
  const send = (req: IncomingMessage, res: ServerResponse, status: number, body: Buffer | string, headers: Record<string, string | number> = {}) => {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'Docker-Distribution-API-Version': 'registry/2.0', 'Content-Length': data.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : data);
  };
  const error = (code: string, message: string) => JSON.stringify({ errors: [{ code, message, detail: null }] });

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://registry').pathname;
    const auth = userOf(req);
    const status = ((): number => {
      if (req.method !== 'GET' && req.method !== 'HEAD') return (send(req, res, 405, error('UNSUPPORTED', 'read only')), 405);
      if (!auth.user) return (send(req, res, 401, error('UNAUTHORIZED', 'authentication required'), { 'WWW-Authenticate': 'Basic realm="gantry-fake-registry"', 'Content-Type': 'application/json' }), 401);
      if (path === '/v2/' || path === '/v2') return (send(req, res, 200, '{}', { 'Content-Type': 'application/json' }), 200);
      const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
      if (!m || m[1] !== repository) return (send(req, res, 404, error('NAME_UNKNOWN', 'repository name not known to registry'), { 'Content-Type': 'application/json' }), 404);
      if (m[2] === 'manifests') {
        if (m[3] !== tag && m[3] !== manifestDigest) return (send(req, res, 404, error('MANIFEST_UNKNOWN', 'manifest unknown'), { 'Content-Type': 'application/json' }), 404);
        return (send(req, res, 200, manifest, { 'Content-Type': MANIFEST_TYPE, 'Docker-Content-Digest': manifestDigest }), 200);
      }
      const blob = blobs.get(m[3]!);
      if (!blob) return (send(req, res, 404, error('BLOB_UNKNOWN', 'blob unknown to registry'), { 'Content-Type': 'application/json' }), 404);
      // A resumed download asks for the rest from an offset.
      const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
      const headers = { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': m[3]! };
      if (from > 0) return (send(req, res, 206, blob.subarray(from), { ...headers, 'Content-Range': `bytes ${from}-${blob.length - 1}/${blob.length}` }), 206);
      return (send(req, res, 200, blob, headers), 200);
    })();
    requests.push({ method: req.method ?? '', path, ...(auth.user ? { user: auth.user } : {}), sentCredentials: auth.sent, status });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    image: `${host}/${repository}:${tag}`,
    marker,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Removes a pulled image (its tag; layers shared with the test image stay): test cleanup, pass or fail. */
export async function removeImage(image: string): Promise<void> {
  await docker
    .getImage(image)
    .remove({ force: true })
    .catch(() => {});
}
