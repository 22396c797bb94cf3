import type { Store } from '../../state/store.ts';
import type { CommitStatus, GitHostClient } from './git-host-client.ts';
import { shortSha } from '../../lib/short-sha.ts';

/**
 * What the preview flow tells the Git host, best effort: a failed report is logged (token-free)
 * and never fails a deploy. One comment per pull request: its id is kept in Redis, so every
 * later report edits it in place (also across reconciler restarts); one deleted by hand is
 * recreated. Calls for one pull request are serialized, so two quick pushes cannot create two.
 * Without a configured Git host every call is a no-op.
 */
export class PrReporter {
  private readonly chains = new Map<number, Promise<unknown>>();

  constructor(
    private readonly client: GitHostClient | undefined,
    private readonly store: Store,
    private readonly log: (line: string) => void,
  ) {}

  get enabled(): boolean {
    return this.client !== undefined;
  }

  async status(repo: string, sha: string, status: CommitStatus): Promise<void> {
    if (!this.client) return;
    try {
      await this.client.setStatus(repo, sha, status);
    } catch (err) {
      this.log(`git host: commit status ${status.context}=${status.state} on ${shortSha(sha)} failed: ${message(err)}`);
    }
  }

  /** Creates or edits Gantry's comment on the pull request. */
  comment(repo: string, pr: number, body: string): Promise<void> {
    return this.serial(pr, async () => {
      if (!this.client) return;
      try {
        const id = await this.store.previews.readCommentId(pr);
        if (id && (await this.client.updateComment(repo, pr, id, body))) return;
        await this.store.previews.writeCommentId(pr, await this.client.createComment(repo, pr, body));
      } catch (err) {
        this.log(`git host: comment on pull request #${pr} failed: ${message(err)}`);
      }
    });
  }

  /** Edits the comment a last time (if there is one) and forgets its id: the pull request is closed. */
  finalComment(repo: string, pr: number, body: string): Promise<void> {
    return this.serial(pr, async () => {
      const id = await this.store.previews.takeCommentId(pr);
      if (!this.client || !id) return;
      try {
        await this.client.updateComment(repo, pr, id, body);
      } catch (err) {
        this.log(`git host: comment on pull request #${pr} failed: ${message(err)}`);
      }
    });
  }

  private serial<T>(pr: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(pr) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(pr, tail);
    void tail.then(() => {
      if (this.chains.get(pr) === tail) this.chains.delete(pr);
    });
    return next;
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
