/**
 * Holds: events committed but not yet to be sent. A file drop commits a large file
 * while it reads it, under a hold named by the file's stream, and releases the hold
 * once the whole file proved good, or discards the held events when a record is bad.
 * A file is thus read once, and still nothing of a rejected file reaches the ERP.
 *
 * meta 'hold:'+stream → HoldRecord. The record is written in the transaction of the
 * first held event of each partition, so a held event is never durable without its
 * hold. Per partition the uplink seals only events below the lowest held sequence;
 * events of other sources behind it wait, which keeps order within the partition.
 *
 * Discarding removes the stream's events in transactions of DISCARD_SLICE, then its
 * committed ranges and the record together. The record is first marked `discarding`:
 * after a crash in between, the stream is discarded to the end before anything
 * reads it again (its ranges still claim positions whose events are gone).
 */
import type { Database } from 'lmdb';

export const HOLD_PREFIX = 'hold:';

export interface HoldRecord {
  /** The connector that committed the events. */
  connector: string;
  /** The file being read (its name in the inbox). */
  file: string;
  /** Partition → its first held sequence. */
  partitions: Record<string, number>;
  discarding?: true;
}

export interface HoldInfo {
  stream: string;
  connector: string;
  file: string;
  discarding: boolean;
  partitions: string[];
}

export class Holds {
  private readonly byStream = new Map<string, HoldRecord>();
  /** Per partition: the lowest held sequence over all holds. */
  private readonly floors = new Map<string, number>();

  constructor(private readonly meta: Database) {}

  /** Reads the hold records at open (few: one per file being read). */
  load(): void {
    for (const { key, value } of this.meta.getRange({ start: HOLD_PREFIX, end: 'hold;' })) {
      this.byStream.set(String(key).slice(HOLD_PREFIX.length), value as HoldRecord);
    }
    this.recompute();
  }

  /** The lowest held sequence of a partition; undefined when nothing in it is held. */
  floor(partition: string): number | undefined {
    return this.floors.get(partition);
  }

  get(stream: string): HoldRecord | undefined {
    return this.byStream.get(stream);
  }

  list(connector?: string): HoldInfo[] {
    const out: HoldInfo[] = [];
    for (const [stream, r] of this.byStream) {
      if (connector === undefined || r.connector === connector) out.push({ stream, connector: r.connector, file: r.file, discarding: r.discarding === true, partitions: Object.keys(r.partitions) });
    }
    return out;
  }

  /**
   * In a commit's event-loop turn: notes a held event. When it is the hold's first
   * event in its partition, the record is put again, in the same transaction.
   */
  note(stream: string, connector: string, file: string, partition: string, seq: number, writes: Promise<boolean>[]): void {
    let r = this.byStream.get(stream);
    if (!r) {
      r = { connector, file, partitions: {} };
      this.byStream.set(stream, r);
    }
    if (r.partitions[partition] !== undefined) return;
    r.partitions[partition] = seq;
    const floor = this.floors.get(partition);
    if (floor === undefined || seq < floor) this.floors.set(partition, seq);
    writes.push(this.meta.put(HOLD_PREFIX + stream, r));
  }

  /** In a transaction: marks the hold as being discarded. */
  markDiscarding(stream: string): void {
    const r = this.byStream.get(stream);
    if (!r) return;
    r.discarding = true;
    this.meta.put(HOLD_PREFIX + stream, r);
  }

  /** In a transaction: removes the record. Call `forget` once it is durable. */
  removeInTxn(stream: string): void {
    this.meta.remove(HOLD_PREFIX + stream);
  }

  /** Forgets the hold in memory; returns the partitions it held. */
  forget(stream: string): string[] {
    const r = this.byStream.get(stream);
    if (!r) return [];
    this.byStream.delete(stream);
    this.recompute();
    return Object.keys(r.partitions);
  }

  private recompute(): void {
    this.floors.clear();
    for (const r of this.byStream.values()) {
      for (const [p, seq] of Object.entries(r.partitions)) {
        const floor = this.floors.get(p);
        if (floor === undefined || seq < floor) this.floors.set(p, seq);
      }
    }
  }
}
