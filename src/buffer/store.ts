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
 *              events it takes (an idle partition seals events as they are committed;
 *              one with a batch out seals them as the batch after it, chained behind
 *              a seal still pending, or with the batch waiting ahead, whose record
 *              the same transaction overwrites: seal-queue.ts). Crash after a
 *              replacement: the batch replaced was never sent; the new one goes.
 *              Never past a pending write the seal before it does not hold
 *              (journal-writes.ts). Crash before: the events
 *              are unsent (or, sealed with them, not stored). Crash after: the same
 *              batch (same id, same bytes) is sent after restart. A seal that failed
 *              behind which a later one was stored leaves a gap of events in no batch:
 *              sealed on its own before anything after it goes, and at open if a crash
 *              came first.
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
import { JournalWrites } from './journal-writes.js';
import { lockDataDir } from './lock.js';
import { META, SCHEMA_VERSION, SEQ_MAX, STORE_FILE, TABLES, tableStats, type BatchRecord, type JournalBytes, type PartitionKey } from './layout.js';
import { StoreOutbox } from './outbox.js';
import type { BufferStats } from './types.js';

const MAINTAIN_INTERVAL_MS = 500;

export interface OpenBufferOptions {
  dataDir: string;
  config: BufferConfig;
  gatewayId: string;
  logger: Logger;
  /**
   * The caller starts the dedupe filters' fill itself (fillDedupeFilters), once it is
   * ready: the fill reads the whole index in slices, which delayed the gateway's
   * start-up by a fifth to a third (1 to 10 million events). Until then a lookup reads LMDB.
   */
  deferDedupeFill?: boolean;
}

export async function openBuffer(opts: OpenBufferOptions): Promise<BufferStore> {
  const store = new BufferStore(opts);
  await store.init();
  return store;
}

export class BufferStore {
  readonly deadLetters: DeadLetters;
  /** What the uplink reads and settles. */
  readonly outbox: StoreOutbox;
  private readonly env: RootDatabase;
  private readonly meta: Database;
  private readonly journal: JournalBytes;
  private readonly batches: Database<BatchRecord, PartitionKey>;
  private readonly ledger: BatchLedger;
  /** What each partition's journal holds and which of its writes are pending. */
  private readonly writes = new JournalWrites();
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

  constructor(private readonly opts: OpenBufferOptions) {
    this.log = opts.logger.child({ component: 'buffer' });
    mkdirSync(opts.dataDir, { recursive: true });
    this.unlock = lockDataDir(opts.dataDir);
    // separateFlushed: false → a write's promise resolves only once it is flushed to disk.
    this.env = open({ path: join(opts.dataDir, STORE_FILE), maxDbs: 12, overlappingSync: true, separateFlushed: false } as never);
    this.meta = this.env.openDB({ name: TABLES.meta });
    this.journal = this.env.openDB<Buffer, PartitionKey>({ name: TABLES.journal, encoding: 'binary' });
    this.batches = this.env.openDB<BatchRecord, PartitionKey>({ name: TABLES.batches });
    // A seal stops at a partition's first held sequence (holds.ts).
    this.ledger = new BatchLedger(this.batches, this.journal, this.writes, () => this.storeId, (p) => [p, this.holds.floor(p) ?? SEQ_MAX]);
    const dedupeTables = [this.env.openDB({ name: TABLES.dedupe0 }), this.env.openDB({ name: TABLES.dedupe1 })] as const;
    this.dedupe = new DedupeIndex([dedupeTables[0], dedupeTables[1]] as never, this.meta, opts.config.dedupeMaxEntries, opts.config.dedupeMaxAgeHours * 3_600_000);
    this.holds = new Holds({
      env: this.env,
      meta: this.meta,
      journal: this.journal,
      dedupe: this.dedupe,
      counts: this.counts,
      log: this.log,
      ended: (partitions) => this.outbox.holdEnded(partitions),
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
      announce: (partition, count, lastSeq) => this.outbox.announce(partition, count, lastSeq),
      offer: (partition, seqs, values) => this.outbox.offer(partition, seqs, values),
      writing: (partition, firstSeq, lastSeq) => this.writes.writing(partition, firstSeq, lastSeq),
      written: (partition, firstSeq, lastSeq) => this.writes.written(partition, firstSeq, lastSeq),
    });
    this.deadLetters = new DeadLetters(this.env, this.env.openDB({ name: TABLES.deadLetters }), {
      nextSequence: () => ++this.counts.lastSeq,
      appended: (partition, json, seq) => this.outbox.appendReplayed(partition, json, seq),
      committed: (partition) => this.outbox.announce(partition, 1),
      ended: (partition, seq) => this.writes.written(partition, seq),
      logger: this.log,
    });
    this.outbox = new StoreOutbox({ env: this.env, meta: this.meta, journal: this.journal, ledger: this.ledger, writes: this.writes, holds: this.holds, deadLetters: this.deadLetters, counts: this.counts });
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
    const lastInJournal = this.outbox.load();
    const gaps = this.ledger.load();
    if (gaps > 0) this.log.warn({ gaps }, 'found events in no batch below sealed ones (a seal failed before the last stop); they are sealed and sent first');
    this.holds.load();
    this.counts.lastSeq = Math.max((this.meta.get(META.lastSequence) as number | undefined) ?? 0, lastInJournal, this.deadLetters.lastId());
    this.counts.pending = tableStats(this.journal).entryCount;
    await this.capacity.refreshDisk();
    this.measure();
    if (!this.opts.deferDedupeFill) this.fillDedupeFilters();
    this.timer = setInterval(() => void this.maintain(), MAINTAIN_INTERVAL_MS);
    this.timer.unref();
    this.log.info({ storeId: this.storeId, pendingEvents: this.counts.pending, partitions: this.outbox.partitions().length, lastSequence: this.counts.lastSeq }, 'buffer open');
  }

  /** Fills the dedupe index's filters in the background, a slice per event-loop turn. */
  fillDedupeFilters(): void {
    this.dedupe.fillFilters().catch((err: unknown) => this.log.error({ err: describeError(err) }, 'dedupe filter fill failed; resends are still recognised, at the cost of a read per event'));
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

  private async addDeadLetter(connector: string, entry: DeadLetterInput): Promise<void> {
    await this.deadLetters.add(connector, entry);
    this.counts.counters.deadLettered++;
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
      await this.dedupe.maintain(Date.now(), (stream) => this.holds.get(stream) !== undefined);
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

