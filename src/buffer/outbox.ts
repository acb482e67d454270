/**
 * The uplink's side of the buffer (`Outbox` in types.ts). Per partition, the
 * journal's events past the last sealed batch are unsent; the ledger (batches.ts)
 * seals and settles them. This wakes the uplink when events arrive — offered while
 * their commit is still pending (an idle partition seals them in that transaction),
 * announced once flushed — and applies the ERP's answers. store.ts's header says
 * what each write holds and what a crash leaves.
 */
import type { BatchLedger } from './batches.js';
import type { DeadLetters } from './dead-letters.js';
import type { Holds } from './holds.js';
import type { StoreCounts } from './intake.js';
import type { JournalWrites } from './journal-writes.js';
import { META, SEQ_MAX, type CoreTables, type PartitionKey } from './layout.js';
import type { BatchLimits, BatchOutcome, Outbox, SealedBatch } from './types.js';

export const UNSENT_COUNT_CAP = 100_000;
const UNSENT_COUNT_TTL_MS = 2_000;

export interface OutboxParts extends CoreTables {
  ledger: BatchLedger;
  writes: JournalWrites;
  holds: Holds;
  deadLetters: DeadLetters;
  counts: StoreCounts;
}

export class StoreOutbox implements Outbox {
  /** Partitions with journal entries. */
  private readonly partitionSet = new Set<string>();
  private readonly unsentCounts = new Map<string, { n: number; at: number }>();
  private readonly appendListeners = new Set<(partition: string, count: number) => void>();

  constructor(private readonly p: OutboxParts) {}

  /** Finds the partitions at open, one seek each; returns the highest sequence in the journal. */
  load(): number {
    let last = 0;
    let start: PartitionKey | undefined;
    for (;;) {
      let next: string | undefined;
      for (const key of this.p.journal.getKeys(start ? { start, limit: 1 } : { limit: 1 })) next = key[0];
      if (next === undefined) return last;
      this.partitionSet.add(next);
      for (const key of this.p.journal.getKeys({ start: [next, SEQ_MAX], end: [next, -1], reverse: true, limit: 1 })) {
        this.p.writes.stored(next, key[1]);
        last = Math.max(last, key[1]);
      }
      start = [next, SEQ_MAX];
    }
  }

  /** Events of a partition were committed, up to `lastSeq`: wakes the uplink unless they are sealed already. */
  announce(partition: string, count: number, lastSeq = SEQ_MAX): void {
    if (!this.wakeable(partition) || lastSeq < this.p.ledger.unsentFrom(partition)) return;
    for (const listener of this.appendListeners) listener(partition, count);
  }

  /**
   * Events whose puts are still pending (intake.ts): an idle partition seals them in
   * this event-loop turn, so in their transaction.
   */
  offer(partition: string, seqs: number[], values: Buffer[]): void {
    if (!this.wakeable(partition)) return;
    this.p.writes.offer(partition, seqs, values);
    try {
      for (const listener of this.appendListeners) listener(partition, seqs.length);
    } finally {
      this.p.writes.offer(undefined);
    }
  }

  /** A hold ended: its partitions may send again (or are gone, when it was discarded). */
  holdEnded(partitions: string[]): void {
    for (const p of partitions) {
      this.forgetIfEmpty(p);
      if (this.partitionSet.has(p)) this.announce(p, 1);
    }
  }

  /** Puts a replayed dead letter back into the journal, inside the replay's transaction. */
  appendReplayed(partition: string, json: string, seq: number): void {
    this.p.writes.writing(partition, seq);
    this.p.journal.put([partition, seq], Buffer.from(json));
    this.p.counts.pending++;
  }

  partitions(): string[] {
    return [...this.partitionSet];
  }

  onAppend(listener: (partition: string, count: number) => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  hasUnsent(partition: string): boolean {
    // Known without a cursor where the ledger can tell: lmdb-js cursors outlive young collections.
    const hint = this.p.ledger.unsentHint(partition);
    if (hint !== 'look') return hint === 'some';
    for (const _ of this.p.journal.getKeys({ start: [partition, this.p.ledger.unsentFrom(partition)], end: this.p.ledger.sealableEnd(partition), limit: 1 })) return true;
    return false;
  }

  /**
   * Counted up to UNSENT_COUNT_CAP and kept for UNSENT_COUNT_TTL_MS: the status
   * page asks every second, and counting a large backlog that often would cost
   * more than sending it.
   */
  unsentCount(partition: string): number {
    const now = Date.now();
    const cached = this.unsentCounts.get(partition);
    if (cached && now - cached.at < UNSENT_COUNT_TTL_MS) return cached.n;
    let n = 0;
    // getKeysCount ignores `limit`; iterating keys honours it.
    for (const _ of this.p.journal.getKeys({ start: [partition, this.p.ledger.unsentFrom(partition)], end: this.p.ledger.unsentEnd(partition), limit: UNSENT_COUNT_CAP })) n++;
    this.unsentCounts.set(partition, { n, at: now });
    return n;
  }

  async nextBatch(partition: string, limits: BatchLimits): Promise<SealedBatch | undefined> {
    const batch = await this.p.ledger.next(partition, limits);
    if (!batch) this.forgetIfEmpty(partition);
    return batch;
  }

  sealAhead(partition: string, limits: BatchLimits): boolean {
    return this.wakeable(partition) && this.p.ledger.sealAhead(partition, limits);
  }

  takeAhead(previous: SealedBatch): { batch: SealedBatch; durable: Promise<void> } | undefined {
    return this.p.ledger.takeAhead(previous);
  }

  body(batch: SealedBatch): Buffer {
    return this.p.ledger.body(batch);
  }

  events(batch: SealedBatch): Record<string, unknown>[] {
    return JSON.parse(this.body(batch).toString('utf8')) as Record<string, unknown>[];
  }

  /**
   * Plain writes issued in one event-loop turn, which lmdb-js commits as one transaction:
   * a transaction callback would hold LMDB's write lock (and every source's commit)
   * until the main thread gets round to running it.
   */
  async settle(batch: SealedBatch, outcome: BatchOutcome, sendingNext = false): Promise<SealedBatch | undefined> {
    const { journal, counts } = this.p;
    const p = batch.partition;
    const writes: Promise<unknown>[] = [];
    for (const seq of outcome.delivered) writes.push(journal.remove([p, seq]));
    for (const r of outcome.rejected) {
      const bytes = journal.get([p, r.seq]);
      if (bytes === undefined) continue;
      writes.push(this.p.deadLetters.putRejected('uplink', { code: r.code, reason: r.reason, partition: p, event: JSON.parse(bytes.toString('utf8')) as Record<string, unknown> }));
      writes.push(journal.remove([p, r.seq]));
    }
    const { retry, commit } = this.p.ledger.settleWrites(batch, outcome.retry, sendingNext, writes);
    writes.push(this.p.meta.put(META.lastSequence, counts.lastSeq));
    try {
      // lmdb-js hands every write of one transaction the same promise.
      await Promise.all(new Set(writes));
      commit();
    } finally {
      this.p.ledger.settleEnded(p);
    }
    counts.pending -= outcome.delivered.length + outcome.rejected.length;
    counts.counters.delivered += outcome.delivered.length;
    counts.counters.deadLettered += outcome.rejected.length;
    if (!retry) this.forgetIfEmpty(p);
    return retry;
  }

  split(batch: SealedBatch): Promise<[SealedBatch, SealedBatch]> {
    return this.p.ledger.split(batch, (action) => this.p.env.transaction(action));
  }

  /** Notes the partition; false while it is held (it is woken when its hold ends: nothing past the hold can be sent before). */
  private wakeable(partition: string): boolean {
    this.partitionSet.add(partition);
    return this.p.holds.floor(partition) === undefined;
  }

  /** Drops a partition from the set once nothing of it remains. */
  private forgetIfEmpty(partition: string): void {
    // A sealed batch's events are in the journal: no seek needed (a steady flow's settle seals the next).
    if (this.p.ledger.hasSealed(partition)) return;
    // Nothing sealed, and nothing put past the last seal (or pending): the journal holds none of its events.
    if (this.p.ledger.unsentHint(partition) !== 'none') {
      for (const _ of this.p.journal.getKeys({ start: [partition, 0], end: [partition, SEQ_MAX], limit: 1 })) return;
    }
    this.partitionSet.delete(partition);
    this.unsentCounts.delete(partition);
    this.p.ledger.forget(partition);
  }
}
