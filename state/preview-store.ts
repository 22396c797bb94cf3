import type { Redis } from 'ioredis';
import { parseStored } from './json.ts';
import type { Keys } from './keys.ts';
import type { PreviewApproval, PreviewRecord, ProviderName } from './records/preview.ts';

/**
 * The Redis values of the Git-hosting side: preview records of pull requests (`preview:<n>`, the
 * `previews` set), the id of Gantry's plan comment on each (`pr-comment:<n>`), and the webhook
 * deliveries already handled (`webhook-delivery:<provider>:<hash>`, with a TTL), and label
 * approvals (`pr-approval:<n>`). A preview's
 * desired records are written with the store's writeOwnedState, in the same MULTI as its record.
 */
export class PreviewStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Numbers of the pull requests that have a preview, ascending. */
  async numbers(): Promise<number[]> {
    return (await this.redis.smembers(this.keys.previews)).map(Number).sort((a, b) => a - b);
  }

  async read(n: number): Promise<PreviewRecord | undefined> {
    return parseStored<PreviewRecord>(await this.redis.get(this.keys.preview(n)));
  }

  /** Replaces the record of a preview that exists (its desired state is left as it is). */
  async write(record: PreviewRecord): Promise<void> {
    await this.redis.set(this.keys.preview(record.number), JSON.stringify(record));
  }

  async readCommentId(pr: number): Promise<string | undefined> {
    return (await this.redis.get(this.keys.prComment(pr))) ?? undefined;
  }

  async writeCommentId(pr: number, id: string): Promise<void> {
    await this.redis.set(this.keys.prComment(pr), id);
  }

  /** Forgets the comment id and returns it (the pull request is closed). */
  async takeCommentId(pr: number): Promise<string | undefined> {
    const key = this.keys.prComment(pr);
    const [[, id]] = ((await this.redis.multi().get(key).del(key).exec()) ?? [[null, null]]) as [[unknown, string | null]];
    return id ?? undefined;
  }

  /**
   * True the first time a delivery is claimed within `ttlSec`: when none of its hashes (of its id,
   * of its body) was claimed before. All are claimed in one MULTI, so a replay under a new id
   * still finds the body's.
   */
  async claimDelivery(provider: ProviderName, hashes: string | readonly string[], ttlSec: number): Promise<boolean> {
    const list = [...new Set(typeof hashes === 'string' ? [hashes] : hashes)];
    const tx = this.redis.multi();
    for (const h of list) tx.set(this.keys.webhookDelivery(provider, h), '1', 'EX', ttlSec, 'NX');
    const results = (await tx.exec()) ?? [];
    return results.length === list.length && results.every(([err, res]) => !err && res === 'OK');
  }

  async forgetDelivery(provider: ProviderName, hashes: string | readonly string[]): Promise<void> {
    const list = typeof hashes === 'string' ? [hashes] : hashes;
    if (list.length > 0) await this.redis.del(...list.map((h) => this.keys.webhookDelivery(provider, h)));
  }

  async readApproval(pr: number): Promise<PreviewApproval | undefined> {
    return parseStored<PreviewApproval>(await this.redis.get(this.keys.prApproval(pr)));
  }

  async writeApproval(pr: number, approval: PreviewApproval): Promise<void> {
    await this.redis.set(this.keys.prApproval(pr), JSON.stringify(approval));
  }
}
