import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A secret every component of one Gantry shares through Redis (its value never leaves Redis but
 * in the header it authenticates). Whoever needs it first creates it: one `SET NX GET` makes a
 * random value unless one exists and returns the one that is there, so racing creators agree.
 */
export async function ensureClusterSecret(redis: Redis, key: string): Promise<string> {
  const fresh = randomBytes(32).toString('base64url');
  const existing = (await redis.call('SET', key, fresh, 'NX', 'GET')) as string | null;
  return existing ?? fresh;
}

/** Constant-time comparison of two secrets (different lengths compare unequal, in constant time too). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length ? timingSafeEqual(x, y) : (timingSafeEqual(x, x), false);
}
