/**
 * Which events a batch about to be sealed takes (batches.ts), within the limits and
 * in sequence order: a waiting batch's events first when it is sealed again, then the
 * partition's events the journal holds past them (read only when a write that ended
 * put some there: lmdb-js cursors outlive young collections), then those offered in
 * this event-loop turn, whose puts are pending in the transaction the seal joins.
 */
import { batchId, type BatchRecord, type JournalBytes, type PartitionKey } from './layout.js';
import type { JournalWrites } from './journal-writes.js';
import type { BatchLimits } from './types.js';

/** A batch about to be sealed: its record, its events' stored bytes, whether it is full, and the sequence it starts after. */
export interface Collected {
  record: BatchRecord;
  values: Buffer[];
  full: boolean;
  /** Below it, every event is in a stored batch (a prefix stays stored if this seal fails). */
  after: number;
}

export interface CollectRange {
  partition: string;
  /** The events taken are above this sequence... */
  after: number;
  /** ...and below this key. */
  end: PartitionKey;
  /** Events that come first, all or none (undefined then): a waiting batch sealed again. */
  prefix?: { seqs: readonly number[]; values: readonly Buffer[] };
}

export function collectBatch(journal: JournalBytes, writes: JournalWrites, storeId: string, limits: BatchLimits, range: CollectRange): Collected | undefined {
  const { partition, end, prefix } = range;
  const seqs: number[] = [];
  const values: Buffer[] = [];
  let bytes = 2;
  let full = false;
  /** Adds an event unless the batch has no room for it; false once the batch is full. */
  const take = (seq: number, value: Buffer): boolean => {
    const size = value.length + 1;
    if (seqs.length > 0 && bytes + size > limits.maxBytes) {
      full = true;
      return false;
    }
    seqs.push(seq);
    values.push(value);
    bytes += size;
    if (seqs.length === limits.maxEvents) full = true;
    return !full;
  };
  let last = range.after;
  if (prefix) {
    for (let i = 0; i < prefix.seqs.length; i++) if (!take(prefix.seqs[i]!, prefix.values[i]!) && i < prefix.seqs.length - 1) return undefined;
    if (full) return undefined;
    last = prefix.seqs[prefix.seqs.length - 1]!;
  }
  const after = last;
  if (writes.highestEnded(partition) > last) {
    for (const { key, value } of journal.getRange({ start: [partition, last + 1], end, limit: limits.maxEvents })) {
      last = key[1];
      if (!take(key[1], value)) break;
    }
  }
  const offered = writes.offered(partition);
  if (offered && !full) {
    for (let i = 0; i < offered.seqs.length && offered.seqs[i]! < end[1]; i++) if (offered.seqs[i]! > last && !take(offered.seqs[i]!, offered.values[i]!)) break;
  }
  if (seqs.length === 0) return undefined;
  const record = { id: batchId(storeId, seqs), seqs, bytes: bytes - 1, sealedAt: new Date().toISOString() };
  return { record, values, full, after };
}
