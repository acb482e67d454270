/**
 * Sealed batches (the `batches` table) and each partition's outbox cursor.
 *
 * A batch record lists the sequences of its events; the events stay in the
 * journal until the batch is settled, so the body is rebuilt from the same
 * stored bytes on every send: the same bytes under the same Idempotency-Key.
 * Per partition, events past the last sealed batch's highest sequence are unsent.
 * Only the uplink seals and settles, one batch at a time per partition.
 *
 * The cursors and counts in memory change only once the write that sealed or
 * removed a batch has committed: a failed transaction leaves them as they were.
 */
import type { Database } from 'lmdb';
import { PlantgateError } from '../errors.js';
import { SEQ_MAX, batchId, type BatchRecord, type JournalBytes, type PartitionKey } from './layout.js';
import type { BatchLimits, SealedBatch } from './types.js';

/** Bodies built while sealing and kept for the first send, at most this many bytes in all. */
const FRESH_BODIES_MAX_BYTES = 8 * 1024 * 1024;

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
  /**
   * Bodies of batches just sealed, built from the bytes read to seal them, until their
   * first send: that send needs no second read of its events. Retries rebuild the body.
   */
  private readonly fresh = new Map<string, Buffer>();
  private freshBytes = 0;
  /** Events whose puts are pending in this event-loop turn, offered to a seal in the same turn (store.ts). */
  private offered: { partition: string; seqs: number[]; values: Buffer[] } | undefined;
  /**
   * Per partition: the highest sequence put in its journal (found at open, or staged
   * since). Never below the truth, so nothing above the last sealed batch means no unsent
   * event, without a seek.
   */
  private readonly highest = new Map<string, number>();
  /**
   * Per partition: the highest sequence of a write that ended (flushed, or failed), or
   * found at open. Every event below the partition's first pending write was put by a
   * write that ended, so when this is below the first unsent sequence, no event is
   * there to seal yet: no seek to find that out.
   */
  private readonly ended = new Map<string, number>();
  /** Per partition: its last sealed batch, while it is the one in the table (no read to find it). */
  private readonly lastSealed = new Map<string, BatchRecord>();
  /**
   * Per partition, the first sequence of each write not yet flushed (a commit, a
   * replay). Its events may not be visible yet, and a later write's may already be
   * (LMDB can commit them in another order): nothing from the lowest on is sealed.
   */
  private readonly pending = new Map<string, number[]>();
  /**
   * Per partition: the batch sealed ahead inside a commit's transaction while the batch
   * before it was out (sealAhead), until the uplink takes it. While its write is
   * pending no other seal of the partition runs: each starts where the last sealed
   * batch ends, which moves only once that write ended.
   */
  private readonly ahead = new Map<string, { batch: SealedBatch; durable: Promise<void>; pending: boolean; taken: boolean }>();
  /** Per partition: seals whose write has not ended (next(), a settle sealing the next). */
  private readonly sealing = new Map<string, number>();
  /** Per partition: settles whose write has not ended; their batches still count as sealed until then. */
  private readonly settling = new Map<string, number>();

  constructor(
    private readonly table: Database<BatchRecord, PartitionKey>,
    private readonly journal: JournalBytes,
    private readonly storeId: () => string,
    /** Journal key a partition's unsent events end before (a hold stops it short). */
    readonly unsentEnd: (partition: string) => PartitionKey,
  ) {}

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
    const highest = this.highest.get(partition) ?? 0;
    if (highest < from) return 'none';
    const end = this.sealableEnd(partition)[1];
    if (highest < end) return 'some';
    // A write from `end` on is pending (or held): what may be sealed was put by writes that ended.
    const ended = this.ended.get(partition) ?? 0;
    if (ended < from) return 'none';
    return ended < end ? 'some' : 'look';
  }

  /** Events of the partition up to `lastSeq` were found in its journal at open. */
  stored(partition: string, lastSeq: number): void {
    raise(this.highest, partition, lastSeq);
    raise(this.ended, partition, lastSeq);
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
    if (this.offered?.partition !== partition || this.ahead.get(partition)?.pending || (this.sealing.get(partition) ?? 0) > 0) return false;
    if ((this.sealedCount.get(partition) ?? 0) - (this.settling.get(partition) ?? 0) !== 1) return false;
    const next = this.collect(partition, limits);
    if (!next) return false;
    const entry = { batch: toSealed(partition, next.record), durable: Promise.resolve(), pending: true, taken: false };
    entry.durable = this.table.put([partition, next.record.seqs[0]!], next.record).then(
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
    );
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
    const others = (this.sealedCount.get(p) ?? 0) - (this.settling.get(p) ?? 0) - (a.pending ? 0 : 1);
    if (others !== 1) return undefined;
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
      this.dropFresh(batch.id);
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
    if (limits && (this.sealedCount.get(p) ?? 0) <= 1 && !this.ahead.get(p)?.pending && !this.sealing.get(p)) {
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
    this.dropFresh(batch.id);
    this.lastSealed.delete(p);
    return [toSealed(p, halves[0]), toSealed(p, halves[1])];
  }

  body(batch: SealedBatch): Buffer {
    const fresh = this.fresh.get(batch.id);
    if (fresh) {
      this.dropFresh(batch.id);
      return fresh;
    }
    const values: Buffer[] = new Array(batch.seqs.length);
    for (let i = 0; i < batch.seqs.length; i++) {
      const bytes = this.journal.get([batch.partition, batch.seqs[i]!]);
      if (bytes === undefined) throw new PlantgateError('PG_ERR_BUFFER_COMMIT', `event ${batch.seqs[i]} of batch ${batch.id} is missing from the journal`);
      values[i] = bytes;
    }
    return bodyOf(values);
  }

  /**
   * Lets a seal in this event-loop turn take these events too, after the partition's
   * visible ones: their puts are pending in this turn's transaction, which the seal
   * joins. The caller withdraws them (undefined) before the turn ends.
   */
  offer(partition: string, seqs: number[], values: Buffer[]): void;
  offer(none: undefined): void;
  offer(partition: string | undefined, seqs: number[] = [], values: Buffer[] = []): void {
    this.offered = partition === undefined ? undefined : { partition, seqs, values };
  }

  /** A write of events `firstSeq`..`lastSeq` of a partition is pending; `written` once it is flushed or failed. */
  writing(partition: string, firstSeq: number, lastSeq = firstSeq): void {
    raise(this.highest, partition, lastSeq);
    const firsts = this.pending.get(partition);
    if (firsts) firsts.push(firstSeq);
    else this.pending.set(partition, [firstSeq]);
  }

  written(partition: string, firstSeq: number, lastSeq = firstSeq): void {
    raise(this.ended, partition, lastSeq);
    const firsts = this.pending.get(partition);
    if (!firsts) return;
    const i = firsts.indexOf(firstSeq);
    if (i >= 0) firsts.splice(i, 1);
    if (firsts.length === 0) this.pending.delete(partition);
  }

  /** Journal key a seal stops before: the partition's hold floor, or its first pending write. */
  sealableEnd(partition: string): PartitionKey {
    const end = this.unsentEnd(partition);
    const firsts = this.pending.get(partition);
    return firsts ? [partition, Math.min(end[1], ...firsts)] : end;
  }

  forget(partition: string): void {
    // A pending write's events are not in the journal yet but will be: keep their sequence.
    if (!this.pending.has(partition)) this.highest.delete(partition);
    // Forgotten when none of its events is in the journal: what a pending write puts is noted when it ends.
    this.ended.delete(partition);
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
    if (this.freshBytes + record.bytes > FRESH_BODIES_MAX_BYTES) return;
    this.fresh.set(record.id, bodyOf(values));
    this.freshBytes += record.bytes;
  }

  private counted(partition: string, delta: number): void {
    this.sealedCount.set(partition, Math.max(0, (this.sealedCount.get(partition) ?? 0) + delta));
  }

  private dropFresh(id: string): void {
    const body = this.fresh.get(id);
    if (!body) return;
    this.fresh.delete(id);
    this.freshBytes -= body.length;
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
    if ((this.ended.get(partition) ?? 0) > last) {
      for (const { key, value } of this.journal.getRange({ start: [partition, last + 1], end, limit: limits.maxEvents })) {
        last = key[1];
        if (!take(key[1], value)) break;
      }
    }
    const offered = this.offered?.partition === partition ? this.offered : undefined;
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

function raise(map: Map<string, number>, partition: string, seq: number): void {
  if (seq > (map.get(partition) ?? 0)) map.set(partition, seq);
}

/** The request body: the events' stored bytes as one JSON array, copied once. */
function bodyOf(values: Buffer[]): Buffer {
  let size = values.length + 1; // the brackets and the commas between
  for (const v of values) size += v.length;
  const body = Buffer.allocUnsafe(size);
  body[0] = 0x5b; // [
  let at = 1;
  for (let i = 0; i < values.length; i++) {
    if (i > 0) body[at++] = 0x2c; // ,
    at += values[i]!.copy(body, at);
  }
  body[at] = 0x5d; // ]
  return body;
}

function toSealed(partition: string, r: BatchRecord): SealedBatch {
  return { id: r.id, partition, seqs: r.seqs, bytes: r.bytes, sealedAt: r.sealedAt };
}
