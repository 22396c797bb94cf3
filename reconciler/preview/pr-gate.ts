import type { GitHostClient, PullRequestInfo } from '../git-host/git-host-client.ts';
import type { Store } from '../../state/store.ts';
import type { ProviderName } from '../../state/records/preview.ts';
import type { PullRequestEvent } from '../webhooks/webhook-event.ts';
import { shortSha } from '../../lib/short-sha.ts';
import { decideTrust, type TrustDecision, type TrustFacts, type TrustPolicy } from './pr-trust.ts';

/**
 * The shell around decideTrust: what may be done for a pull request now. A webhook payload is
 * authentic (signed), but it can be old: a captured delivery can be replayed, a label removed
 * since. So when a Git host API is configured, the pull request is read from it before a preview
 * is deployed (open? still at the head that was fetched? who wrote it, which labels, who added
 * the trust label and what they may do) and before one is torn down (really closed?). Without a
 * host only the payload's facts count: same repository and GitHub's author_association.
 * The host is asked only what the decision still needs; a failed call throws (GitHostError),
 * so nothing is deployed on facts that could not be checked.
 */

export type GateResult =
  /** The host says the pull request is closed, merged or unknown: nothing may run for it. */
  | { kind: 'gone'; why: string; merged: boolean }
  /** Its head at the host is not the commit fetched: the newer head's own event deploys it. */
  | { kind: 'moved'; head: string }
  | { kind: 'checked'; decision: TrustDecision; checked: boolean };

const samePrefix = (a: string, b: string) => a.length > 0 && b.length > 0 && (a.startsWith(b) || b.startsWith(a));

export class PullRequestGate {
  constructor(
    private readonly deps: { host?: GitHostClient; store: Store },
    readonly policy: TrustPolicy,
  ) {}

  /** Whether the preview of `pr` may run `commit`. */
  async check(pr: PullRequestEvent, provider: ProviderName, commit: string): Promise<GateResult> {
    const { host, store } = this.deps;
    const repo = pr.repo.apiName;
    const facts: TrustFacts = {
      provider,
      checked: false,
      baseRepo: repo,
      ...(pr.headRepo !== undefined ? { headRepo: pr.headRepo } : {}),
      ...(pr.author ? { author: pr.author.login } : {}),
      ...(pr.authorAssociation ? { association: pr.authorAssociation } : {}),
    };
    if (!host) return { kind: 'checked', decision: decideTrust(facts, this.policy), checked: false };

    const info = await host.getPullRequest(repo, pr.number);
    if (!info) return { kind: 'gone', why: `the Git host does not know pull request #${pr.number} of ${repo} (or the token may not read it)`, merged: false };
    if (info.state !== 'open') return { kind: 'gone', why: `pull request #${pr.number} is ${info.state} at the Git host`, merged: info.state === 'merged' };
    if (!samePrefix(info.headSha, commit)) return { kind: 'moved', head: info.headSha };
    const now: TrustFacts = {
      provider,
      checked: true,
      baseRepo: info.baseRepo,
      headRepo: info.headRepo,
      author: info.author.login,
      ...(info.authorAssociation ? { association: info.authorAssociation } : {}),
    };
    let decision = decideTrust(now, this.policy);
    const rules = new Set(this.policy.rules);
    if (!decision.trusted && rules.has('author') && info.authorAssociation === undefined) {
      now.authorAccess = await host.accessOf(repo, info.author);
      decision = decideTrust(now, this.policy);
    }
    if (!decision.trusted && rules.has('label')) {
      now.label = await this.labelFacts(host, store, repo, pr.number, info, commit);
      decision = decideTrust(now, this.policy);
    }
    return { kind: 'checked', decision, checked: true };
  }

  /**
   * False when the host says the pull request is open (a replayed or stale close must not remove
   * its preview); true when it is closed or unknown, and also when the host cannot be asked:
   * removing a preview runs nothing, so a close is not held up by an unreachable host.
   */
  async closed(pr: PullRequestEvent, log: (line: string) => void): Promise<boolean> {
    if (!this.deps.host) return true;
    try {
      const info = await this.deps.host.getPullRequest(pr.repo.apiName, pr.number);
      return info?.state !== 'open';
    } catch (err) {
      log(`preview #${pr.number}: cannot check at the Git host that it is closed (${err instanceof Error ? err.message : String(err)}); removing its preview anyway`);
      return true;
    }
  }

  private async labelFacts(host: GitHostClient, store: Store, repo: string, n: number, info: PullRequestInfo, commit: string): Promise<TrustFacts['label']> {
    const label = this.policy.label.toLowerCase();
    if (!info.labels.some((l) => l.toLowerCase() === label)) return { present: false };
    const event = await host.lastLabeled(repo, n, this.policy.label);
    if (!event) return { present: true };
    const byAccess = await host.accessOf(repo, event.user);
    const facts = { present: true, by: event.user.login, byAccess };
    const trusted = decideTrust({ provider: host.kind, checked: true, baseRepo: repo, label: facts }, { ...this.policy, rules: ['label'] }).trusted;
    if (!trusted) return facts;
    // The approval is of the head it was first seen with; a new label event approves anew.
    const approval = await store.previews.readApproval(n);
    if (!approval || approval.event !== event.id) {
      await store.previews.writeApproval(n, { event: event.id, commit, by: event.user.login, at: Date.now() });
      return facts;
    }
    return samePrefix(approval.commit, commit) ? facts : { ...facts, approvedHead: shortSha(approval.commit) };
  }
}
