/**
 * Sealed batches (the `batches` table) and each partition's outbox cursor.
 *
 * A batch record lists the sequences of its events; the events stay in the
 * journal until the batch is settled, so the body is rebuilt from the same
 * stored bytes on every send (batch-bodies.ts): the same bytes under the same
 * Idempotency-Key.
 * Per partition, events past the last sealed batch's highest sequence are unsent;
 * what the journal holds past it is known from journal-writes.ts, without a seek.
 * Only the uplink seals and settles: one batch out at a time per partition, and at
 * most one more sealed behind it (sealAhead).
 *
 * The cursors and counts in memory change only once the write that sealed or
 * removed a batch has committed: a failed transaction leaves them as they were.
 */
import type { Database } from 'lmdb';
import { PlantgateError } from '../errors.js';
import { BatchBodies } from './batch-bodies.js';
import { SEQ_MAX, batchId, type BatchRecord, type JournalBytes, type PartitionKey } from './layout.js';
import type { JournalWrites } from './journal-writes.js';
import type { BatchLimits, SealedBatch } from './types.js';

/** A batch sealed in a commit's transaction while the one before it was out (sealAhead). */
interface AheadBatch {
  batch: SealedBatch;
  /** The commit's write: resolved once the batch is stored, rejected if the commit failed. */
  durable: Promise<void>;
  /** Its write has not ended: no other seal of the partition runs. */
  pending: boolean;
  /** The uplink took it to send. */
  taken: boolean;
}

/** A settle's retry batch, and what it changed, applied to memory once its writes committed. */
export interface SettleResult {
  retry: SealedBatch | undefined;
  commit(): void;
  /** The settle's transaction also seals the next batch. */
  sealedNext: boolean;
}

export class BatchLedger {
  /** Per partition: highest sequence of its last sealed batch. */
  private readonly sealedUpTo = new Map<string, number>();
  /** Per partition: batch records in the table (none: no read needed to know). */
  private readonly sealedCount = new Map<string, number>();
  /** Per partition: the limits of its last nextBatch, to seal the next full batch inside a settle. */
  private readonly lastLimits = new Map<string, BatchLimits>();
  private readonly bodies: BatchBodies;
  /** Per partition: its last sealed batch, while it is the one in the table (no read to find it). */
  private readonly lastSealed = new Map<string, BatchRecord>();
  /**
   * Per partition: the batch sealed ahead inside a commit's transaction while the batch
   * before it was out (sealAhead), until the uplink takes it. While its write is
   * pending no other seal of the partition runs: each starts where the last sealed
   * batch ends, which moves only once that write ended.
   */
  private readonly ahead = new Map<string, AheadBatch>();
  /** Per partition: seals whose write has not ended (next(), a settle sealing the next). */
  private readonly sealing = new Map<string, number>();
  /** Per partition: settles whose write has not ended; their batches still count as sealed until then. */
  private readonly settling = new Map<string, number>();

  constructor(
    private readonly table: Database<BatchRecord, PartitionKey>,
    private readonly journal: JournalBytes,
    private readonly writes: JournalWrites,
    private readonly storeId: () => string,
    /** Journal key a partition's unsent events end before (a hold stops it short). */
    readonly unsentEnd: (partition: string) => PartitionKey,
  ) {
    this.bodies = new BatchBodies(journal);
  }

  /** Reads the cursors from the sealed batches at open (few: at most a handful per partition). */
  load(): void {
    for (const { key, value } of this.table.getRange()) {
      const top = value.seqs[value.seqs.length - 1]!;
      if (top > (this.sealedUpTo.get(key[0]) ?? 0)) this.sealedUpTo.set(key[0], top);
      this.counted(key[0], 1);
    }
  }

  /** Whether the partition has a sealed batch (its events are in the journal). */
  hasSealed(partition: string): boolean {
    return (this.sealedCount.get(partition) ?? 0) > 0;
  }

  /**
   * Whether the partition has unsent events it may seal, from memory where it can tell:
   * 'none'; 'some' when an event put past the last sealed batch lies before any hold or
   * pending write (the highest put, or else the highest whose write ended); 'look'
   * otherwise (a write ended above a hold or a pending one). 'some' can be wrong only
   * for events whose write failed or whose hold was discarded: a seal then finds
   * nothing, and the next sealed batch passes them.
   */
  unsentHint(partition: string): 'none' | 'some' | 'look' {
    const from = this.unsentFrom(partition);
    const highest = this.writes.highestPut(partition);
    if (highest < from) return 'none';
    const end = this.sealableEnd(partition)[1];
    if (highest < end) return 'some';
    // A write from `end` on is pending (or held): what may be sealed was put by writes that ended.
    const ended = this.writes.highestEnded(partition);
    if (ended < from) return 'none';
    return ended < end ? 'some' : 'look';
  }

  /** First journal sequence of a partition that no batch holds. */
  unsentFrom(partition: string): number {
    return (this.sealedUpTo.get(partition) ?? 0) + 1;
  }

  /** The oldest sealed batch, else a new one sealed durably from unsent events. */
  async next(partition: string, limits: BatchLimits): Promise<SealedBatch | undefined> {
    this.lastLimits.set(partition, limits);
    const ahead = this.ahead.get(partition);
    if (ahead?.pending) await ahead.durable.catch(() => undefined);
    const oldest = this.oldest(partition);
    if (oldest) return toSealed(partition, oldest);
    const next = this.collect(partition, limits);
    if (!next) return undefined;
    bump(this.sealing, partition, 1);
    try {
      await this.table.put([partition, next.record.seqs[0]!], next.record);
    } finally {
      bump(this.sealing, partition, -1);
    }
    this.sealed(partition, next.record, next.values);
    return toSealed(partition, next.record);
  }

  /**
   * Inside the event-loop turn of a commit whose events were offered (intake.ts):
   * seals them, after any unsent events before them, into the batch that follows the
   * partition's only unsettled sealed batch (the one out), in the commit's own
   * transaction. That batch is durable when the commit is, and goes out on the
   * previous one's acceptance without a write of its own. False when nothing was
   * sealed: nothing offered, another seal pending, or not exactly one batch sealed.
   */
  sealAhead(partition: string, limits: BatchLimits): boolean {
    if (!this.writes.offered(partition) || this.ahead.get(partition)?.pending || this.sealing.has(partition)) return false;
    if (this.unsettled(partition) !== 1) return false;
    const next = this.collect(partition, limits);
    if (!next) return false;
    const entry: AheadBatch = {
      batch: toSealed(partition, next.record),
      pending: true,
      taken: false,
      durable: this.table.put([partition, next.record.seqs[0]!], next.record).then(
        () => {
          entry.pending = false;
          this.sealed(partition, next.record, next.values);
          if (entry.taken && this.ahead.get(partition) === entry) this.ahead.delete(partition);
        },
        (err: unknown) => {
          // The commit failed: neither its events nor this record are stored.
          if (this.ahead.get(partition) === entry) this.ahead.delete(partition);
          throw err;
        },
      ),
    };
    // Awaited by whoever takes it; a failure is the commit's, which its source reports.
    entry.durable.catch(() => undefined);
    this.ahead.set(partition, entry);
    return true;
  }

  /**
   * The batch sealed ahead right after `previous`, for the uplink to send once
   * `previous` is accepted, and the promise of its write. Undefined unless it is the
   * very next one (a split's second half, say, goes first).
   */
  takeAhead(previous: SealedBatch): { batch: SealedBatch; durable: Promise<void> } | undefined {
    const p = previous.partition;
    const a = this.ahead.get(p);
    if (!a || a.taken || a.batch.seqs[0]! <= previous.seqs[previous.seqs.length - 1]!) return undefined;
    // `previous` and, once its write ended, the batch ahead: nothing else may come between them.
    if (this.unsettled(p) - (a.pending ? 0 : 1) !== 1) return undefined;
    a.taken = true;
    if (!a.pending) this.ahead.delete(p);
    return { batch: a.batch, durable: a.durable };
  }

  /** A settle's write ended, committed or not (outbox.ts): its batch no longer counts as being settled, and its seal, if any, no longer blocks another. */
  settleEnded(partition: string, sealedNext: boolean): void {
    bump(this.settling, partition, -1);
    if (sealedNext) bump(this.sealing, partition, -1);
  }

  /**
   * The settle's writes to the batches table, issued into `writes` in the caller's
   * event-loop turn (so in its transaction): removes the settled batch, stores the
   * retry part, or else seals the next batch if it is already full (or any size, when
   * the caller does not linger or sends it next). A backlog, or a steady flow, thus
   * needs one flush per batch, not two; otherwise a partial batch is left to next(),
   * so lingering for more events still works. The caller runs `commit` once the
   * writes committed.
   */
  settleWrites(batch: SealedBatch, retrySeqs: number[], sendingNext: boolean, writes: Promise<boolean>[]): SettleResult {
    const p = batch.partition;
    writes.push(this.table.remove([p, batch.seqs[0]!]));
    bump(this.settling, p, 1);
    const removed = (): void => {
      this.counted(p, -1);
      this.bodies.drop(batch.id);
      if (this.lastSealed.get(p)?.id === batch.id) this.lastSealed.delete(p);
      if (this.ahead.get(p)?.batch.id === batch.id) this.ahead.delete(p);
    };
    if (retrySeqs.length > 0) {
      const retry = this.record(p, retrySeqs);
      writes.push(this.table.put([p, retrySeqs[0]!], retry));
      const commit = (): void => {
        removed();
        this.counted(p, 1);
        this.lastSealed.delete(p);
      };
      return { retry: toSealed(p, retry), commit, sealedNext: false };
    }
    const limits = this.lastLimits.get(p);
    if (limits && (this.sealedCount.get(p) ?? 0) <= 1 && !this.ahead.get(p)?.pending && !this.sealing.has(p)) {
      const next = this.collect(p, limits);
      if (next && (next.full || limits.sealPartialAhead || sendingNext)) {
        writes.push(this.table.put([p, next.record.seqs[0]!], next.record));
        bump(this.sealing, p, 1);
        const commit = (): void => {
          removed();
          this.sealed(p, next.record, next.values);
        };
        return { retry: undefined, commit, sealedNext: true };
      }
    }
    return { retry: undefined, commit: removed, sealedNext: false };
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
    this.counted(p, 1);
    this.bodies.drop(batch.id);
    this.lastSealed.delete(p);
    return [toSealed(p, halves[0]), toSealed(p, halves[1])];
  }

  body(batch: SealedBatch): Buffer {
    return this.bodies.of(batch);
  }

  /** Journal key a seal stops before: the partition's hold floor, or its first pending write. */
  sealableEnd(partition: string): PartitionKey {
    const end = this.unsentEnd(partition);
    const pending = this.writes.firstPending(partition);
    return pending !== undefined && pending < end[1] ? [partition, pending] : end;
  }

  /** None of the partition's events is in the journal. */
  forget(partition: string): void {
    this.writes.forget(partition);
    this.sealedUpTo.delete(partition);
    this.sealedCount.delete(partition);
    this.lastLimits.delete(partition);
    this.lastSealed.delete(partition);
  }

  private oldest(partition: string): BatchRecord | undefined {
    const count = this.sealedCount.get(partition);
    if (!count) return undefined;
    if (count === 1 && this.lastSealed.has(partition)) return this.lastSealed.get(partition);
    for (const { value } of this.table.getRange({ start: [partition, 0], end: [partition, SEQ_MAX], limit: 1 })) return value;
    return undefined;
  }

  /** A batch record was stored: its events are no longer unsent; its body waits for the send. */
  private sealed(partition: string, record: BatchRecord, values: Buffer[]): void {
    this.sealedUpTo.set(partition, record.seqs[record.seqs.length - 1]!);
    this.counted(partition, 1);
    this.lastSealed.set(partition, record);
    this.bodies.keep(record.id, values, record.bytes);
  }

  /** Sealed batches of the partition not being settled. */
  private unsettled(partition: string): number {
    return (this.sealedCount.get(partition) ?? 0) - (this.settling.get(partition) ?? 0);
  }

  private counted(partition: string, delta: number): void {
    this.sealedCount.set(partition, Math.max(0, (this.sealedCount.get(partition) ?? 0) + delta));
  }


  /**
   * The next batch of unsent events within the limits (the visible ones, then those
   * offered in this turn), its events' stored bytes, and whether it is full.
   */
  private collect(partition: string, limits: BatchLimits): { record: BatchRecord; values: Buffer[]; full: boolean } | undefined {
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
    const end = this.sealableEnd(partition);
    let last = this.unsentFrom(partition) - 1;
    // Only writes that ended put events here to read (offered ones are taken below): when none reached past the last seal, no range read.
    if (this.writes.highestEnded(partition) > last) {
      for (const { key, value } of this.journal.getRange({ start: [partition, last + 1], end, limit: limits.maxEvents })) {
        last = key[1];
        if (!take(key[1], value)) break;
      }
    }
    const offered = this.writes.offered(partition);
    if (offered && !full) {
      for (let i = 0; i < offered.seqs.length && offered.seqs[i]! < end[1]; i++) if (offered.seqs[i]! > last && !take(offered.seqs[i]!, offered.values[i]!)) break;
    }
    if (seqs.length === 0) return undefined;
    const record = { id: batchId(this.storeId(), seqs), seqs, bytes: bytes - 1, sealedAt: new Date().toISOString() };
    return { record, values, full };
  }

  private record(partition: string, seqs: number[]): BatchRecord {
    // getBinaryFast: a view for its length only, no copy.
    const bytes = seqs.reduce((n, s) => n + (this.journal.getBinaryFast([partition, s])?.length ?? 0) + 1, 1);
    return { id: batchId(this.storeId(), seqs), seqs, bytes, sealedAt: new Date().toISOString() };
  }
}

function bump(map: Map<string, number>, partition: string, delta: number): void {
  const n = (map.get(partition) ?? 0) + delta;
  if (n > 0) map.set(partition, n);
  else map.delete(partition);
}

function toSealed(partition: string, r: BatchRecord): SealedBatch {
  return { id: r.id, partition, seqs: r.seqs, bytes: r.bytes, sealedAt: r.sealedAt };
}
