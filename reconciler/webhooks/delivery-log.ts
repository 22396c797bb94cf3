import { createHash } from 'node:crypto';
import type { Store } from '../../state/store.ts';
import type { ProviderName } from '../../state/records/preview.ts';

/**
 * Remembers handled deliveries so that one delivered twice (a retry, a replay of a captured
 * request) acts once. A delivery is known by its id and by its body: a captured request replayed
 * under a new delivery id has the same body bytes, whose signature is still valid, so the body's
 * hash is claimed too (real deliveries of different events differ in their bodies: shas,
 * timestamps). Both are hashed: providers' ids are not all valid key parts (braces, uppercase).
 * A delivery whose handling fails is forgotten again, so the host's redelivery, which reuses the
 * id and the body, is not swallowed.
 */
export class DeliveryLog {
  constructor(
    private readonly store: Store,
    private readonly ttlSec: number,
  ) {}

  private hashes(id: string, body?: Buffer): string[] {
    const h = (kind: string, data: string | Buffer) => createHash('sha256').update(kind).update(data).digest('hex').slice(0, 32);
    // The id's hash is of the id alone, as before, so deliveries claimed by an older reconciler still count.
    const idHash = createHash('sha256').update(id).digest('hex').slice(0, 32);
    return body === undefined ? [idHash] : [idHash, h('body\0', body)];
  }

  /** True the first time a delivery is seen within the TTL: neither its id nor its body was claimed before. */
  async claim(provider: ProviderName, id: string, body?: Buffer): Promise<boolean> {
    return this.store.previews.claimDelivery(provider, this.hashes(id, body), this.ttlSec);
  }

  async forget(provider: ProviderName, id: string, body?: Buffer): Promise<void> {
    await this.store.previews.forgetDelivery(provider, this.hashes(id, body));
  }
}
