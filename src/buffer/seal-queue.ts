/**
 * Each partition's seals not yet both stored and taken to be sent, in the order
 * their writes were issued (batches.ts). lmdb-js commits writes in that order, so the seals
 * end in it too, and a seal may be chained behind one still pending: it starts where
 * that one ends, and goes out once that one is accepted.
 *
 * A seal still waiting to be taken (stored, never sent) may be replaced by one that
 * holds its events and the next commit's, written in that commit's transaction.
 *
 * A failed write can be followed by a good one (a failed transaction, then the next).
 * The events of a failed seal that earlier commits had stored would then lie below a
 * stored seal's events, in no batch: a gap. The ledger seals a gap's events as a
 * batch of their own before anything of the partition goes out after it; batches are
 * keyed by their first sequence, so that batch comes first and the order holds.
 */
import type { SealedBatch } from './types.js';

export interface Seal {
  batch: SealedBatch;
  /** Its events' stored bytes: a seal waiting ahead may be sealed again with more. */
  values: Buffer[];
  /** Resolved once the record is stored; rejected if its write failed. */
  durable: Promise<void>;
  /** Its write has not ended. */
  pending: boolean;
  /** Taken to be sent (by whoever asked for it, or takeAhead): leaves the queue once stored. */
  taken: boolean;
  /** The sequence it starts after: below it, every event is sealed or was never stored. */
  after: number;
  /** A seal before it failed, from this sequence on: if this one is stored, that range is a gap. */
  gapAfter?: number;
  /** A seal pending that holds this one's events and more, and overwrites this one's record (same first sequence). */
  replacedBy?: Seal;
}

/** Sequences after `after` and before `before` whose events are in no batch. */
export interface Gap {
  /** Moves up as the gap's events are sealed. */
  after: number;
  readonly before: number;
}

export class SealQueue {
  private readonly seals = new Map<string, Seal[]>();
  private readonly gaps = new Map<string, Gap[]>();

  push(partition: string, seal: Seal): void {
    append(this.seals, partition, seal);
  }

  /** The partition's seals, oldest first: each stays until it is both stored and taken, or failed. */
  of(partition: string): readonly Seal[] {
    return this.seals.get(partition) ?? [];
  }

  last(partition: string): Seal | undefined {
    const queue = this.seals.get(partition);
    return queue?.[queue.length - 1];
  }

  firstPending(partition: string): Seal | undefined {
    return this.seals.get(partition)?.find((s) => s.pending);
  }

  /** The seal with this batch id leaves the queue (stored and taken, failed, or settled). */
  drop(partition: string, batchId: string): void {
    const queue = this.seals.get(partition);
    if (!queue) return;
    const i = queue.findIndex((s) => s.batch.id === batchId);
    if (i >= 0) queue.splice(i, 1);
    if (queue.length === 0) this.seals.delete(partition);
  }

  /** A seal's write failed: the one chained behind it, if any, inherits the range that becomes a gap if it is stored. */
  failed(partition: string, seal: Seal): void {
    const queue = this.seals.get(partition) ?? [];
    const next = queue[queue.indexOf(seal) + 1];
    if (next) next.gapAfter = seal.gapAfter ?? seal.after;
    this.drop(partition, seal.batch.id);
  }

  /** A seal was stored: if one before it failed, the events between are a gap. */
  stored(partition: string, seal: Seal): void {
    if (seal.gapAfter !== undefined) this.addGap(partition, { after: seal.gapAfter, before: seal.batch.seqs[0]! });
    seal.gapAfter = undefined;
    if (seal.taken) this.drop(partition, seal.batch.id);
  }

  addGap(partition: string, gap: Gap): void {
    append(this.gaps, partition, gap);
  }

  gapsOf(partition: string): readonly Gap[] {
    return this.gaps.get(partition) ?? [];
  }

  /** The first gap is sealed. */
  closeGap(partition: string): void {
    const list = this.gaps.get(partition);
    list?.shift();
    if (list?.length === 0) this.gaps.delete(partition);
  }

  /** Nothing may go out past this partition's queue head until its gaps are sealed (or known not to arise). */
  blocked(partition: string): boolean {
    return this.gaps.has(partition) || this.of(partition).some((s) => s.gapAfter !== undefined);
  }
}

function append<T>(map: Map<string, T[]>, partition: string, item: T): void {
  const list = map.get(partition);
  if (list) list.push(item);
  else map.set(partition, [item]);
}
