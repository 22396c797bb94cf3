/**
 * Credential scrubbing for everything the Git layer lets out: error messages, error data
 * and `describe()`. Secrets are replaced by `***` in every form they are likely to appear
 * in (raw, percent-encoded, and inside a Basic auth header).
 */

const MASK = '***';

/** Replaces every occurrence of each non-empty secret in `text` with `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another is masked as a whole.
  let out = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) {
    out = out.split(form).join(MASK);
  }
  return out;
}

/** Basic auth header values (`base64(user:pass)`) worth scrubbing alongside the raw secrets. */
export function basicAuthForms(username: string | undefined, password: string | undefined): string[] {
  if (!username && !password) return [];
  return [Buffer.from(`${username ?? ''}:${password ?? ''}`).toString('base64')];
}

/**
 * Masks the userinfo of a URL (`https://user:pass@host/x` -> `https://***@host/x`).
 * Also copes with strings that do not parse as URLs, since it is used on user input.
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, `$1${MASK}@`);
}

export interface SplitUrl {
  /** The URL without userinfo: safe to store in git config and to show. */
  url: string;
  username?: string;
  password?: string;
}

/** Separates credentials embedded in an http(s) URL from the URL itself. */
export function splitCredentials(raw: string): SplitUrl {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return { url: raw };
  }
  if (!parsed.username && !parsed.password) return { url: raw };
  const username = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), username, password };
}

/** Recursively redacts the string values of a plain data object. */
export function redactData(data: Record<string, unknown>, secrets: readonly (string | undefined)[]): Record<string, unknown> {
  const scrub = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v, secrets);
    if (Array.isArray(v)) return v.map(scrub);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrub(x)]));
    }
    return v;
  };
  return scrub(data) as Record<string, unknown>;
}
