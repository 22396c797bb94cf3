import { randomBytes } from 'node:crypto';

/**
 * API tokens for the tests, as a deployment would give them: through the environment. Importing
 * this module sets them in this process's environment, which every `gantry` process a test spawns
 * inherits: the reconciler accepts GANTRY_API_ADMIN_TOKEN / GANTRY_API_READ_TOKEN, and the CLI
 * sends GANTRY_TOKEN. Fresh per test process, never a fixed string.
 */
export const TEST_ADMIN_TOKEN = `gantry_test_admin_${randomBytes(16).toString('hex')}`;
export const TEST_READ_TOKEN = `gantry_test_read_${randomBytes(16).toString('hex')}`;

process.env.GANTRY_API_ADMIN_TOKEN = TEST_ADMIN_TOKEN;
process.env.GANTRY_API_READ_TOKEN = TEST_READ_TOKEN;
process.env.GANTRY_TOKEN = TEST_ADMIN_TOKEN;

export function authHeaders(token: string = TEST_ADMIN_TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** fetch with the admin token (or `token`), for calls to the reconciler's API. */
export function apiFetch(url: string | URL, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const { token, headers, ...rest } = init;
  return fetch(url, { ...rest, headers: { ...authHeaders(token), ...(headers as Record<string, string> | undefined) } });
}
