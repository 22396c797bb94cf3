import { GantryError, registerErrorClass } from '../lib/errors/index.ts';
import { findApiToken, TOKEN_HINT } from './api-token.ts';

/** A small client of the reconciler's HTTP API, for the CLI. */

export const DEFAULT_API = 'http://127.0.0.1:7070';

/**
 * A failed API call: API_UNREACHABLE (no answer), or API_REQUEST_FAILED with the HTTP `status`
 * and the code the server gave (`serverCode`, e.g. NOT_FOUND, or fastify's FST_* ones).
 */
export class ApiError extends GantryError {
  declare readonly code: 'API_UNREACHABLE' | 'API_REQUEST_FAILED';

  constructor(message: string, status?: number, serverCode?: string) {
    const data: Record<string, unknown> = {};
    if (status !== undefined) data.status = status;
    if (serverCode !== undefined) data.serverCode = serverCode;
    super(status === undefined ? 'API_UNREACHABLE' : 'API_REQUEST_FAILED', message, data);
  }

  /** The HTTP status the server answered with; undefined when it could not be reached. */
  get status(): number | undefined {
    return typeof this.data.status === 'number' ? this.data.status : undefined;
  }

  /** The server's own error code (`{ code }` in its reply), when it gave one. */
  get serverCode(): string | undefined {
    return typeof this.data.serverCode === 'string' ? this.data.serverCode : undefined;
  }
}
registerErrorClass(ApiError, 'ApiError');

/** The `{ error, code }` of an API error reply, whatever parsed out of it. */
function errorReply(body: unknown): { error?: string; code?: string } {
  const { error, code } = (body ?? {}) as { error?: unknown; code?: unknown };
  return { ...(typeof error === 'string' ? { error } : {}), ...(typeof code === 'string' ? { code } : {}) };
}

/** The Authorization header of every request, from the token the CLI finds (api-token.ts). */
function authHeaders(): Record<string, string> {
  const found = findApiToken();
  return found ? { authorization: `Bearer ${found.token}` } : {};
}

/** A 401 or 403 says what to do about it. */
function authHint(status: number, message: string): string {
  if (status === 401) return `${message} (${findApiToken() ? 'the token was not accepted; ' : ''}${TOKEN_HINT})`;
  return message;
}

export async function callApi<T>(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method: init.method ?? 'GET',
      headers: { ...authHeaders(), ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
    });
  } catch {
    throw new ApiError(`cannot reach the Gantry API at ${base} (is \`gantry up\` or \`gantry reconciler\` running? set --api or GANTRY_API)`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (!res.ok) {
    const reply = errorReply(body);
    throw new ApiError(authHint(res.status, `${init.method ?? 'GET'} ${path}: ${reply.error ?? `HTTP ${res.status}`}`), res.status, reply.code);
  }
  return body as T;
}

/** Streams a text response (logs) to `out` until the server ends it or the process is stopped. */
export async function streamApi(base: string, path: string, out: NodeJS.WritableStream): Promise<void> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { headers: authHeaders() });
  } catch {
    throw new ApiError(`cannot reach the Gantry API at ${base} (is \`gantry up\` or \`gantry reconciler\` running? set --api or GANTRY_API)`);
  }
  if (!res.ok) {
    const text = await res.text();
    let reply: { error?: string; code?: string } = {};
    try {
      reply = errorReply(JSON.parse(text));
    } catch {
      // not JSON: keep the status
    }
    throw new ApiError(authHint(res.status, reply.error ?? `HTTP ${res.status}`), res.status, reply.code);
  }
  if (!res.body) return;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk);
}
