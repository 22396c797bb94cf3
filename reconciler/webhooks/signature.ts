import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook authentication, pure. Every comparison runs in constant time: both sides are hashed to
 * 32 bytes first, so neither the position of the first difference nor a length mismatch shows in
 * the timing (timingSafeEqual alone throws on different lengths, which leaks the length).
 */

export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Lowercase hex HMAC-SHA256 of the raw body bytes, as GitHub, Gitea and Bitbucket sign them. */
export function hmacSha256Hex(secret: string, body: Buffer): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * True when `header` is `<prefix><hex HMAC-SHA256(secret, body)>` (GitHub and Bitbucket: prefix
 * `sha256=`; Gitea: none). Hex digits are compared case-insensitively.
 */
export function verifyHmacSha256(secret: string, body: Buffer, header: string | undefined, prefix = ''): boolean {
  if (!secret || typeof header !== 'string' || header.length === 0) return false;
  return constantTimeEqual(header.trim().toLowerCase(), `${prefix}${hmacSha256Hex(secret, body)}`);
}

/** True when a shared token (GitLab's X-Gitlab-Token) equals the secret. */
export function verifyToken(secret: string, header: string | undefined): boolean {
  if (!secret || typeof header !== 'string' || header.length === 0) return false;
  return constantTimeEqual(header, secret);
}
