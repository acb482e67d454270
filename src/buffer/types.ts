/** What the buffer offers the uplink and the operations surface. See store.ts for the on-disk layout. */

export interface SealedBatch {
  /** Idempotency-Key: `{storeId}-{firstSeq}-{lastSeq}-{count}`; stable for these exact events. */
  id: string;
  partition: string;
  /** Sequences of the batch's events, ascending. */
  seqs: number[];
  /** Length of the uncompressed body in bytes. */
  bytes: number;
  /** When the batch was sealed (ISO 8601). */
  sealedAt: string;
}

export interface RejectedEvent {
  seq: number;
  /** Stable code, e.g. PG_ERR_UPLINK_REJECTED. */
  code: string;
  /** What the ERP said, kept for the technician. */
  reason: string;
}

export interface BatchOutcome {
  /** Accepted by the ERP: removed from the buffer. */
  delivered: number[];
  /** Permanently refused: moved to the dead letters with their reason. */
  rejected: RejectedEvent[];
  /** To send again: kept, in a batch that replaces this one. */
  retry: number[];
}

export interface BatchLimits {
  maxEvents: number;
  maxBytes: number;
  /**
   * The caller sends a partial batch at once (it does not linger), so settling a
   * batch may seal the next one whatever its size, in the same transaction.
   * Otherwise only a full next batch is sealed ahead.
   */
  sealPartialAhead?: boolean;
}

/** The uplink's view of the buffer. One writer per partition: the uplink. */
export interface Outbox {
  /** Partitions that have sealed batches or unsent events, in no particular order. */
  partitions(): string[];
  /** Called synchronously after events of a partition are committed, with how many. Returns an unsubscribe function. */
  onAppend(listener: (partition: string, count: number) => void): () => void;
  /**
   * Whether the partition has events not yet sealed into a batch, that a seal may take
   * now (from memory where the buffer can tell, else one seek). It may say yes for events
   * whose write failed: a seal then finds nothing.
   */
  hasUnsent(partition: string): boolean;
  /** Unsent events of a partition (not yet sealed into a batch), counted up to 100,000. */
  unsentCount(partition: string): number;
  /**
   * The oldest sealed, unsettled batch of the partition; if none, seals the next one
   * from the partition's unsent events within the limits (a single event larger than
   * maxBytes is sealed alone). Undefined when the partition has nothing to send.
   */
  nextBatch(partition: string, limits: BatchLimits): Promise<SealedBatch | undefined>;
  /**
   * Called from an append listener while the uplink works on the partition: seals the
   * events just offered (after any unsent before them) into the next batch, in the
   * transaction that commits them: chained behind a seal still being written, or with
   * the events of the batch waiting ahead, which it replaces. False when it did not.
   */
  sealAhead(partition: string, limits: BatchLimits): boolean;
  /**
   * The batch sealed ahead right after `previous`, with the promise of its commit: sent
   * once `previous` is accepted, without a write of its own. Undefined when there is none,
   * or another batch (a split's second half) comes first.
   */
  takeAhead(previous: SealedBatch): { batch: SealedBatch; durable: Promise<void> } | undefined;
  /** The request body: a JSON array of the batch's events in sequence order; the same bytes every call. */
  body(batch: SealedBatch): Buffer;
  /** The events of a batch, parsed (for per-event handling and the status page). */
  events(batch: SealedBatch): Record<string, unknown>[];
  /**
   * Applies the ERP's answer durably in one transaction. Returns the batch that replaces
   * it (the retry events), if any. Without one, the same transaction seals the next batch
   * when it is full, or whatever its size under `sealPartialAhead` or `sendingNext` (the
   * caller sends it at once).
   */
  settle(batch: SealedBatch, outcome: BatchOutcome, sendingNext?: boolean): Promise<SealedBatch | undefined>;
  /** Replaces a batch by its two halves, in order (400/422 isolation, 413). A batch of one event cannot be split. */
  split(batch: SealedBatch): Promise<[SealedBatch, SealedBatch]>;
}

export interface DeadLetter {
  /** Gateway sequence assigned when it was dead-lettered. */
  dlid: number;
  at: string;
  connector: string;
  code: string;
  reason: string;
  /** Raw bytes as received, base64, where the source had them. */
  raw?: string;
  context?: Record<string, unknown>;
  /** The event, where one existed (ERP rejections, replayable). */
  event?: Record<string, unknown>;
  partition?: string;
}

export interface BufferStats {
  storeId: string;
  lastSequence: number;
  /** Events committed and not yet delivered or dead-lettered. */
  pendingEvents: number;
  /** Bytes the store's tables occupy (pages in use). */
  storeBytes: number;
  freeDiskBytes: number;
  deadLetters: number;
  accepting: boolean;
  /** Why intake is refused, when it is. */
  fullReason?: string;
  /** Files being read under a hold: their events, and later ones of the same partitions, wait. */
  held: { connector: string; file: string; partitions: string[] }[];
  counters: {
    committed: number;
    duplicates: number;
    dropped: number;
    refused: number;
    commitErrors: number;
    delivered: number;
    deadLettered: number;
  };
}
