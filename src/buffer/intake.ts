/**
 * The buffer's ingest side: what happens between a source's `commit` and its
 * acknowledgement. Capacity is checked, resends are recognised (dedupe index, or a
 * stream range the source skips by itself), each new event gets the next gateway
 * sequence and its exact bytes, and the journal and index puts are issued in one
 * event-loop turn, so LMDB commits them in one transaction. The caller's promise
 * resolves only once that transaction is flushed (store.ts's header says what a
 * crash leaves).
 *
 * The events are offered to the uplink in the same turn, while their puts are still
 * pending: an idle partition seals them then, and its seal rides in their transaction
 * (one flush before both the acknowledgement and the send, instead of two in a row).
 * Each commit's first sequence per partition is registered as pending until it is
 * flushed: nothing from there on is sealed before (batches.ts), so a batch never
 * skips an event it cannot see yet.
 */
import type { Logger } from 'pino';
import { PlantgateError, describeError } from '../errors.js';
import { SPEC_VERSION } from '../model/event.js';
import type { CommitItem, CommitOptions, CommitOutcome } from '../protocols/source.js';
import type { CapacityGuard } from './capacity.js';
import type { DedupeIndex } from './dedupe.js';
import type { Holds } from './holds.js';
import type { JournalBytes } from './layout.js';
import type { BufferStats } from './types.js';

/**
 * How every stored event's JSON begins, up to its id: the ids of a stream begin with
 * `stream + ':'` (file drops), so this finds a stream's events without parsing them.
 */
export function storedIdPrefix(idStart: string): string {
  return `{"specversion":"${SPEC_VERSION}","id":${JSON.stringify(idStart).slice(0, -1)}`;
}

/** The sequence line and counts the store and its intake share. */
export interface StoreCounts {
  lastSeq: number;
  /** Events committed and not yet delivered or dead-lettered. */
  pending: number;
  readonly counters: BufferStats['counters'];
}

export interface IntakeParts {
  journal: JournalBytes;
  dedupe: DedupeIndex;
  holds: Holds;
  capacity: CapacityGuard;
  /** Event types dropped (counted) instead of refused while the buffer is full. */
  dropWhenFull: ReadonlySet<string>;
  counts: StoreCounts;
  log: Logger;
  dataDir: string;
  gatewayId: string;
  storeId: () => string;
  closed: () => boolean;
  /** Events of a partition were committed, up to `lastSeq` (the outbox wakes the uplink unless they are sealed already). */
  announce: (partition: string, count: number, lastSeq: number) => void;
  /** Events of a partition were just staged (their stored bytes): the uplink may seal them in this turn. */
  offer: (partition: string, seqs: number[], values: Buffer[]) => void;
  /** A write of a partition's events `firstSeq`..`lastSeq` is pending; `written` when it is flushed or failed. */
  writing: (partition: string, firstSeq: number, lastSeq: number) => void;
  written: (partition: string, firstSeq: number, lastSeq: number) => void;
}

/** Events of one partition staged in one call, in sequence order; their stored bytes when they are offered to the uplink. */
class Offer {
  readonly seqs: number[] = [];
  readonly values: Buffer[] = [];
}

/** A commit's puts, issued and not yet flushed. */
interface Staged {
  outcomes: CommitOutcome[];
  writes: Promise<boolean>[];
  dedupeKeys: string[];
  /** New events (not resends). */
  events: number;
  /** Per partition: its events in this commit (the first is pending until flushed). */
  runs: Map<string, { first: number; last: number; count: number }>;
}

export class Intake {
  /** Events written but not yet flushed. */
  private committing = 0;
  /** Set for the rest of an event-loop turn once a commit was refused for capacity. */
  private refusedThisTurn: string | undefined;

  constructor(private readonly p: IntakeParts) {}

  /**
   * Stages the puts synchronously, then waits for them: the drafts are not held while
   * the transaction flushes (a source's next chunk is being built meanwhile, and drafts
   * held across that would be promoted to the old heap and inflate memory).
   */
  commit(source: string, connector: string, items: CommitItem[], options?: CommitOptions): Promise<CommitOutcome[]> {
    try {
      const hold = options?.hold && options.range ? { stream: options.range.stream, connector, file: options.hold.file } : undefined;
      const staged = this.stage(source, items, options?.range, hold);
      return staged.writes.length === 0 ? Promise.resolve(staged.outcomes) : this.flushed(staged);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private stage(source: string, items: CommitItem[], range: CommitOptions['range'], hold: { stream: string; connector: string; file: string } | undefined): Staged {
    const { counts, dedupe, holds } = this.p;
    if (this.p.closed()) throw new PlantgateError('PG_ERR_BUFFER_CLOSED', 'the buffer is closed (gateway shutting down); the source will resend');
    // The event limit is checked on every commit; bytes and disk by the timer (they move slowly).
    // A refusal also refuses the rest of this event-loop turn: a smaller commit issued right
    // after a refused one must not slip in ahead of it and change the order of a source's events.
    const full = this.p.capacity.reason ?? this.refusedThisTurn ?? this.p.capacity.eventLimit(counts.pending + this.committing, items.length);
    if (full !== undefined && !items.every((i) => this.p.dropWhenFull.has(i.draft.type))) {
      counts.counters.refused += items.length;
      if (this.refusedThisTurn === undefined) {
        this.refusedThisTurn = full;
        setImmediate(() => (this.refusedThisTurn = undefined));
      }
      throw new PlantgateError('PG_ERR_BUFFER_FULL', full);
    }
    const outcomes: CommitOutcome[] = [];
    const writes: Promise<boolean>[] = [];
    const dedupeKeys: string[] = [];
    let events = 0;
    const offers = new Map<string, Offer>();
    // The envelope's fixed part, JSON-encoded once per call; each event adds its own fields.
    const common = `,"source":${JSON.stringify(source)}`;
    const received = `,"receivedtime":"${new Date().toISOString()}","datacontenttype":"application/json","data":`;
    for (const { draft, transport, dataJson } of items) {
      if (full !== undefined) {
        counts.counters.dropped++;
        outcomes.push({ id: draft.id ?? '', sequence: -1, duplicate: false });
        continue;
      }
      // Under a range the source has already skipped what was committed before.
      const known = range ? undefined : draft.id !== undefined ? dedupe.seqOfId(draft.id) : transport?.resend ? dedupe.seqOfTransport(transport.key, transport.hash) : undefined;
      if (known !== undefined) {
        counts.counters.duplicates++;
        // Acknowledge after commit: a resend of an event still being committed waits for that flush.
        const original = dedupe.originalInFlight(draft.id, transport?.key);
        if (original) writes.push(original);
        outcomes.push({ id: draft.id ?? '', sequence: known, duplicate: true });
        continue;
      }
      const seq = ++counts.lastSeq;
      const id = draft.id ?? `${this.p.gatewayId}-${this.p.storeId()}-${seq}`;
      const idJson = JSON.stringify(id);
      // Same fields and order as PlantEvent (model/event.ts), built as text: this is the hot path.
      const json =
        `{"specversion":"${SPEC_VERSION}","id":${idJson}${common},"type":${JSON.stringify(draft.type)},"time":${JSON.stringify(draft.time)}` +
        (draft.subject !== undefined ? `,"subject":${JSON.stringify(draft.subject)}` : '') +
        `,"sequence":"${seq}","partitionkey":${JSON.stringify(draft.partitionkey)},"correlationid":${draft.correlationid !== undefined ? JSON.stringify(draft.correlationid) : idJson}` +
        `${received}${dataJson ?? JSON.stringify(draft.data)}}`;
      // Encoded once: the same bytes are stored and, when sealed now, sent.
      const bytes = Buffer.from(json);
      writes.push(this.p.journal.put([draft.partitionkey, seq], bytes));
      let offer = offers.get(draft.partitionkey);
      if (!offer) offers.set(draft.partitionkey, (offer = new Offer()));
      offer.seqs.push(seq);
      if (!hold) offer.values.push(bytes); // held events are not offered
      if (hold) holds.note(hold.stream, hold.connector, hold.file, draft.partitionkey, seq, writes);
      if (!range) {
        if (draft.id !== undefined) dedupeKeys.push(dedupe.rememberId(draft.id, seq, writes));
        else if (transport) dedupeKeys.push(dedupe.rememberTransport(transport.key, transport.hash, seq, writes));
      }
      events++;
      outcomes.push({ id, sequence: seq, duplicate: false });
    }
    if (range && writes.length) dedupeKeys.push(dedupe.rememberRange(range.stream, range.from, range.to, writes));
    this.committing += events;
    // Offered before they count as pending: a seal in this turn joins their transaction.
    if (!hold) for (const [p, offer] of offers) this.p.offer(p, offer.seqs, offer.values);
    const runs: Staged['runs'] = new Map();
    for (const [p, { seqs }] of offers) {
      runs.set(p, { first: seqs[0]!, last: seqs[seqs.length - 1]!, count: seqs.length });
      this.p.writing(p, seqs[0]!, seqs[seqs.length - 1]!);
    }
    return { outcomes, writes, dedupeKeys, events, runs };
  }

  private async flushed({ outcomes, writes, dedupeKeys, events: n, runs }: Staged): Promise<CommitOutcome[]> {
    const { counts } = this.p;
    try {
      // lmdb-js hands every put of one transaction the same promise: wait for each transaction once.
      await Promise.all(new Set(writes));
    } catch (err) {
      // A commit holding only resends failed with its originals' transaction, which reported it.
      if (n > 0) {
        counts.counters.commitErrors++;
        this.p.log.error({ code: 'PG_ERR_BUFFER_COMMIT', err: describeError(err), events: n }, 'commit failed; nothing acknowledged');
      }
      throw new PlantgateError('PG_ERR_BUFFER_COMMIT', `could not commit ${n > 0 ? `${n} event(s)` : 'the original of a resent event'} to ${this.p.dataDir}: ${describeError(err)}. Check disk space and permissions; sources will resend.`, undefined, { cause: err });
    } finally {
      this.committing -= n;
      for (const [p, { first, last }] of runs) this.p.written(p, first, last);
      this.p.dedupe.settled(dedupeKeys);
    }
    counts.pending += n;
    counts.counters.committed += n;
    for (const [p, { last, count }] of runs) this.p.announce(p, count, last);
    return outcomes;
  }
}
