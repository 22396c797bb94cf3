/**
 * Git sources: where Gantry's desired state comes from.
 *
 * A source is a repository (a local path, working or bare, or an http(s) URL), a branch and
 * a sub-path inside it. The desired state is always a commit: `resolve()` names the commit
 * the branch points at, `read()` returns the manifest files (*.yaml, *.yml, *.json) under
 * the sub-path at that commit, read from git objects without a checkout. `watch()` only
 * hints that the branch may have moved; the caller confirms with `resolve()`.
 *
 * Remote sources are cloned (no checkout) into `<dataDir>/git-cache/<hash of url>` and
 * fetched on each `resolve()`. Credentials come from `process.env[tokenEnv]` or from the
 * URL's userinfo and never appear in errors or `describe()`.
 */
import { LocalGitSource } from './local-source.ts';
import { RemoteGitSource } from './remote-source.ts';
import type { GitSource, SourceConfig } from './source-types.ts';

export { GitSourceError, isGitSourceError, type GitSourceErrorCode } from './errors.ts';
export { redact, redactUrl } from './redact.ts';
export { DEFAULT_TOKEN_ENV, type CommitFile, type CommitFiles, type CommitLimits, type FetchRefOptions, type GitSource, type ReadOptions, type SourceConfig } from './source-types.ts';
export { DEFAULT_COMMIT_LIMITS } from './tree-reader.ts';

export function isRemoteRepo(repo: string): boolean {
  return /^https?:\/\//i.test(repo.trim());
}

export function createGitSource(cfg: SourceConfig): GitSource {
  return isRemoteRepo(cfg.repo) ? new RemoteGitSource(cfg) : new LocalGitSource(cfg);
}
