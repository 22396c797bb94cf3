import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ADMIN_TOKEN_FILE } from '../reconciler/api/auth.ts';

/**
 * The token the CLI sends to the API, found without putting it on argv (where `ps` would show it):
 *   1. GANTRY_TOKEN: the token itself;
 *   2. GANTRY_TOKEN_FILE (or --token-file): a file holding it;
 *   3. <GANTRY_DATA_DIR>/admin-token, when GANTRY_DATA_DIR is set;
 *   4. .gantry/admin-token in the current directory or any above it: what `gantry up` created, so
 *      the README's commands work from the project and from inside .gantry/repo alike.
 */

export const TOKEN_ENV = 'GANTRY_TOKEN';
export const TOKEN_FILE_ENV = 'GANTRY_TOKEN_FILE';

export interface FoundToken {
  token: string;
  /** Where it came from, for messages (never the token). */
  from: string;
}

function readTokenFile(path: string): string | undefined {
  try {
    const token = readFileSync(path, 'utf8').trim();
    return token.length > 0 ? token : undefined;
  } catch {
    return undefined;
  }
}

export function findApiToken(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): FoundToken | undefined {
  if (env[TOKEN_ENV]) return { token: env[TOKEN_ENV]!.trim(), from: `$${TOKEN_ENV}` };
  if (env[TOKEN_FILE_ENV]) {
    const token = readTokenFile(env[TOKEN_FILE_ENV]!);
    return token ? { token, from: env[TOKEN_FILE_ENV]! } : undefined;
  }
  if (env.GANTRY_DATA_DIR) {
    const file = join(resolve(cwd, env.GANTRY_DATA_DIR), ADMIN_TOKEN_FILE);
    const token = readTokenFile(file);
    if (token) return { token, from: file };
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const file = join(dir, '.gantry', ADMIN_TOKEN_FILE);
    if (existsSync(file)) {
      const token = readTokenFile(file);
      if (token) return { token, from: file };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** How to get past a 401, for the CLI's error message. */
export const TOKEN_HINT = `set ${TOKEN_ENV}, ${TOKEN_FILE_ENV} or --token-file (gantry up keeps an admin token in .gantry/admin-token; gantry token create makes more)`;
