/**
 * One partition's sending state, as the uplink's scheduler sees it. A partition is
 * held by at most one worker at a time: that is what keeps its batches in order.
 */
import type { SealedBatch } from '../buffer/types.js';
import type { PartitionStatus, UplinkError } from './types.js';

export interface Partition {
  name: string;
  /** idle: nothing to do; queued: in the ready FIFO; sending: a worker holds it; waiting: a timer will queue it. */
  state: 'idle' | 'queued' | 'sending' | 'waiting';
  timer?: NodeJS.Timeout;
  /** Waiting for a batch to fill (lingerMs), as opposed to backing off. */
  lingering: boolean;
  /** A batch that must go next: the one being retried, a split's first half, a 207 replacement. */
  current?: SealedBatch;
  /**
   * Accepted by the ERP, not yet settled: it is settled in the transaction that seals
   * the next batch (one write per batch, not two), or alone once the partition idles.
   */
  accepted?: SealedBatch;
  /**
   * The settle of an accepted batch whose successor was sealed ahead (in the commit of
   * its events) and went out at once: its write flushes while that request is out, and
   * ends before the partition's next buffer operation.
   */
  settling?: Promise<void>;
  /** The commit that seals `current`, when it was sealed ahead: the request waits for it. */
  ready?: Promise<void>;
  /** Settles `accepted` if nothing else comes to seal with it. */
  settleTimer?: NodeJS.Timeout;
  /** More sealed batches may exist (a split's second half, a restart): don't linger. */
  sealedAhead: boolean;
  /** The last batch sealed was full: more unsent events are likely, don't linger. */
  lastBatchFull: boolean;
  /** onAppend fired since the last batch was sealed. */
  appended: boolean;
  /** Events appended since the last batch was sealed (from onAppend's counts): fills a lingering batch without counting the store. */
  appendedEvents: number;
  /** Failed attempts in a row for the current batch. */
  attempts: number;
  inFlight?: { batchId: string; events: number; attempts: number; since: string };
  nextRetryAt?: number;
  lastError?: UplinkError;
  /** When the oldest unsent event arrived (approximately), for lingerMs. */
  pendingSince?: number;
}

export function newPartition(name: string): Partition {
  return { name, state: 'idle', lingering: false, sealedAhead: false, lastBatchFull: false, appended: false, appendedEvents: 0, attempts: 0 };
}

export function partitionStatus(name: string, unsent: number, p: Partition | undefined): PartitionStatus {
  return {
    partition: name,
    unsent,
    ...(p?.inFlight ? { inFlight: { ...p.inFlight } } : {}),
    ...(p?.nextRetryAt !== undefined ? { nextRetryAt: new Date(p.nextRetryAt).toISOString() } : {}),
    ...(p?.lastError ? { lastError: { ...p.lastError } } : {}),
  };
}
