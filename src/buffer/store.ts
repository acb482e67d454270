/**
 * The durable buffer: one LMDB environment, `<dataDir>/plantgate.lmdb`.
 *
 * Tables and keys
 *   meta          'schemaVersion' → 1; 'storeId' → random id made when the store is
 *                 created (part of every batch id, so a fresh store never reuses a
 *                 key the ERP has seen); 'lastSequence'; 'dedupe' (generation state);
 *                 'hold:'+stream → the events of a file being read, held (holds.ts)
 *   journal       [partition, sequence] → the event's JSON (the exact bytes sent).
 *                 Every committed, undelivered event. Per partition it is the outbox:
 *                 events past the partition's last sealed batch are unsent; those from
 *                 its first held sequence on wait for the hold to end.
 *   batches       [partition, firstSequence] → { id, seqs, bytes, sealedAt }: sealed,
 *                 unsettled batches. Their events stay in the journal until settled.
 *   dedupe.0/.1   'e:'+eventId → sequence; 't:'+client:packetId → [payloadHash, sequence];
 *                 'r:'+stream+':'+from → to: a range of a stream's positions committed
 *   dead-letters  dlid (a gateway sequence) → DeadLetter
 *
 * Sequence: gateway-wide, strictly increasing, assigned in memory at commit, in the
 * order commits are called. Gaps are allowed (a failed commit). At open it is the
 * highest of meta.lastSequence, the last journal key of each partition and the
 * last dead-letter id; meta.lastSequence is written whenever events are removed.
 *
 * What is committed when, and what a crash leaves
 *   ingest     (intake.ts) journal put + dedupe put in one transaction (lmdb-js
 *              commits all puts of one event-loop turn together, flushed before the
 *              promise resolves);
 *              the source acknowledges after that. Crash before: nothing stored, the
 *              peer resends. Crash after, before the ack: the resend is recognised
 *              by id (or transport identity) and acknowledged without a second copy.
 *              A commit that names a stream range puts the range instead of one
 *              dedupe entry per event, in the same transaction; the source skips
 *              what the ranges cover when it reads the stream again.
 *   seal       one put of the batch record, awaited before the first send; made in
 *              the previous batch's settle transaction, or in the transaction of the
 *              events it takes (an idle partition seals events as they are committed).
 *              Never past a write still pending (batches.ts). Crash before: the events
 *              are unsent (or, sealed with them, not stored). Crash after: the same
 *              batch (same id, same bytes) is sent after restart.
 *   settle     one transaction removes the batch record and its delivered events,
 *              moves rejected events to dead-letters, and writes the retry batch (or
 *              seals the next). Crash before it, even after the ERP accepted the
 *              batch: it is resent with the same Idempotency-Key.
 *   split      one transaction replaces a batch record by its two halves.
 *   hold       the hold record rides in the transaction of its first event in each
 *              partition. Release: one transaction removes it. Discard: the record is
 *              marked, the events removed in slices (with lastSequence), then the
 *              stream's ranges and the record together. Crash mid-discard: the marked
 *              hold is discarded to the end before its stream is read again.
 *
 * Start-up reads meta, jumps from partition to partition in the journal (one
 * seek each) and reads the batch records: it never scans the backlog.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import type { BufferConfig } from '../config/schema.js';
import { PlantgateError, describeError } from '../errors.js';
import { sourceUri } from '../model/event.js';
import type { DeadLetterInput, IngestSink } from '../protocols/source.js';
import { CapacityGuard } from './capacity.js';
import { BatchLedger } from './batches.js';
import { DeadLetters } from './dead-letters.js';
import { DedupeIndex } from './dedupe.js';
import { Holds, type HoldInfo } from './holds.js';
import { Intake, type StoreCounts } from './intake.js';
import { lockDataDir } from './lock.js';
import { META, SCHEMA_VERSION, SEQ_MAX, STORE_FILE, TABLES, tableStats, type BatchRecord, type PartitionKey } from './layout.js';
import type { BatchLimits, BatchOutcome, BufferStats, Outbox, SealedBatch } from './types.js';

const MAINTAIN_INTERVAL_MS = 500;
export const UNSENT_COUNT_CAP = 100_000;
const UNSENT_COUNT_TTL_MS = 2_000;

export interface OpenBufferOptions {
  dataDir: string;
  config: BufferConfig;
  gatewayId: string;
  logger: Logger;
}

export async function openBuffer(opts: OpenBufferOptions): Promise<BufferStore> {
  const store = new BufferStore(opts);
  await store.init();
  return store;
}

export class BufferStore implements Outbox {
  readonly deadLetters: DeadLetters;
  private readonly env: RootDatabase;
  private readonly meta: Database;
  private readonly journal: Database<string, PartitionKey>;
  private readonly batches: Database<BatchRecord, PartitionKey>;
  private readonly ledger: BatchLedger;
  private readonly dedupe: DedupeIndex;
  private readonly holds: Holds;
  private readonly capacity: CapacityGuard;
  private readonly log: Logger;
  private readonly intake: Intake;
  private storeId = '';
  private readonly counts: StoreCounts = {
    lastSeq: 0,
    pending: 0,
    counters: { committed: 0, duplicates: 0, dropped: 0, refused: 0, commitErrors: 0, delivered: 0, deadLettered: 0 },
  };
  /** The maintenance pass in progress, if any. */
  private maintaining: Promise<void> | undefined;
  private storeBytes = 0;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly unlock: () => void;
  /** Partitions with journal entries. */
  private readonly partitionSet = new Set<string>();
  private readonly unsentCounts = new Map<string, { n: number; at: number }>();
  private readonly appendListeners = new Set<(partition: string, count: number) => void>();

  constructor(private readonly opts: OpenBufferOptions) {
    this.log = opts.logger.child({ component: 'buffer' });
    mkdirSync(opts.dataDir, { recursive: true });
    this.unlock = lockDataDir(opts.dataDir);
    // separateFlushed: false → a write's promise resolves only once it is flushed to disk.
    this.env = open({ path: join(opts.dataDir, STORE_FILE), maxDbs: 12, overlappingSync: true, separateFlushed: false } as never);
    this.meta = this.env.openDB({ name: TABLES.meta });
    this.journal = this.env.openDB<string, PartitionKey>({ name: TABLES.journal, encoding: 'string' });
    this.batches = this.env.openDB<BatchRecord, PartitionKey>({ name: TABLES.batches });
    this.ledger = new BatchLedger(this.batches, this.journal, () => this.storeId, (p) => this.unsentEnd(p));
    const dedupeTables = [this.env.openDB({ name: TABLES.dedupe0 }), this.env.openDB({ name: TABLES.dedupe1 })] as const;
    this.dedupe = new DedupeIndex([dedupeTables[0], dedupeTables[1]] as never, this.meta, opts.config.dedupeMaxEntries, opts.config.dedupeMaxAgeHours * 3_600_000);
    this.holds = new Holds({
      env: this.env,
      meta: this.meta,
      journal: this.journal,
      dedupe: this.dedupe,
      counts: this.counts,
      log: this.log,
      ended: (partitions) => {
        for (const p of partitions) {
          this.forgetIfEmpty(p);
          if (this.partitionSet.has(p)) this.announce(p, 1);
        }
      },
    });
    this.capacity = new CapacityGuard(opts.config, opts.dataDir);
    this.intake = new Intake({
      journal: this.journal,
      dedupe: this.dedupe,
      holds: this.holds,
      capacity: this.capacity,
      dropWhenFull: new Set(opts.config.dropWhenFullTypes),
      counts: this.counts,
      log: this.log,
      dataDir: opts.dataDir,
      gatewayId: opts.gatewayId,
      storeId: () => this.storeId,
      closed: () => this.closed,
      announce: (partition, count, lastSeq) => this.announce(partition, count, lastSeq),
      offer: (partition, seqs, values) => this.offer(partition, seqs, values),
      writing: (partition, firstSeq) => this.ledger.writing(partition, firstSeq),
      written: (partition, firstSeq) => this.ledger.written(partition, firstSeq),
    });
    this.deadLetters = new DeadLetters(this.env, this.env.openDB({ name: TABLES.deadLetters }), {
      nextSequence: () => ++this.counts.lastSeq,
      appended: (partition, json, seq) => this.appendReplayed(partition, json, seq),
      committed: (partition) => this.announce(partition, 1),
      ended: (partition, seq) => this.ledger.written(partition, seq),
      logger: this.log,
    });
  }

  async init(): Promise<void> {
    const version = this.meta.get(META.schemaVersion) as number | undefined;
    if (version !== undefined && version !== SCHEMA_VERSION) {
      throw new PlantgateError('PG_ERR_BUFFER_SCHEMA', `store ${this.opts.dataDir} has schema version ${version}; this plantgate reads version ${SCHEMA_VERSION}. Drain it with the plantgate release that wrote it, or move it aside.`);
    }
    this.storeId = (this.meta.get(META.storeId) as string | undefined) ?? randomBytes(6).toString('hex');
    if (version === undefined) {
      await this.env.transaction(() => {
        this.meta.put(META.schemaVersion, SCHEMA_VERSION);
        this.meta.put(META.storeId, this.storeId);
      });
    }
    let last = (this.meta.get(META.lastSequence) as number | undefined) ?? 0;
    for (const p of this.scanPartitions()) {
      this.partitionSet.add(p);
      for (const key of this.journal.getKeys({ start: [p, SEQ_MAX], end: [p, -1], reverse: true, limit: 1 })) last = Math.max(last, key[1]);
    }
    this.ledger.load();
    this.holds.load();
    this.counts.lastSeq = Math.max(last, this.deadLetters.lastId());
    this.counts.pending = tableStats(this.journal).entryCount;
    await this.capacity.refreshDisk();
    this.measure();
    this.dedupe.fillFilters().catch((err: unknown) => this.log.error({ err: describeError(err) }, 'dedupe filter fill failed; resends are still recognised, at the cost of a read per event'));
    this.timer = setInterval(() => void this.maintain(), MAINTAIN_INTERVAL_MS);
    this.timer.unref();
    this.log.info({ storeId: this.storeId, pendingEvents: this.counts.pending, partitions: this.partitionSet.size, lastSequence: this.counts.lastSeq }, 'buffer open');
  }

  /** The sink a source commits through; `connector` names it in each event's source. */
  sinkFor(connector: string): IngestSink {
    const source = sourceUri(this.opts.gatewayId, connector);
    return {
      commit: (items, options) => this.intake.commit(source, connector, items, options),
      committedRanges: (stream) => this.dedupe.committedRanges(stream),
      deadLetter: (entry) => this.addDeadLetter(connector, entry),
      accepting: () => !this.closed && this.capacity.reason === undefined,
      holds: {
        list: () => this.holds.list(connector),
        release: (stream) => this.holds.release(stream),
        discard: (stream) => this.holds.discard(stream),
      },
    };
  }

  /** Every hold, of every connector (the gateway discards those of connectors no longer configured). */
  heldStreams(): HoldInfo[] {
    return this.holds.list();
  }

  discardHold(stream: string): Promise<number> {
    return this.holds.discard(stream);
  }

  private announce(partition: string, count: number, lastSeq = SEQ_MAX): void {
    this.partitionSet.add(partition);
    // Held partitions are woken when their hold ends: nothing past the hold can be sent before.
    if (this.holds.floor(partition) !== undefined) return;
    // Sealed as they were committed (offer): nothing new to send.
    if (lastSeq < this.ledger.unsentFrom(partition)) return;
    for (const listener of this.appendListeners) listener(partition, count);
  }

  /**
   * Wakes the uplink for events whose puts are still pending (intake.ts): an idle
   * partition seals them in this event-loop turn, so in their transaction. A held
   * partition waits for its hold to end.
   */
  private offer(partition: string, seqs: number[], values: string[]): void {
    this.partitionSet.add(partition);
    if (this.holds.floor(partition) !== undefined) return;
    this.ledger.offer(partition, seqs, values);
    try {
      for (const listener of this.appendListeners) listener(partition, seqs.length);
    } finally {
      this.ledger.offer(undefined);
    }
  }

  /** Journal key below which a partition's events may be sealed: its first held sequence, else all. */
  private unsentEnd(partition: string): PartitionKey {
    return [partition, this.holds.floor(partition) ?? SEQ_MAX];
  }

  private appendReplayed(partition: string, json: string, seq: number): void {
    this.ledger.writing(partition, seq);
    this.journal.put([partition, seq], json);
    this.counts.pending++;
  }

  private async addDeadLetter(connector: string, entry: DeadLetterInput): Promise<void> {
    await this.deadLetters.add(connector, entry);
    this.counts.counters.deadLettered++;
  }

  // ---- Outbox (the uplink's side) ----

  partitions(): string[] {
    return [...this.partitionSet];
  }

  onAppend(listener: (partition: string, count: number) => void): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  hasUnsent(partition: string): boolean {
    for (const _ of this.journal.getKeys({ start: [partition, this.ledger.unsentFrom(partition)], end: this.ledger.sealableEnd(partition), limit: 1 })) return true;
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
    for (const _ of this.journal.getKeys({ start: [partition, this.ledger.unsentFrom(partition)], end: this.unsentEnd(partition), limit: UNSENT_COUNT_CAP })) n++;
    this.unsentCounts.set(partition, { n, at: now });
    return n;
  }

  async nextBatch(partition: string, limits: BatchLimits): Promise<SealedBatch | undefined> {
    const batch = await this.ledger.next(partition, limits);
    if (!batch) this.forgetIfEmpty(partition);
    return batch;
  }

  body(batch: SealedBatch): Buffer {
    return this.ledger.body(batch);
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
    const p = batch.partition;
    const writes: Promise<boolean>[] = [];
    for (const seq of outcome.delivered) writes.push(this.journal.remove([p, seq]));
    for (const r of outcome.rejected) {
      const json = this.journal.get([p, r.seq]);
      if (json === undefined) continue;
      writes.push(this.deadLetters.putRejected('uplink', { code: r.code, reason: r.reason, partition: p, event: JSON.parse(json) as Record<string, unknown> }));
      writes.push(this.journal.remove([p, r.seq]));
    }
    const { retry, commit } = this.ledger.settleWrites(batch, outcome.retry, sendingNext, writes);
    writes.push(this.meta.put(META.lastSequence, this.counts.lastSeq));
    // lmdb-js hands every write of one transaction the same promise.
    await Promise.all(new Set(writes));
    commit();
    this.counts.pending -= outcome.delivered.length + outcome.rejected.length;
    this.counts.counters.delivered += outcome.delivered.length;
    this.counts.counters.deadLettered += outcome.rejected.length;
    if (!retry) this.forgetIfEmpty(p);
    return retry;
  }

  split(batch: SealedBatch): Promise<[SealedBatch, SealedBatch]> {
    return this.ledger.split(batch, (action) => this.env.transaction(action));
  }

  /** Drops a partition from the set once nothing of it remains. */
  private forgetIfEmpty(partition: string): void {
    for (const _ of this.journal.getKeys({ start: [partition, 0], end: [partition, SEQ_MAX], limit: 1 })) return;
    this.partitionSet.delete(partition);
    this.unsentCounts.delete(partition);
    this.ledger.forget(partition);
  }

  private *scanPartitions(): Generator<string> {
    let start: PartitionKey | undefined;
    for (;;) {
      let next: string | undefined;
      for (const key of this.journal.getKeys(start ? { start, limit: 1 } : { limit: 1 })) next = key[0];
      if (next === undefined) return;
      yield next;
      start = [next, SEQ_MAX];
    }
  }

  // ---- state ----

  private measure(): void {
    let bytes = 0;
    for (const db of [this.journal, this.batches, this.deadLetters.table, this.meta]) {
      const s = tableStats(db);
      bytes += s.pageSize * (s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages);
    }
    this.storeBytes = bytes + this.dedupe.size() * 64;
    const before = this.capacity.reason;
    const after = this.capacity.evaluate({ events: this.counts.pending, bytes: this.storeBytes });
    if (after !== before) {
      if (after) this.log.warn({ code: 'PG_ERR_BUFFER_FULL', reason: after }, 'buffer full: sources are not acknowledged until it drains');
      else this.log.info({ pendingEvents: this.counts.pending }, 'buffer below its limits again: accepting');
    }
  }

  private maintain(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // close() waits for a pass in progress: a read on a closing LMDB environment leaves
    // lmdb-js a timer that throws once the environment is gone.
    this.maintaining ??= this.maintainOnce().finally(() => (this.maintaining = undefined));
    return this.maintaining;
  }

  private async maintainOnce(): Promise<void> {
    try {
      await this.capacity.refreshDisk();
      if (this.closed) return;
      this.measure();
      await this.dedupe.maintain();
    } catch (err) {
      this.log.error({ err: describeError(err) }, 'buffer maintenance failed');
    }
  }

  /** Re-reads usage now (tests and the status page call it; a timer does it twice a second). */
  refresh(): void {
    this.measure();
  }

  stats(): BufferStats {
    const reason = this.capacity.reason;
    return {
      storeId: this.storeId,
      lastSequence: this.counts.lastSeq,
      pendingEvents: this.counts.pending,
      storeBytes: this.storeBytes,
      freeDiskBytes: this.capacity.freeDiskBytes,
      deadLetters: this.deadLetters.count(),
      accepting: !this.closed && reason === undefined,
      ...(reason !== undefined ? { fullReason: reason } : {}),
      held: this.holds.list().map(({ connector, file, partitions }) => ({ connector, file, partitions })),
      counters: { ...this.counts.counters },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.dedupe.stop();
    await this.maintaining;
    await this.env.close();
    this.unlock();
    this.log.info('buffer closed');
  }
}

