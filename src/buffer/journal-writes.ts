/**
 * What each partition's journal holds, known from memory: the highest sequence put,
 * the highest whose write ended, the writes still pending, and the events offered in
 * this event-loop turn. The ledger (batches.ts) seals from it without a seek: lmdb-js
 * cursors made after a commit's read-transaction renewal outlive young collections and
 * take what they reference into the old generation.
 *
 * A pending write's events may not be visible yet, and a later write's may already be
 * (LMDB can commit them in another order), so a seal never passes the first pending one.
 * Every event below it was put by a write that ended (or was found at open).
 */
export class JournalWrites {
  /** Per partition: the highest sequence put (found at open, or staged since). Never below the truth. */
  private readonly put = new Map<string, number>();
  /** Per partition: the highest sequence of a write that ended (flushed, or failed), or found at open. */
  private readonly ended = new Map<string, number>();
  /** Per partition: the first sequence of each write not yet ended (a commit, a replay), ascending: sequences are issued in order. */
  private readonly pending = new Map<string, number[]>();
  /** Events whose puts are pending in this event-loop turn, offered to a seal in the same turn. */
  private offeredNow: { partition: string; seqs: number[]; values: Buffer[] } | undefined;

  /** Events of the partition up to `lastSeq` were found in its journal at open. */
  stored(partition: string, lastSeq: number): void {
    raise(this.put, partition, lastSeq);
    raise(this.ended, partition, lastSeq);
  }

  /** A write of events `firstSeq`..`lastSeq` of a partition is pending; `written` once it is flushed or failed. */
  writing(partition: string, firstSeq: number, lastSeq = firstSeq): void {
    raise(this.put, partition, lastSeq);
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

  /**
   * Lets a seal in this event-loop turn take these events too, after the partition's
   * visible ones: their puts are pending in this turn's transaction, which the seal
   * joins. The caller withdraws them (undefined) before the turn ends.
   */
  offer(partition: string, seqs: number[], values: Buffer[]): void;
  offer(none: undefined): void;
  offer(partition: string | undefined, seqs: number[] = [], values: Buffer[] = []): void {
    this.offeredNow = partition === undefined ? undefined : { partition, seqs, values };
  }

  /** The events offered in this turn, if they are the partition's. */
  offered(partition: string): { seqs: number[]; values: Buffer[] } | undefined {
    return this.offeredNow?.partition === partition ? this.offeredNow : undefined;
  }

  highestPut(partition: string): number {
    return this.put.get(partition) ?? 0;
  }

  highestEnded(partition: string): number {
    return this.ended.get(partition) ?? 0;
  }

  /** The first sequence of the partition's earliest pending write, if any. */
  firstPending(partition: string): number | undefined {
    return this.pending.get(partition)?.[0];
  }

  /** None of the partition's events is in the journal (what a pending write puts is noted when it ends). */
  forget(partition: string): void {
    if (!this.pending.has(partition)) this.put.delete(partition);
    this.ended.delete(partition);
  }
}

function raise(map: Map<string, number>, partition: string, seq: number): void {
  if (seq > (map.get(partition) ?? 0)) map.set(partition, seq);
}
