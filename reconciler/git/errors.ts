import { GantryError, registerErrorClass, type GantryErrorJSON } from '../../lib/errors/index.ts';

/**
 * Errors raised by the Git source layer. Every message and data value is scrubbed of
 * credentials before the error is constructed, and no raw `cause` is attached: Node's
 * inspector prints causes verbatim, and isomorphic-git errors can echo URLs and headers.
 * Status and policy of each code are in lib/errors/codes.ts.
 */

export type GitSourceErrorCode =
  | 'NOT_A_REPOSITORY'
  | 'BRANCH_NOT_FOUND'
  | 'COMMIT_NOT_FOUND'
  | 'SUBPATH_NOT_FOUND'
  | 'INVALID_CONFIG'
  | 'AUTH_FAILED'
  | 'FETCH_FAILED'
  | 'READ_FAILED'
  /** More manifest files, bytes, tree entries or directory levels than the limits of a commit. */
  | 'COMMIT_TOO_LARGE'
  /** A fetch brought an object, or a pack, past the fetch limits (pack-guard.ts); stopped unkept. */
  | 'FETCH_TOO_LARGE';

export class GitSourceError extends GantryError {
  declare readonly code: GitSourceErrorCode;

  constructor(code: GitSourceErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
  }

  override toJSON(): Required<GantryErrorJSON> & { code: GitSourceErrorCode } {
    return { name: this.name, code: this.code, message: this.message, data: this.data };
  }
}
registerErrorClass(GitSourceError, 'GitSourceError');

export function isGitSourceError(err: unknown): err is GitSourceError {
  return err instanceof GitSourceError;
}

/** The `code` isomorphic-git (or Node) put on an error, if any. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
