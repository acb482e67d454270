/**
 * Sealed batches (the `batches` table) and each partition's outbox cursor.
 *
 * A batch record lists the sequences of its events; the events stay in the
 * journal until the batch is settled, so the body is rebuilt from the same
 * stored bytes on every send (batch-bodies.ts): the same bytes under the same
 * Idempotency-Key.
 * Per partition, events past the last sealed batch's highest sequence are unsent;
 * what the journal holds past it is known from journal-writes.ts, without a seek.
 * Only the uplink seals and settles: one batch out at a time per partition, and the
 * batches sealed behind it in the commits of their events (sealAhead): chained
 * behind the one before while that one's write is pending, or sealed again with
 * more events while it waits, never sent (seal-queue.ts).
 *
 * The cursors and counts in memory change only once the write that sealed or
 * removed a batch has committed: a failed transaction leaves them as they were.
 */
import type { Database } from 'lmdb';
import { PlantgateError } from '../errors.js';
import { BatchBodies } from './batch-bodies.js';
import { collectBatch, type Collected } from './batch-collect.js';
import { SEQ_MAX, batchId, type BatchRecord, type JournalBytes, type PartitionKey } from './layout.js';
import type { JournalWrites } from './journal-writes.js';
import { SealQueue, type Seal } from './seal-queue.js';
import type { BatchLimits, SealedBatch } from './types.js';

/** A settle's retry batch, and what it changed, applied to memory once its writes committed. */
export interface SettleResult {
  retry: SealedBatch | undefined;
  commit(): void;
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
  /** Per partition: seals whose write is pending, or stored but not yet taken to be sent. */
  private readonly seals = new SealQueue();
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

  /**
   * Reads the cursors from the sealed batches at open (few: at most a handful per
   * partition), one seek each for events below a batch that no batch holds: a seal
   * stored behind one whose write failed, and a stop before that gap was sealed
   * (seal-queue.ts). Returns the number of such gaps, sealed before anything after them goes.
   */
  load(): number {
    let gaps = 0;
    let prev: { partition: string; top: number } | undefined;
    for (const { key, value } of this.table.getRange()) {
      const [p, first] = key;
      const top = value.seqs[value.seqs.length - 1]!;
      const after = prev?.partition === p ? prev.top : 0;
      for (const _ of this.journal.getKeys({ start: [p, after + 1], end: [p, first], limit: 1 })) {
        this.seals.addGap(p, { after, before: first });
        gaps++;
      }
      if (top > (this.sealedUpTo.get(p) ?? 0)) this.sealedUpTo.set(p, top);
      this.counted(p, 1);
      prev = { partition: p, top };
    }
    return gaps;
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

  /**
   * The oldest sealed batch (a gap's first, once the seals that may leave one ended),
   * or the first seal still being written once it is stored, else a new one sealed
   * durably from unsent events.
   */
  async next(partition: string, limits: BatchLimits): Promise<SealedBatch | undefined> {
    this.lastLimits.set(partition, limits);
    for (;;) {
      const mayLeaveGap = this.seals.of(partition).find((s) => s.pending && s.gapAfter !== undefined);
      if (mayLeaveGap) {
        await mayLeaveGap.durable.catch(() => undefined);
        continue;
      }
      // Awaited only when there are gaps: an idle partition seals the events just offered in this turn, below.
      if (this.seals.gapsOf(partition).length > 0) await this.sealGaps(partition, limits);
      const oldest = this.oldest(partition);
      const replacedBy = oldest && this.seals.of(partition).find((s) => s.batch.id === oldest.id)?.replacedBy;
      if (replacedBy) {
        // Its events go in the batch replacing it, or, if that write fails, in it.
        await replacedBy.durable.catch(() => undefined);
        continue;
      }
      if (oldest) {
        this.seals.drop(partition, oldest.id);
        return toSealed(partition, oldest);
      }
      const pending = this.seals.firstPending(partition);
      if (!pending) break;
      // Stored (found above at once) or failed: each turn ends one seal.
      await pending.durable.catch(() => undefined);
    }
    const next = this.collect(partition, limits);
    if (!next) return undefined;
    const seal = this.seal(partition, next, true);
    await seal.durable;
    return seal.batch;
  }

  /**
   * Inside the event-loop turn of a commit whose events were offered (intake.ts):
   * seals them as the partition's next batch in the commit's own transaction, so the
   * batch is durable when the commit is and goes out on the previous one's acceptance
   * without a write of its own. Behind a seal still being written, it holds just the
   * offered events, and only when every event put before them is in that seal or
   * before it. Otherwise the last batch sealed ahead and still waiting, if it has
   * room, is sealed again with them in one batch that replaces it (never sent, so no
   * key is lost): with the ERP slow, a trickle grows one batch instead of getting a
   * request per commit. Else a new batch takes them with the unsent events before
   * them, when at most one batch (the one out) is unsettled besides those waiting.
   * False when nothing was sealed.
   */
  sealAhead(partition: string, limits: BatchLimits): boolean {
    if (!this.writes.offered(partition)) return false;
    const last = this.seals.last(partition);
    let next: Collected | undefined;
    if (last?.pending) {
      const top = last.batch.seqs[last.batch.seqs.length - 1]!;
      if (this.writes.highestPut(partition) > top) return false;
      // Every pending write of the partition is in `last` or before it: none to stop at.
      next = this.collect(partition, limits, { after: top, end: this.unsentEnd(partition) });
    } else {
      // Every seal queued is stored and waits to be taken.
      const waiting = this.seals.of(partition);
      const tail = waiting[waiting.length - 1];
      const merged = tail && this.collect(partition, limits, undefined, tail);
      if (merged) {
        this.seal(partition, merged, false, tail);
        return true;
      }
      if (this.unsettled(partition) - waiting.length > 1) return false;
      next = this.collect(partition, limits);
    }
    if (!next) return false;
    this.seal(partition, next, false);
    return true;
  }

  /**
   * The batch sealed right after `previous`, for the uplink to send once `previous`
   * is accepted, and the promise of its write. Undefined unless it is the very next
   * one (a split's second half, say, goes first), or while a gap may lie before it.
   */
  takeAhead(previous: SealedBatch): { batch: SealedBatch; durable: Promise<void> } | undefined {
    const p = previous.partition;
    if (this.seals.blocked(p)) return undefined;
    const queue = this.seals.of(p);
    // One being sealed again with more events goes as the batch that replaces it.
    const a = queue[0]?.replacedBy ?? queue[0];
    if (!a || a.taken || a.batch.seqs[0]! <= previous.seqs[previous.seqs.length - 1]!) return undefined;
    // `previous` and, once their writes ended, the seals queued: nothing else may come between them.
    if (this.unsettled(p) - queue.filter((s) => !s.pending).length !== 1) return undefined;
    a.taken = true;
    if (!a.pending) this.seals.drop(p, a.batch.id);
    return { batch: a.batch, durable: a.durable };
  }

  /** A settle's write ended, committed or not (outbox.ts): its batch no longer counts as being settled. */
  settleEnded(partition: string): void {
    bump(this.settling, partition, -1);
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
  settleWrites(batch: SealedBatch, retrySeqs: number[], sendingNext: boolean, writes: Promise<unknown>[]): SettleResult {
    const p = batch.partition;
    writes.push(this.table.remove([p, batch.seqs[0]!]));
    bump(this.settling, p, 1);
    const removed = (): void => {
      this.counted(p, -1);
      this.bodies.drop(batch.id);
      if (this.lastSealed.get(p)?.id === batch.id) this.lastSealed.delete(p);
      this.seals.drop(p, batch.id);
    };
    if (retrySeqs.length > 0) {
      const retry = this.record(p, retrySeqs);
      writes.push(this.table.put([p, retrySeqs[0]!], retry));
      const commit = (): void => {
        removed();
        this.counted(p, 1);
        this.lastSealed.delete(p);
      };
      return { retry: toSealed(p, retry), commit };
    }
    const limits = this.lastLimits.get(p);
    if (limits && (this.sealedCount.get(p) ?? 0) <= 1 && !this.seals.firstPending(p)) {
      const next = this.collect(p, limits);
      // Taken: next() finds it stored once the settle's write ended.
      if (next && (next.full || limits.sealPartialAhead || sendingNext)) writes.push(this.seal(p, next, true).durable);
    }
    return { retry: undefined, commit: removed };
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

  /**
   * Issues a seal's write in the caller's event-loop turn (so in its transaction) and
   * queues it; memory follows once it is stored. `taken`: the caller sends it itself.
   * `replaces`: a seal waiting ahead whose events this one starts with; its record has
   * the same key (the first sequence), so this put overwrites it in the same transaction.
   */
  private seal(partition: string, next: Collected, taken: boolean, replaces?: Seal): Seal {
    const { record, values } = next;
    const seal: Seal = {
      batch: toSealed(partition, record),
      values,
      pending: true,
      taken,
      after: next.after,
      durable: this.table.put([partition, record.seqs[0]!], record).then(
        () => {
          seal.pending = false;
          if (replaces) {
            this.counted(partition, -1);
            this.bodies.drop(replaces.batch.id);
            this.seals.drop(partition, replaces.batch.id);
          }
          this.sealedUpTo.set(partition, record.seqs[record.seqs.length - 1]!);
          this.counted(partition, 1);
          this.lastSealed.set(partition, record);
          this.bodies.keep(record.id, values, record.bytes);
          this.seals.stored(partition, seal);
        },
        (err: unknown) => {
          // Its transaction failed: the events it shared it with are not stored either, and a seal it replaces stays.
          if (replaces) replaces.replacedBy = undefined;
          this.seals.failed(partition, seal);
          throw err;
        },
      ),
    };
    if (replaces) replaces.replacedBy = seal;
    // Awaited by whoever takes it; a failure is its transaction's, which that writer reports.
    seal.durable.catch(() => undefined);
    this.seals.push(partition, seal);
    return seal;
  }

  /** Seals each gap's stored events as batches of their own, which sort before what follows the gap. */
  private async sealGaps(partition: string, limits: BatchLimits): Promise<void> {
    for (let gap = this.seals.gapsOf(partition)[0]; gap; gap = this.seals.gapsOf(partition)[0]) {
      const next = this.collect(partition, limits, { after: gap.after, end: [partition, gap.before] });
      if (!next) {
        this.seals.closeGap(partition);
        continue;
      }
      await this.table.put([partition, next.record.seqs[0]!], next.record);
      this.counted(partition, 1);
      this.bodies.keep(next.record.id, next.values, next.record.bytes);
      gap.after = next.record.seqs[next.record.seqs.length - 1]!;
    }
  }

  /** Sealed batches of the partition not being settled. */
  private unsettled(partition: string): number {
    return (this.sealedCount.get(partition) ?? 0) - (this.settling.get(partition) ?? 0);
  }

  private counted(partition: string, delta: number): void {
    this.sealedCount.set(partition, Math.max(0, (this.sealedCount.get(partition) ?? 0) + delta));
  }

  /**
   * The next batch of unsent events (batch-collect.ts): from the outbox cursor up to
   * the first pending write unless `range` says otherwise; `prefix`, a seal waiting
   * ahead, sealed again with them.
   */
  private collect(partition: string, limits: BatchLimits, range?: { after: number; end: PartitionKey }, prefix?: Seal): Collected | undefined {
    return collectBatch(this.journal, this.writes, this.storeId(), limits, {
      partition,
      after: range?.after ?? this.unsentFrom(partition) - 1,
      end: range?.end ?? this.sealableEnd(partition),
      ...(prefix ? { prefix: { seqs: prefix.batch.seqs, values: prefix.values } } : {}),
    });
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
