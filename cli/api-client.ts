/** A small client of the reconciler's HTTP API, for the CLI. */

export const DEFAULT_API = 'http://127.0.0.1:7070';

export class ApiError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export async function callApi<T>(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method: init.method ?? 'GET',
      headers: init.body !== undefined ? { 'content-type': 'application/json' } : {},
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
    const msg = (body as { error?: string } | undefined)?.error ?? `HTTP ${res.status}`;
    throw new ApiError(`${init.method ?? 'GET'} ${path}: ${msg}`, res.status);
  }
  return body as T;
}

/** Streams a text response (logs) to `out` until the server ends it or the process is stopped. */
export async function streamApi(base: string, path: string, out: NodeJS.WritableStream): Promise<void> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base));
  } catch {
    throw new ApiError(`cannot reach the Gantry API at ${base} (is \`gantry up\` or \`gantry reconciler\` running? set --api or GANTRY_API)`);
  }
  if (!res.ok) {
    const text = await res.text();
    let msg = `HTTP ${res.status}`;
    try {
      msg = (JSON.parse(text) as { error?: string }).error ?? msg;
    } catch {
      // not JSON: keep the status
    }
    throw new ApiError(msg, res.status);
  }
  if (!res.body) return;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) out.write(chunk);
}
