import type { Store } from '../../state/store.ts';
import { NodeTable } from './node-table.ts';

/**
 * The scheduler's node cache: a NodeTable kept across batches, so a placement does not re-read
 * every node.
 *
 * - Node records (capacity, labels, runtimes, cordon) are re-read only when the node-set version
 *   moved (bumped after an agent registers or a node is cordoned or uncordoned) or on invalidate()
 *   (a node joined or freed room, announced on the changes channel).
 * - Allocations follow the bind script's own bookkeeping: each binding answers with its node's
 *   allocation after it, which the batch writes into the table. Other schedulers' bindings and
 *   deletes elsewhere are caught by re-reading heartbeats and allocations (one MGET and one
 *   read-node-allocs call, whatever the number of nodes) once they are older than `refreshMs`; a
 *   stale allocation can never over-commit a node, since the bind script re-checks each binding,
 *   and one it refuses answers with the node's real allocation.
 */
export class NodeCache {
  private table?: NodeTable;
  private version = '';
  private dynamicsAt = 0;

  constructor(
    private readonly store: Store,
    private readonly refreshMs: number,
  ) {}

  /** Forget everything: the next batch re-reads every node (four commands, whatever their number). */
  invalidate(): void {
    this.table = undefined;
  }

  /** The table to place a batch on, `nodesVersion` being what the batch read with its records. */
  async get(nodesVersion: string): Promise<NodeTable> {
    const now = Date.now();
    if (!this.table || this.version !== nodesVersion) {
      // The version was read before these records: a bump during the read only means one more reload.
      this.table = new NodeTable(await this.store.placement.readNodeTable());
      this.version = nodesVersion;
      this.dynamicsAt = now;
    } else if (now - this.dynamicsAt > this.refreshMs) {
      const table = this.table;
      const fresh = await this.store.placement.readNodeDynamics(table.names);
      table.setDynamics(fresh.heartbeatAt, fresh.alloc);
      this.dynamicsAt = now;
    }
    return this.table;
  }
}
