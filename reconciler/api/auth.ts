import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './http-error.ts';

/**
 * Who may use the API: bearer tokens with a role. `read` may GET everything (logs included);
 * `admin` may also act (sync, rollout commands, cordon/uncordon/drain, deletes). `/healthz` is
 * open. A missing or unknown token gets 401, a read token on an admin route 403.
 *
 * Tokens are never stored in the clear on the reconciler's side: the tokens file holds one line per
 * token, `<name> <role> sha256:<hex>`, and a presented token is hashed and compared against every
 * entry in constant time. Tokens come from that file (re-read when it changes, so `gantry token
 * create` takes effect at once) or from the environment (GANTRY_API_ADMIN_TOKEN,
 * GANTRY_API_READ_TOKEN), never from argv, and never appear in logs.
 */

export type ApiRole = 'read' | 'admin';
export const API_ROLES: readonly ApiRole[] = ['read', 'admin'];

export interface TokenEntry {
  name: string;
  role: ApiRole;
  /** sha256 of the token. */
  hash: Buffer;
}

export interface Caller {
  name: string;
  role: ApiRole;
}

/** Environment variables holding tokens the reconciler accepts (their values are the tokens). */
export const ADMIN_TOKEN_ENV = 'GANTRY_API_ADMIN_TOKEN';
export const READ_TOKEN_ENV = 'GANTRY_API_READ_TOKEN';
/** In a data dir: the hashes the reconciler accepts, and the admin token `gantry up` made for the CLI. */
export const TOKENS_FILE = 'api-tokens';
export const ADMIN_TOKEN_FILE = 'admin-token';

const NAME = /^[A-Za-z0-9][-A-Za-z0-9_.@]{0,62}$/;

/** A new random token: 32 bytes, base64url, with a prefix that makes a leaked one easy to find. */
export function generateToken(): string {
  return `gantry_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function formatTokenLine(name: string, role: ApiRole, token: string): string {
  if (!NAME.test(name)) throw new TypeError(`invalid token name ${JSON.stringify(name)}: letters, digits and - _ . @`);
  return `${name} ${role} sha256:${hashToken(token).toString('hex')}\n`;
}

/** Parses a tokens file; bad lines are reported (by number, never by content) and skipped. */
export function parseTokensFile(text: string): { entries: TokenEntry[]; errors: string[] } {
  const entries: TokenEntry[] = [];
  const errors: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [name = '', role = '', hash = '', ...rest] = line.split(/\s+/);
    const hex = /^sha256:([0-9a-f]{64})$/.exec(hash)?.[1];
    if (rest.length > 0 || !NAME.test(name) || !API_ROLES.includes(role as ApiRole) || !hex) {
      errors.push(`line ${i + 1}: expected "<name> <read|admin> sha256:<64 hex digits>"`);
      return;
    }
    entries.push({ name, role: role as ApiRole, hash: Buffer.from(hex, 'hex') });
  });
  return { entries, errors };
}

/** The tokens the API accepts: from a file (re-read when it changes) and from the environment. */
export class ApiTokens {
  private fileEntries: TokenEntry[] = [];
  private fileStamp = '';
  private checkedAt = 0;

  constructor(
    private readonly opts: { file?: string; fixed?: TokenEntry[]; log?: (line: string) => void; recheckMs?: number } = {},
  ) {
    this.reloadIfChanged(true);
  }

  /** Tokens given as plain values (from the environment, or a test). */
  static entry(name: string, role: ApiRole, token: string): TokenEntry {
    return { name, role, hash: hashToken(token) };
  }

  static fromEnvironment(env: NodeJS.ProcessEnv, file?: string, log?: (line: string) => void): ApiTokens {
    const fixed: TokenEntry[] = [];
    if (env[ADMIN_TOKEN_ENV]) fixed.push(ApiTokens.entry('env-admin', 'admin', env[ADMIN_TOKEN_ENV]!));
    if (env[READ_TOKEN_ENV]) fixed.push(ApiTokens.entry('env-read', 'read', env[READ_TOKEN_ENV]!));
    return new ApiTokens({ file, fixed, log });
  }

  /** How many tokens are accepted now. */
  get size(): number {
    this.reloadIfChanged();
    return this.fileEntries.length + (this.opts.fixed?.length ?? 0);
  }

  /** The caller a presented token belongs to. Every entry is compared, so timing tells nothing. */
  verify(token: string): Caller | undefined {
    this.reloadIfChanged();
    const presented = hashToken(token);
    let found: TokenEntry | undefined;
    for (const e of [...(this.opts.fixed ?? []), ...this.fileEntries]) {
      if (timingSafeEqual(presented, e.hash) && !found) found = e;
    }
    return found ? { name: found.name, role: found.role } : undefined;
  }

  private reloadIfChanged(force = false): void {
    const file = this.opts.file;
    if (!file) return;
    const now = Date.now();
    if (!force && now - this.checkedAt < (this.opts.recheckMs ?? 1000)) return;
    this.checkedAt = now;
    let stamp = 'missing';
    try {
      const s = statSync(file);
      stamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      // no file: no file tokens
    }
    if (stamp === this.fileStamp) return;
    this.fileStamp = stamp;
    if (stamp === 'missing') {
      this.fileEntries = [];
      return;
    }
    const { entries, errors } = parseTokensFile(readFileSync(file, 'utf8'));
    for (const e of errors) this.opts.log?.(`api tokens ${file}: ${e} (skipped)`);
    this.fileEntries = entries;
  }
}

/** Appends a token's hash to a tokens file (created 0600). */
export function addTokenToFile(file: string, name: string, role: ApiRole, token: string): void {
  const line = formatTokenLine(name, role, token);
  if (existsSync(file) && parseTokensFile(readFileSync(file, 'utf8')).entries.some((e) => e.name === name)) {
    throw new HttpError('CONFLICT', `a token named ${name} exists already in ${file}`);
  }
  writeOwnerOnly(file, line, 'a');
  chmodSync(file, 0o600);
}

/** Writes a secret file readable by its owner only, failing if it exists (`wx`). */
export function writeSecretFile(file: string, content: string): void {
  writeOwnerOnly(file, content, 'wx');
}

/** Opens with `flag` and mode 0600 (a new file is never readable by others, not even briefly). */
function writeOwnerOnly(file: string, content: string, flag: 'a' | 'wx'): void {
  mkdirSync(dirname(file), { recursive: true });
  const fd = openSync(file, flag, 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes sure a data dir's API has an admin token: when neither the tokens file nor the environment
 * gives one, a token is generated, its hash added to `<dataDir>/api-tokens` and the token itself
 * written to `<dataDir>/admin-token` (both 0600), where the CLI finds it. Returns the admin token
 * file when one was created or exists.
 */
export function ensureAdminToken(tokensFile: string, adminTokenFile: string, env: NodeJS.ProcessEnv = process.env): { created: boolean } {
  if (env[ADMIN_TOKEN_ENV]) return { created: false };
  const existing = existsSync(tokensFile) ? parseTokensFile(readFileSync(tokensFile, 'utf8')).entries : [];
  if (existing.some((e) => e.role === 'admin')) return { created: false };
  const token = generateToken();
  writeSecretFile(adminTokenFile, `${token}\n`);
  addTokenToFile(tokensFile, 'admin', 'admin', token);
  return { created: true };
}

/** The role a route needs: its `config.role`, else read for GET/HEAD and admin for anything else. */
function requiredRole(req: FastifyRequest): ApiRole {
  const configured = (req.routeOptions.config as { role?: ApiRole } | undefined)?.role;
  if (configured) return configured;
  return req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'admin';
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** Every route under /api/v1, and /metrics (a `read` token: Prometheus sends it), requires a token with the route's role. */
export function registerAuth(app: FastifyInstance, tokens: ApiTokens): void {
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (path !== '/api/v1' && !path.startsWith('/api/v1/') && path !== '/metrics') return;
    const token = bearer(req);
    const caller = token === undefined ? undefined : tokens.verify(token);
    if (!caller) {
      void reply.header('www-authenticate', 'Bearer realm="gantry"');
      throw new HttpError('UNAUTHORIZED', token === undefined ? 'a bearer token is required (Authorization: Bearer <token>)' : 'unknown token');
    }
    if (requiredRole(req) === 'admin' && caller.role !== 'admin') {
      throw new HttpError('FORBIDDEN', `token ${caller.name} has the read role; this needs admin`);
    }
  });
}
