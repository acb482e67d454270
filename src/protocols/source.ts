/**
 * The contract between a source and the rest of the gateway (DESIGN.md).
 *
 * A source turns what a plant system sends into EventDrafts and hands them to its
 * IngestSink. `commit` resolves only once the drafts are durable in LMDB; only
 * then may the source acknowledge to its peer (PUBACK, handshake write, archive
 * move). When it rejects (buffer full, commit error) the source must not
 * acknowledge: the peer keeps the data and retries.
 */
import type { Logger } from 'pino';
import type { EventDraft } from '../model/event.js';

export interface CommitItem {
  draft: EventDraft;
  /**
   * `draft.data` as JSON text when the source already holds it (an MQTT payload taken
   * whole, just parsed from this text): stored as is instead of encoding `data` again.
   */
  dataJson?: string;
  /**
   * Transport identity for drafts without a stable id (MQTT: client + packet id
   * and payload hash). A draft flagged `resend` whose key and hash match the last
   * commit under that key is a duplicate and is not stored again.
   */
  transport?: { key: string; hash: string; resend: boolean };
}

export interface CommitOutcome {
  id: string;
  sequence: number;
  /** True when the event was already committed earlier (same id or same transport identity). */
  duplicate: boolean;
}

export interface DeadLetterInput {
  /** Stable error code (PG_ERR_...) saying why. */
  code: string;
  /** What a technician reads: the cause and what to do. */
  reason: string;
  /** The bytes as received, kept so nothing is lost. */
  raw?: Buffer | string;
  /** Where it came from: topic, client id, file and line, node id... */
  context?: Record<string, unknown>;
}

/**
 * A source that reads an ordered, replayable stream (a file) can answer for resends
 * itself: each commit names the stream and the range of positions it covers,
 * recorded in the same transaction as the events; before reading the stream again
 * the source skips every position inside a recorded range. Such events are not
 * indexed by id (that index is a third of the commit path's cost). Ranges, not a
 * high-water mark: when one commit of several in flight fails and a later one
 * succeeds, the gap is committed on the next read, not lost.
 */
export interface CommitOptions {
  range?: { stream: string; from: number; to: number };
  /**
   * With `range`: the events are held, not sent, until `holds.release(range.stream)`;
   * `holds.discard` removes them instead. `file` names what is being read (status, logs).
   */
  hold?: { file: string };
}

/** Events committed under a hold (CommitOptions.hold), per stream, for this sink's connector. */
export interface HeldCommits {
  list(): { stream: string; file: string; discarding: boolean }[];
  /** The held events may be sent; resolves once that is durable. */
  release(stream: string): Promise<void>;
  /** Removes the held events and the stream's committed ranges; resolves with how many events were removed. */
  discard(stream: string): Promise<number>;
}

export interface IngestSink {
  commit(items: CommitItem[], options?: CommitOptions): Promise<CommitOutcome[]>;
  /** The position ranges committed for a stream, [from, to] inclusive (remembered as long as event ids are). */
  committedRanges(stream: string): [number, number][];
  /** Commits a dead letter durably; resolves after the commit. */
  deadLetter(entry: DeadLetterInput): Promise<void>;
  /** False while the buffer is at a capacity limit; sources may pause intake. */
  accepting(): boolean;
  /** Present when the sink can hold commits (the buffer's own sinks). */
  holds?: HeldCommits;
}

export interface SourceContext {
  gatewayId: string;
  site: string;
  /** The connector's name from config; part of every event's `source`. */
  connector: string;
  sink: IngestSink;
  logger: Logger;
  /** The gateway's data directory; a source keeps its own state under `<dataDir>/<kind>/<connector>`. */
  dataDir: string;
}

export type SourceState = 'starting' | 'running' | 'degraded' | 'stopped' | 'error';

export interface SourceStatus {
  name: string;
  kind: string;
  state: SourceState;
  lastError?: { code: string; message: string; at: string };
  counters: Record<string, number>;
  /** Kind-specific detail (connections, inboxes, ...) for the status page. */
  details?: unknown;
}

export interface Source {
  readonly name: string;
  readonly kind: string;
  /** Resolves once the source accepts input (listening, connected or first attempt made). */
  start(): Promise<void>;
  /** Stops intake and waits for commits in flight; acknowledges nothing after it resolves. */
  stop(): Promise<void>;
  status(): SourceStatus;
}
