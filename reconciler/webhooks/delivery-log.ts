import { createHash } from 'node:crypto';
import type { Store } from '../../state/store.ts';
import type { ProviderName } from '../../state/records/preview.ts';

/**
 * Remembers handled deliveries so that one delivered twice (a retry, a replay of a captured
 * request) acts once. Ids are hashed: providers' ids are not all valid key parts (braces,
 * uppercase). A delivery whose handling fails is forgotten again, so the host's redelivery, which
 * reuses the id, is not swallowed.
 */
export class DeliveryLog {
  constructor(
    private readonly store: Store,
    private readonly ttlSec: number,
  ) {}

  private hash(id: string): string {
    return createHash('sha256').update(id).digest('hex').slice(0, 32);
  }

  /** True the first time `id` is claimed within the TTL. */
  async claim(provider: ProviderName, id: string): Promise<boolean> {
    return this.store.previews.claimDelivery(provider, this.hash(id), this.ttlSec);
  }

  async forget(provider: ProviderName, id: string): Promise<void> {
    await this.store.previews.forgetDelivery(provider, this.hash(id));
  }
}
