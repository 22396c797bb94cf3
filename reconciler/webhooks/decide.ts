import { normalizeRepoUrl, sameRepository } from './repo-url.ts';
import type { PullRequestEvent, WebhookEvent } from './webhook-event.ts';

/**
 * What an authenticated webhook event asks of Gantry, pure: sync the tracked branch now, open,
 * update or close a pull request's preview, or nothing (with the reason, which the response
 * carries back to the Git host's delivery log).
 */

export interface TrackedSource {
  /** Normalized URLs (normalizeRepoUrl) that name the tracked repository. */
  urls: ReadonlySet<string>;
  /** Short branch name. */
  branch: string;
  /** The label that allows a preview: adding or removing it re-checks a pull request; other labels change nothing. */
  previewLabel?: string;
}

export type Decision =
  | { action: 'pong' }
  | { action: 'sync'; commit: string }
  | { action: 'preview'; pr: PullRequestEvent }
  | { action: 'close-preview'; pr: PullRequestEvent }
  | { action: 'ignore'; reason: string };

function otherRepository(urls: string[], tracked: TrackedSource): string {
  const shown = urls.map(normalizeRepoUrl).find((u) => u !== undefined) ?? 'an unnamed repository';
  return tracked.urls.size === 0
    ? `repository ${shown} is not tracked (the source is a local path: name its remote with --webhook-repo)`
    : `repository ${shown} is not the tracked one (${[...tracked.urls][0]})`;
}

export function decide(ev: WebhookEvent, tracked: TrackedSource): Decision {
  if (ev.type === 'ping') return { action: 'pong' };
  if (!sameRepository(ev.repo.urls, tracked.urls)) return { action: 'ignore', reason: otherRepository(ev.repo.urls, tracked) };
  const branchRef = `refs/heads/${tracked.branch}`;
  if (ev.type === 'push') {
    const update = ev.updates.find((u) => u.ref === branchRef);
    if (!update) return { action: 'ignore', reason: `push to ${ev.updates.map((u) => u.ref).join(', ') || 'no branch'}, not to the tracked branch ${tracked.branch}` };
    if (update.deleted) return { action: 'ignore', reason: `the tracked branch ${tracked.branch} was deleted; the last applied commit keeps running` };
    return { action: 'sync', commit: update.after };
  }
  if (ev.baseBranch !== tracked.branch) return { action: 'ignore', reason: `pull request #${ev.number} targets ${ev.baseBranch}, not the tracked branch ${tracked.branch}` };
  if (ev.action === 'open' || ev.action === 'update') return { action: 'preview', pr: ev };
  if (ev.action === 'close') return { action: 'close-preview', pr: ev };
  if (ev.action === 'label') {
    const names = ev.labelChange?.names;
    const label = tracked.previewLabel?.toLowerCase();
    if (names !== undefined && label !== undefined && !names.some((x) => x.toLowerCase() === label)) {
      return { action: 'ignore', reason: `pull request #${ev.number}: label ${names.join(', ') || '(none)'} is not the preview label ${tracked.previewLabel}` };
    }
    // Whether the label now allows or stops a preview is checked against the Git host, not the payload.
    return { action: 'preview', pr: ev };
  }
  return { action: 'ignore', reason: `pull request action "${ev.rawAction}" changes nothing Gantry deploys` };
}
