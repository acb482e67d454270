/**
 * Sealed batches (the `batches` table) and each partition's outbox cursor.
 *
 * A batch record lists the sequences of its events; the events stay in the
 * journal until the batch is settled, so the body is rebuilt from the same
 * stored strings on every send: the same bytes under the same Idempotency-Key.
 * Per partition, events past the last sealed batch's highest sequence are unsent.
 * Only the uplink seals and settles, one batch at a time per partition.
 */
import type { Database } from 'lmdb';
import { PlantgateError } from '../errors.js';
import { SEQ_MAX, batchId, type BatchRecord, type PartitionKey } from './layout.js';
import type { BatchLimits, SealedBatch } from './types.js';

export class BatchLedger {
  /** Per partition: highest sequence of its last sealed batch. */
  private readonly sealedUpTo = new Map<string, number>();
  /** Per partition: the limits of its last nextBatch, to seal the next full batch inside a settle. */
  private readonly lastLimits = new Map<string, BatchLimits>();

  constructor(
    private readonly table: Database<BatchRecord, PartitionKey>,
    private readonly journal: Database<string, PartitionKey>,
    private readonly storeId: () => string,
    /** Journal key a partition's unsent events end before (a hold stops it short). */
    private readonly unsentEnd: (partition: string) => PartitionKey,
  ) {}

  /** Reads the cursors from the sealed batches at open (few: at most a handful per partition). */
  load(): void {
    for (const { key, value } of this.table.getRange()) {
      const top = value.seqs[value.seqs.length - 1]!;
      if (top > (this.sealedUpTo.get(key[0]) ?? 0)) this.sealedUpTo.set(key[0], top);
    }
  }

  /** First journal sequence of a partition that no batch holds. */
  unsentFrom(partition: string): number {
    return (this.sealedUpTo.get(partition) ?? 0) + 1;
  }

  /** The oldest sealed batch, else a new one sealed durably from unsent events. */
  async next(partition: string, limits: BatchLimits): Promise<SealedBatch | undefined> {
    this.lastLimits.set(partition, limits);
    for (const { value } of this.table.getRange({ start: [partition, 0], end: [partition, SEQ_MAX], limit: 1 })) return toSealed(partition, value);
    const record = this.collect(partition, limits);
    if (!record) return undefined;
    this.seal(partition, record);
    await this.table.put([partition, record.seqs[0]!], record);
    return toSealed(partition, record);
  }

  /**
   * Inside the settle transaction: removes the settled batch, stores the retry
   * part, or else seals the next batch if it is already full (or any size, when
   * the caller does not linger). A backlog, or a steady flow, thus needs one flush
   * per batch, not two; otherwise a partial batch is left to next(), so lingering
   * for more events still works.
   */
  settleInTxn(batch: SealedBatch, retrySeqs: number[]): SealedBatch | undefined {
    const p = batch.partition;
    this.table.remove([p, batch.seqs[0]!]);
    if (retrySeqs.length > 0) {
      const retry = this.record(p, retrySeqs);
      this.table.put([p, retrySeqs[0]!], retry);
      return toSealed(p, retry);
    }
    const limits = this.lastLimits.get(p);
    if (limits && !this.hasSealed(p)) {
      const next = this.collect(p, limits);
      if (next && (next.full || limits.sealPartialAhead)) {
        const { full: _, ...record } = next;
        this.table.put([p, record.seqs[0]!], record);
        this.seal(p, record);
      }
    }
    return undefined;
  }

  /** Replaces a batch by its two halves, in order, in one transaction. */
  async split(batch: SealedBatch, transaction: (action: () => void) => Promise<unknown>): Promise<[SealedBatch, SealedBatch]> {
    if (batch.seqs.length < 2) throw new PlantgateError('PG_ERR_UPLINK_REJECTED', `batch ${batch.id} holds one event and cannot be split`);
    const p = batch.partition;
    const mid = Math.ceil(batch.seqs.length / 2);
    const halves = [this.record(p, batch.seqs.slice(0, mid)), this.record(p, batch.seqs.slice(mid))] as const;
    await transaction(() => {
      this.table.remove([p, batch.seqs[0]!]);
      for (const h of halves) this.table.put([p, h.seqs[0]!], h);
    });
    return [toSealed(p, halves[0]), toSealed(p, halves[1])];
  }

  body(batch: SealedBatch): Buffer {
    const parts: string[] = new Array(batch.seqs.length);
    for (let i = 0; i < batch.seqs.length; i++) {
      const json = this.journal.get([batch.partition, batch.seqs[i]!]);
      if (json === undefined) throw new PlantgateError('PG_ERR_BUFFER_COMMIT', `event ${batch.seqs[i]} of batch ${batch.id} is missing from the journal`);
      parts[i] = json;
    }
    return Buffer.from(`[${parts.join(',')}]`);
  }

  forget(partition: string): void {
    this.sealedUpTo.delete(partition);
    this.lastLimits.delete(partition);
  }

  private seal(partition: string, record: BatchRecord): void {
    this.sealedUpTo.set(partition, record.seqs[record.seqs.length - 1]!);
  }

  private hasSealed(partition: string): boolean {
    for (const _ of this.table.getKeys({ start: [partition, 0], end: [partition, SEQ_MAX], limit: 1 })) return true;
    return false;
  }

  /** The next batch of unsent events within the limits, and whether it is full. */
  private collect(partition: string, limits: BatchLimits): (BatchRecord & { full: boolean }) | undefined {
    const seqs: number[] = [];
    let bytes = 2;
    let full = false;
    for (const { key, value } of this.journal.getRange({ start: [partition, this.unsentFrom(partition)], end: this.unsentEnd(partition), limit: limits.maxEvents })) {
      const size = Buffer.byteLength(value) + 1;
      if (seqs.length > 0 && bytes + size > limits.maxBytes) {
        full = true;
        break;
      }
      seqs.push(key[1]);
      bytes += size;
    }
    if (seqs.length === 0) return undefined;
    return { id: batchId(this.storeId(), seqs), seqs, bytes: bytes - 1, sealedAt: new Date().toISOString(), full: full || seqs.length === limits.maxEvents };
  }

  private record(partition: string, seqs: number[]): BatchRecord {
    const bytes = seqs.reduce((n, s) => n + Buffer.byteLength(this.journal.get([partition, s]) ?? '') + 1, 1);
    return { id: batchId(this.storeId(), seqs), seqs, bytes, sealedAt: new Date().toISOString() };
  }
}

function toSealed(partition: string, r: BatchRecord): SealedBatch {
  return { id: r.id, partition, seqs: r.seqs, bytes: r.bytes, sealedAt: r.sealedAt };
}
