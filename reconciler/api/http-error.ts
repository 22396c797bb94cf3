import type { FastifyInstance } from 'fastify';
import { GantryError, registerErrorClass, type ErrorCode } from '../../lib/errors/index.ts';

/**
 * How the API answers an error, in one pure function (`httpErrorOf`) that server.ts's error
 * handler calls, so a route only throws:
 *   - a GantryError: its code's catalog status (lib/errors/codes.ts) and `{ error: message, code }`;
 *   - one of fastify's own request errors (a 4xx `statusCode` with an `FST_*` code, or a schema
 *     validation error): bad JSON, a body too large, an unsupported media type keep their status;
 *   - anything else: 500 `{ error: 'internal error', code: 'INTERNAL' }`. Its message stays in the
 *     log, never in the reply: it could hold a secret or a path the client has no business with.
 */

/** An error a route answers with; its status comes from its code. */
export class HttpError extends GantryError {
  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
  }
}
registerErrorClass(HttpError, 'HttpError');

export interface HttpErrorReply {
  status: number;
  body: { error: string; code: string };
}

export const INTERNAL_ERROR_REPLY: HttpErrorReply = Object.freeze({ status: 500, body: Object.freeze({ error: 'internal error', code: 'INTERNAL' }) });

/** Every app's error handler: the reply from httpErrorOf; an unexpected error's details to the log only. */
export function installErrorHandler(app: FastifyInstance, what: string, log?: (line: string) => void): void {
  app.setErrorHandler((err, req, reply) => {
    const { status, body } = httpErrorOf(err);
    if (body.code === 'INTERNAL') log?.(`${what}: ${req.method} ${req.routeOptions.url ?? '(no route)'} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    void reply.status(status).send(body);
  });
}

export function httpErrorOf(err: unknown): HttpErrorReply {
  if (err instanceof GantryError) return { status: err.httpStatus, body: { error: err.message, code: err.code } };
  if (isFastifyRequestError(err)) return { status: err.statusCode, body: { error: err.message, code: typeof err.code === 'string' ? err.code : 'FST_ERR_VALIDATION' } };
  return { status: INTERNAL_ERROR_REPLY.status, body: { ...INTERNAL_ERROR_REPLY.body } };
}

/** True for the errors fastify raises about a request itself (FST_ERR_CTP_*, FST_ERR_VALIDATION...). */
export function isFastifyRequestError(err: unknown): err is Error & { statusCode: number; code?: string } {
  if (!(err instanceof Error)) return false;
  const { statusCode, code, validation } = err as { statusCode?: unknown; code?: unknown; validation?: unknown };
  if (typeof statusCode !== 'number' || !Number.isInteger(statusCode) || statusCode < 400 || statusCode > 499) return false;
  return (typeof code === 'string' && code.startsWith('FST_')) || Array.isArray(validation);
}
