import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../state/store.ts';

/**
 * GET /api/v1/instances/:id/logs?follow=&tail=&container=
 *
 * Logs live on the node that runs the instance (files for processes, the engine for containers),
 * so, like the Kubernetes API server with the kubelet, the reconciler proxies the request to that
 * node's agent (`NodeRecord.address` + `logsPort`) and streams the answer back while following.
 */

export interface LogsQuery {
  follow?: string;
  tail?: string;
  container?: string;
}

class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, readonly code: string) {
    super(message);
  }
}

export async function proxyInstanceLogs(store: Store, req: FastifyRequest<{ Params: { id: string }; Querystring: LogsQuery }>, reply: FastifyReply): Promise<void> {
  const { id } = req.params;
  if (!/^[a-z0-9][-a-z0-9.]*$/.test(id)) throw new HttpError(400, `invalid instance id ${JSON.stringify(id)}`, 'INVALID_ID');
  const tail = req.query.tail;
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new HttpError(400, `tail must be a non-negative integer, got ${JSON.stringify(tail)}`, 'INVALID_TAIL');
  const [inst] = await store.readInstances([id]);
  // An instance already deleted may still have logs on the node its last status names.
  const nodeName = inst?.record.node ?? (await store.readInstanceStatus(id))?.node;
  if (!nodeName) throw new HttpError(inst ? 409 : 404, inst ? `instance ${id} is not placed on a node yet: no logs` : `instance ${id} not found`, inst ? 'NOT_PLACED' : 'NOT_FOUND');
  const node = (await store.readNodes()).find((n) => n.record.name === nodeName);
  if (!node?.record.logsPort) throw new HttpError(503, `node ${nodeName} does not serve logs (agent down or too old)`, 'NODE_UNAVAILABLE');

  const qs = new URLSearchParams();
  if (req.query.follow === '1' || req.query.follow === 'true') qs.set('follow', '1');
  if (tail !== undefined) qs.set('tail', tail);
  if (req.query.container) qs.set('container', req.query.container);
  const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
    const r = httpRequest({ host: node.record.address, port: node.record.logsPort, path: `/logs/${encodeURIComponent(id)}?${qs}`, method: 'GET' }, resolve);
    r.on('error', (err) => reject(new HttpError(502, `node ${nodeName} did not answer: ${err.message}`, 'NODE_UNREACHABLE')));
    // The client went away (Ctrl-C on `gantry logs -f`): stop following on the node too.
    req.raw.once('close', () => r.destroy());
    r.end();
  });
  reply.status(upstream.statusCode ?? 502).header('content-type', upstream.headers['content-type'] ?? 'text/plain; charset=utf-8');
  await reply.send(upstream);
}
