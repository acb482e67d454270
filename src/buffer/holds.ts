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
import type { Logger } from 'pino';
import type { DedupeIndex } from './dedupe.js';
import { storedIdPrefix, type StoreCounts } from './intake.js';
import { META, SEQ_MAX, type CoreTables, type PartitionKey } from './layout.js';

export const HOLD_PREFIX = 'hold:';
/** Held events removed per transaction when a hold is discarded (a rejected file may hold a million). */
const DISCARD_SLICE = 10_000;

/** What release and discard touch besides the hold records. */
export interface HoldParts extends CoreTables {
  dedupe: DedupeIndex;
  counts: StoreCounts;
  log: Logger;
  /** A hold ended (released or discarded): these partitions may send again. */
  ended: (partitions: string[]) => void;
}

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

  constructor(private readonly p: HoldParts) {}

  /** Reads the hold records at open (few: one per file being read). */
  load(): void {
    for (const { key, value } of this.p.meta.getRange({ start: HOLD_PREFIX, end: 'hold;' })) {
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
    this.lower(partition, seq);
    writes.push(this.p.meta.put(HOLD_PREFIX + stream, r));
  }

  /** The held events of a stream may be sent: the record is removed, then its partitions wake up. */
  async release(stream: string): Promise<void> {
    if (!this.byStream.has(stream)) return;
    await this.p.env.transaction(() => this.p.meta.remove(HOLD_PREFIX + stream));
    this.p.ended(this.forget(stream));
  }

  /**
   * Removes a stream's held events, then its committed ranges and its hold, so that
   * nothing of it is ever sent and the same bytes read again start afresh.
   */
  async discard(stream: string): Promise<number> {
    const r = this.byStream.get(stream);
    if (!r) return 0;
    if (!r.discarding) {
      r.discarding = true;
      await this.p.env.transaction(() => this.p.meta.put(HOLD_PREFIX + stream, r));
    }
    const prefix = Buffer.from(storedIdPrefix(`${stream}:`));
    let removed = 0;
    for (const [partition, first] of Object.entries(r.partitions)) {
      for (let from: number | undefined = first; from !== undefined; ) {
        const slice = this.heldSlice(partition, from, prefix);
        removed += await this.removeEvents(slice.keys);
        from = slice.next;
      }
    }
    await this.p.env.transaction(() => {
      this.p.dedupe.forgetRangesInTxn(stream);
      this.p.meta.remove(HOLD_PREFIX + stream);
    });
    this.p.ended(this.forget(stream));
    this.p.log.info({ stream, file: r.file, connector: r.connector, removed }, 'held events discarded; none of them was sent');
    return removed;
  }

  /** Up to DISCARD_SLICE keys of a stream's events in a partition from `from` on, and where to go on. */
  private heldSlice(partition: string, from: number, prefix: Buffer): { keys: PartitionKey[]; next?: number } {
    const keys: PartitionKey[] = [];
    for (const { key, value } of this.p.journal.getRange({ start: [partition, from], end: [partition, SEQ_MAX] })) {
      if (keys.length >= DISCARD_SLICE) return { keys, next: key[1] };
      if (prefix.equals(value.subarray(0, prefix.length))) keys.push(key);
    }
    return { keys };
  }

  /** One transaction; lastSequence goes with it, so a restart never hands these sequences out again. */
  private async removeEvents(keys: PartitionKey[]): Promise<number> {
    if (keys.length === 0) return 0;
    const { journal, counts } = this.p;
    await this.p.env.transaction(() => {
      for (const k of keys) journal.remove(k);
      this.p.meta.put(META.lastSequence, counts.lastSeq);
    });
    counts.pending -= keys.length;
    return keys.length;
  }

  /** Forgets the hold in memory; returns the partitions it held. */
  private forget(stream: string): string[] {
    const r = this.byStream.get(stream);
    if (!r) return [];
    this.byStream.delete(stream);
    this.recompute();
    return Object.keys(r.partitions);
  }

  private recompute(): void {
    this.floors.clear();
    for (const r of this.byStream.values()) for (const [p, seq] of Object.entries(r.partitions)) this.lower(p, seq);
  }

  private lower(partition: string, seq: number): void {
    const floor = this.floors.get(partition);
    if (floor === undefined || seq < floor) this.floors.set(partition, seq);
  }
}
