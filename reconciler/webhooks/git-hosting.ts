import type { SourceSync } from '../controller/source-sync.ts';
import { isRemoteRepo, type SourceConfig } from '../git/source.ts';
import { type GitHostConfig } from '../git-host/git-host-client.ts';
import { PrReporter } from '../git-host/pr-reporter.ts';
import { createGitHostClient } from '../git-host/rest-clients.ts';
import { normalizeBranch } from '../git/local-source.ts';
import { DEFAULT_PREVIEW_OPTIONS, PreviewManager, type PreviewOptions } from '../preview/preview-manager.ts';
import type { Store } from '../../state/store.ts';
import { normalizeRepoUrl } from './repo-url.ts';
import { DEFAULT_DELIVERY_TTL_SEC, DEFAULT_WEBHOOK_MAX_BODY_BYTES, DEFAULT_WEBHOOK_SECRET_ENV, type WebhookRouteDeps } from './routes.ts';

/**
 * Wires the Git-hosting features into the reconciler: webhook routes, the preview manager and the
 * reporter that talks to the Git host's API (only when a host is configured).
 */

export interface WebhookOptions {
  /** Environment variable holding the shared webhook secret; default GANTRY_WEBHOOK_SECRET. */
  secretEnv?: string;
  /** Bodies above this get 413; default 1 MiB. */
  maxBodyBytes?: number;
  deliveryTtlSec?: number;
  /** More URLs naming the tracked repository (for a local source mirroring a hosted one). */
  repoUrls?: string[];
}

export interface GitHostingOptions {
  webhooks?: WebhookOptions;
  previews?: Partial<PreviewOptions>;
  /** Where to report commit statuses and the plan comment; absent: nothing is reported. */
  gitHost?: GitHostConfig;
}

export function setUpGitHosting(
  opts: GitHostingOptions,
  deps: { source: SourceConfig; store: Store; sync: SourceSync; enqueue: (key: string) => void; log: (line: string) => void },
): { webhooks: WebhookRouteDeps; previews: PreviewManager } {
  const { store, sync, log } = deps;
  // One client both reports to the host and re-checks pull requests there before a preview runs.
  const host = opts.gitHost ? createGitHostClient(opts.gitHost) : undefined;
  const reporter = new PrReporter(host, store, log);
  const previewOptions = { ...DEFAULT_PREVIEW_OPTIONS, ...definedOnly(opts.previews ?? {}) };
  const previews = new PreviewManager({ store, sync, enqueue: deps.enqueue, reporter, host, log }, previewOptions);
  const urls = new Set(
    [...(isRemoteRepo(deps.source.repo) ? [deps.source.repo] : []), ...(opts.webhooks?.repoUrls ?? [])].map(normalizeRepoUrl).filter((u): u is string => u !== undefined),
  );
  const webhooks: WebhookRouteDeps = {
    store,
    secretEnv: opts.webhooks?.secretEnv ?? DEFAULT_WEBHOOK_SECRET_ENV,
    maxBodyBytes: opts.webhooks?.maxBodyBytes ?? DEFAULT_WEBHOOK_MAX_BODY_BYTES,
    deliveryTtlSec: opts.webhooks?.deliveryTtlSec ?? DEFAULT_DELIVERY_TTL_SEC,
    tracked: { urls, branch: normalizeBranch(deps.source.branch), previewLabel: previewOptions.trustLabel },
    handlers: {
      sync: () => sync.sync(),
      preview: (pr, provider) => previews.upsert(pr, provider),
      closePreview: (pr) => previews.close(pr),
    },
    log,
  };
  return { webhooks, previews };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
