/**
 * Recognises resends: event id → sequence, and transport identity (MQTT client +
 * packet id) → payload hash + sequence. Two generation tables bound it by count and
 * age without a time index: new entries go to the current one; when it holds half
 * of `maxEntries` or is half of `maxAgeHours` old, the older table is cleared and
 * becomes current. An entry is remembered for at least half the bounds; the
 * committed ranges of a file still being read (held) are carried over, however long
 * the read takes.
 *
 * Writes ride in the same LMDB transaction as the events they describe (same
 * event-loop turn), so after a crash an event is either stored and known, or neither.
 *
 * Each generation has a Bloom filter (key-filter.ts) in front of it, so a new id is
 * recognised as new without a B-tree read. The filters are filled from the tables
 * in the background after start-up (start-up itself reads nothing).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Database, RootDatabase } from 'lmdb';
import { KeyFilter, KeyHash } from './key-filter.js';
import { META, tableStats, type DedupeMeta } from './layout.js';

/** Keys read per slice while filling a filter: a few milliseconds of the event loop. */
const FILL_SLICE_KEYS = 20_000;

type Entry = number | [string, number];

export class DedupeIndex {
  private current: 0 | 1;
  private startedAt: number;
  /** Entries put but not yet committed, with their transaction: a resend racing its original's commit. */
  private readonly pending = new Map<string, { entry: Entry; written: Promise<boolean> }>();
  /** The older generation holds nothing (a fresh store): skip its lookup, half the reads per new event. */
  private previousEmpty: boolean;
  private readonly filters: [KeyFilter, KeyFilter];
  /** Bumped when a generation is cleared: a fill in progress for it stops. */
  private readonly clears = [0, 0];
  private stopped = false;
  /** The last key asked about and its hashes: an id is looked up, then remembered, then checked by both filters. */
  private readonly hash = new KeyHash();
  private lastId: string | undefined;
  private lastIdKey = '';

  constructor(
    private readonly tables: [Database<Entry, string>, Database<Entry, string>],
    private readonly meta: RootDatabase | Database,
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
  ) {
    const m = meta.get(META.dedupe) as DedupeMeta | undefined;
    this.current = m?.current ?? 0;
    this.startedAt = m?.startedAt ?? Date.now();
    this.previousEmpty = tableStats(tables[this.current ^ 1]).entryCount === 0;
    this.filters = [new KeyFilter(maxEntries / 2), new KeyFilter(maxEntries / 2)];
  }

  /** Fills both filters from their tables, a slice per event-loop turn; lookups use LMDB until a filter is complete. */
  async fillFilters(): Promise<void> {
    for (const g of [this.current, this.current ^ 1] as const) {
      const clearsAtStart = this.clears[g];
      let start: string | undefined;
      for (;;) {
        if (this.stopped || this.clears[g] !== clearsAtStart) break;
        let last: string | undefined;
        for (const key of this.tables[g].getKeys({ ...(start !== undefined ? { start } : {}), limit: FILL_SLICE_KEYS + 1 })) {
          if (key === start) continue; // the slice starts at the previous slice's last key
          this.filters[g].add(this.hash.of(key));
          last = key;
        }
        if (last === undefined) {
          this.filters[g].complete = true;
          break;
        }
        start = last;
        await nextTurn();
      }
    }
  }

  /** Stops a fill in progress (the store is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** True once both filters answer without LMDB. */
  filtersComplete(): boolean {
    return this.filters[0].complete && this.filters[1].complete;
  }

  /** Sequence of an already committed (or committing) event id. */
  seqOfId(id: string): number | undefined {
    const v = this.lookup(this.idKey(id));
    return typeof v === 'number' ? v : undefined;
  }

  /** Position ranges committed for a stream (CommitOptions.range), from both generations and commits in flight. */
  committedRanges(stream: string): [number, number][] {
    const prefix = `r:${stream}:`;
    const ranges = new Map<string, number>();
    for (const table of this.tables) {
      for (const { key, value } of table.getRange({ start: prefix, end: `r:${stream};` })) if (typeof value === 'number') ranges.set(key, value);
    }
    for (const [key, { entry }] of this.pending) if (key.startsWith(prefix) && typeof entry === 'number') ranges.set(key, entry);
    return [...ranges].map(([key, to]): [number, number] => [Number(key.slice(prefix.length)), to]).sort((a, b) => a[0] - b[0]);
  }

  /** Inside a transaction: removes a stream's ranges from both generations (its held events were discarded). */
  forgetRangesInTxn(stream: string): void {
    const prefix = `r:${stream}:`;
    for (const table of this.tables) for (const key of table.getKeys({ start: prefix, end: `r:${stream};` })) table.remove(key);
  }

  rememberRange(stream: string, from: number, to: number, writes: Promise<boolean>[]): string {
    return this.remember(`r:${stream}:${from}`, to, writes);
  }

  /** Sequence of the last commit under a transport key, if its payload hash matches. */
  seqOfTransport(key: string, hash: string): number | undefined {
    const v = this.lookup(`t:${key}`);
    return Array.isArray(v) && v[0] === hash ? v[1] : undefined;
  }

  /** Writes the entry; returns its key, to hand to `settled` once the write resolved or failed. */
  rememberId(id: string, seq: number, writes: Promise<boolean>[]): string {
    return this.remember(this.idKey(id), seq, writes);
  }

  rememberTransport(key: string, hash: string, seq: number, writes: Promise<boolean>[]): string {
    return this.remember(`t:${key}`, [hash, seq], writes);
  }

  /**
   * The transaction of an original still being committed (a resend found it in
   * flight): the resend is acknowledged only once that transaction is flushed.
   */
  originalInFlight(id: string | undefined, transportKey: string | undefined): Promise<boolean> | undefined {
    return this.pending.get(id !== undefined ? this.idKey(id) : `t:${transportKey}`)?.written;
  }

  /** The writes of these keys resolved (committed, or failed so that a resend is stored): stop holding them in memory. */
  settled(keys: string[]): void {
    for (const k of keys) this.pending.delete(k);
  }

  /** The same string for the same id string: the lookup and the remember that follows share one key and one hash. */
  private idKey(id: string): string {
    if (id !== this.lastId) {
      this.lastId = id;
      this.lastIdKey = `e:${id}`;
    }
    return this.lastIdKey;
  }

  private lookup(key: string): Entry | undefined {
    const cur = this.current;
    const prev = (cur ^ 1) as 0 | 1;
    return (
      this.pending.get(key)?.entry ??
      (this.filters[cur].mightHave(this.hash.of(key)) ? this.tables[cur].get(key) : undefined) ??
      (this.previousEmpty || !this.filters[prev].mightHave(this.hash.of(key)) ? undefined : this.tables[prev].get(key))
    );
  }

  private remember(key: string, entry: Entry, writes: Promise<boolean>[]): string {
    const written = this.tables[this.current].put(key, entry);
    this.pending.set(key, { entry, written });
    this.filters[this.current].add(this.hash.of(key));
    writes.push(written);
    return key;
  }

  /**
   * Rotates generations when the current one is full or old; cheap to call often.
   * `reading(stream)`: the stream's file is still being read (held); its ranges move to
   * the current generation instead of being cleared, or a resumed read would commit
   * again what it already did.
   */
  async maintain(now = Date.now(), reading: (stream: string) => boolean = () => false): Promise<void> {
    const table = this.tables[this.current];
    const full = tableStats(table).entryCount >= this.maxEntries / 2;
    const old = now - this.startedAt >= this.maxAgeMs / 2;
    if (!full && !old) return;
    const next = (this.current ^ 1) as 0 | 1;
    const carried: Promise<boolean>[] = [];
    for (const { key, value } of this.tables[next].getRange({ start: 'r:', end: 'r;' })) {
      if (reading(key.slice(2, key.lastIndexOf(':')))) carried.push(table.put(key, value));
    }
    await Promise.all(new Set(carried));
    this.clears[next]++;
    await this.tables[next].clearAsync();
    this.filters[next].clear();
    this.previousEmpty = tableStats(table).entryCount === 0;
    this.current = next;
    this.startedAt = now;
    await this.meta.put(META.dedupe, { current: next, startedAt: now } satisfies DedupeMeta);
  }

  size(): number {
    return tableStats(this.tables[0]).entryCount + tableStats(this.tables[1]).entryCount;
  }
}
