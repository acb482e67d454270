/**
 * Recognises resends: event id → sequence, and transport identity (MQTT client +
 * packet id) → payload hash + sequence. Two generation tables bound it by count and
 * age without a time index: new entries go to the current one; when it holds half
 * of `maxEntries` or is half of `maxAgeHours` old, the older table is cleared and
 * becomes current. An entry is remembered for at least half the bounds.
 *
 * Writes ride in the same LMDB transaction as the events they describe (same
 * event-loop turn), so after a crash an event is either stored and known, or neither.
 */
import type { Database, RootDatabase } from 'lmdb';
import { META, tableStats, type DedupeMeta } from './layout.js';

type Entry = number | [string, number];

export class DedupeIndex {
  private current: 0 | 1;
  private startedAt: number;
  /** Entries put but not yet committed: a resend racing its original's commit. */
  private readonly pending = new Map<string, Entry>();
  /** The older generation holds nothing (a fresh store): skip its lookup, half the reads per new event. */
  private previousEmpty: boolean;

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
  }

  /** Sequence of an already committed (or committing) event id. */
  seqOfId(id: string): number | undefined {
    const v = this.lookup(`e:${id}`);
    return typeof v === 'number' ? v : undefined;
  }

  /** Sequence of the last commit under a transport key, if its payload hash matches. */
  seqOfTransport(key: string, hash: string): number | undefined {
    const v = this.lookup(`t:${key}`);
    return Array.isArray(v) && v[0] === hash ? v[1] : undefined;
  }

  /** Writes the entry; returns its key, to hand to `settled` once the write resolved or failed. */
  rememberId(id: string, seq: number, writes: Promise<boolean>[]): string {
    return this.remember(`e:${id}`, seq, writes);
  }

  rememberTransport(key: string, hash: string, seq: number, writes: Promise<boolean>[]): string {
    return this.remember(`t:${key}`, [hash, seq], writes);
  }

  /** The writes of these keys resolved (committed, or failed so that a resend is stored): stop holding them in memory. */
  settled(keys: string[]): void {
    for (const k of keys) this.pending.delete(k);
  }

  private lookup(key: string): Entry | undefined {
    return this.pending.get(key) ?? this.tables[this.current].get(key) ?? (this.previousEmpty ? undefined : this.tables[this.current ^ 1].get(key));
  }

  private remember(key: string, entry: Entry, writes: Promise<boolean>[]): string {
    this.pending.set(key, entry);
    writes.push(this.tables[this.current].put(key, entry));
    return key;
  }

  /** Rotates generations when the current one is full or old; cheap to call often. */
  async maintain(now = Date.now()): Promise<void> {
    const table = this.tables[this.current];
    const full = tableStats(table).entryCount >= this.maxEntries / 2;
    const old = now - this.startedAt >= this.maxAgeMs / 2;
    if (!full && !old) return;
    const next = (this.current ^ 1) as 0 | 1;
    await this.tables[next].clearAsync();
    this.previousEmpty = tableStats(table).entryCount === 0;
    this.current = next;
    this.startedAt = now;
    await this.meta.put(META.dedupe, { current: next, startedAt: now } satisfies DedupeMeta);
  }

  size(): number {
    return tableStats(this.tables[0]).entryCount + tableStats(this.tables[1]).entryCount;
  }
}
