import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Store } from '../../state/store.ts';
import { HttpError } from './http-error.ts';

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

export async function proxyInstanceLogs(store: Store, req: FastifyRequest<{ Params: { id: string }; Querystring: LogsQuery }>, reply: FastifyReply): Promise<void> {
  const { id } = req.params;
  if (!/^[a-z0-9][-a-z0-9.]*$/.test(id)) throw new HttpError('INVALID_ID', `invalid instance id ${JSON.stringify(id)}`);
  const tail = req.query.tail;
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new HttpError('INVALID_TAIL', `tail must be a non-negative integer, got ${JSON.stringify(tail)}`);
  const [inst] = await store.readInstances([id]);
  // An instance already deleted may still have logs on the node its last status names.
  const nodeName = inst?.record.node ?? (await store.readInstanceStatus(id))?.node;
  if (!nodeName) throw inst ? new HttpError('NOT_PLACED', `instance ${id} is not placed on a node yet: no logs`) : new HttpError('NOT_FOUND', `instance ${id} not found`);
  const node = (await store.readNodes()).find((n) => n.record.name === nodeName);
  if (!node?.record.logsPort) throw new HttpError('NODE_UNAVAILABLE', `node ${nodeName} does not serve logs (agent down or too old)`);

  const qs = new URLSearchParams();
  if (req.query.follow === '1' || req.query.follow === 'true') qs.set('follow', '1');
  if (tail !== undefined) qs.set('tail', tail);
  if (req.query.container) qs.set('container', req.query.container);
  // The agent serves logs to the reconciler only: the cluster's logs credential, from Redis.
  const credential = await store.logsCredential();
  const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
    const r = httpRequest({ host: node.record.address, port: node.record.logsPort, path: `/logs/${encodeURIComponent(id)}?${qs}`, method: 'GET', headers: { authorization: `Bearer ${credential}` } }, resolve);
    r.on('error', (err) => reject(new HttpError('NODE_UNREACHABLE', `node ${nodeName} did not answer: ${err.message}`)));
    // The client went away (Ctrl-C on `gantry logs -f`): stop following on the node too.
    req.raw.once('close', () => r.destroy());
    r.end();
  });
  reply.status(upstream.statusCode ?? 502).header('content-type', upstream.headers['content-type'] ?? 'text/plain; charset=utf-8');
  await reply.send(upstream);
}
