import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { HttpGetProbe } from '../state/records/instance.ts';
import type { CheckResult } from './probe-state.ts';

/**
 * An httpGet probe as the kubelet runs it (pkg/probe/http), with node:http rather than fetch,
 * which cannot set a Host header nor skip certificate checks per request:
 *   - HTTPS does not verify the certificate: probes check health, not identity, and containers
 *     mostly serve self-signed certificates (the kubelet sets InsecureSkipVerify too);
 *   - `httpHeaders` are sent in order, repeats kept; a Host header replaces the request's host:port
 *     (the first one counts; node:https sends its name as SNI, never an IP address), a User-Agent or
 *     Accept one ours, an empty Accept or User-Agent drops it;
 *   - 200-399 passes. Redirects (301, 302, 303, 307, 308 with a Location) are followed while they
 *     stay on the same host name, whatever the port or scheme, as the kubelet's client does; the
 *     10th one fails the check. A redirect to another host is not followed and counts as a success,
 *     as the kubelet counts it (a probe must never reach out to hosts the manifest does not name);
 *   - a new connection for every check (no keep-alive), so each check really connects;
 *   - one deadline (timeoutSeconds) for the whole check, redirects included.
 */

const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'gantry-probe';

/** One check; never throws. `host` and `port` are where to connect (the port already mapped to the host port). */
export async function httpGetCheck(probe: HttpGetProbe, host: string, port: number, timeoutMs: number): Promise<CheckResult> {
  const scheme = probe.scheme ?? 'HTTP';
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  // Concatenated, not resolved against a base: a path such as //x must stay a path.
  const written = `${scheme.toLowerCase()}://${authority}${probe.path}`;
  let url: URL;
  try {
    url = new URL(written);
  } catch {
    return { ok: false, detail: `${scheme} GET ${written}: not a valid URL` };
  }
  const first = url;
  const label = `${scheme} GET ${first.href}`;
  const headers = requestHeaders(probe.httpHeaders ?? []);
  const signal = AbortSignal.timeout(timeoutMs);
  const failed = (why: string) => ({ ok: false, detail: `${label}${url === first ? '' : ` (redirected to ${url.href})`}: ${why}` });
  for (let redirects = 0; ; redirects++) {
    let res: IncomingMessage;
    try {
      res = await get(url, headers, signal);
    } catch (err) {
      return failed(signal.aborted ? `no answer within ${timeoutMs / 1000}s` : (err as Error).message);
    }
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    // Only the status matters; the connection is not reused, so the body is not read.
    res.destroy();
    if (REDIRECT_STATUSES.has(status) && location) {
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        return failed(`status ${status} with an invalid Location ${JSON.stringify(location)}`);
      }
      if (next.hostname !== first.hostname) return { ok: true };
      if (next.protocol !== 'http:' && next.protocol !== 'https:') return failed(`status ${status} redirects to ${next.protocol} ${next.href}`);
      if (redirects + 1 >= MAX_REDIRECTS) return failed(`stopped after ${MAX_REDIRECTS} redirects`);
      // As Go's client: a Host header of our own survives a relative redirect only.
      if (/^[a-z][a-z0-9+.-]*:/i.test(location)) delete headers.host;
      url = next;
      continue;
    }
    return status >= 200 && status < 400 ? { ok: true } : failed(`status ${status}`);
  }
}

/**
 * The request's headers from the probe's, with the kubelet's defaults (Accept *\/*, our User-Agent).
 * Values go out as their UTF-8 bytes (node:http takes a string of latin1 characters as bytes).
 */
export function requestHeaders(list: { name: string; value: string }[]): OutgoingHttpHeaders {
  const out: Record<string, string[]> = {};
  const names = new Map<string, string>();
  for (const { name, value } of list) {
    const lower = name.toLowerCase();
    const key = names.get(lower) ?? name;
    names.set(lower, key);
    (out[key] ??= []).push(Buffer.from(value, 'utf8').toString('latin1'));
  }
  const take = (lower: string): string[] | undefined => {
    const key = names.get(lower);
    if (key === undefined) return undefined;
    const values = out[key];
    delete out[key];
    return values;
  };
  // As Go's http.Header.Get: the first value of Host, User-Agent and Accept decides.
  const host = take('host')?.[0];
  const accept = take('accept') ?? ['*/*'];
  const agent = take('user-agent')?.[0] ?? USER_AGENT;
  const headers: OutgoingHttpHeaders = { ...out };
  if (host) headers.host = host;
  if (accept[0] !== '') headers.accept = accept;
  if (agent !== '') headers['user-agent'] = agent;
  return headers;
}

function get(url: URL, headers: OutgoingHttpHeaders, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = {
      // WHATWG URLs keep the brackets of an IPv6 address; node:http wants it bare.
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers,
      agent: false,
      signal,
    };
    const req = url.protocol === 'https:' ? httpsRequest({ ...options, rejectUnauthorized: false }) : httpRequest(options);
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}
