/** The uplink's public face: what the gateway, the web page and the CLI see. */
import type { ErrorCode } from '../errors.js';

export type UplinkState = 'running' | 'paused' | 'stopped' | 'disabled';

export interface UplinkAlarm {
  code: ErrorCode;
  message: string;
  /** ISO 8601 */
  since: string;
}

export interface UplinkError {
  code: string;
  message: string;
  /** ISO 8601 */
  at: string;
  /** HTTP status, when the ERP answered. */
  status?: number;
}

export interface PartitionStatus {
  partition: string;
  /** Events not yet sealed into a batch. */
  unsent: number;
  inFlight?: { batchId: string; events: number; attempts: number; since: string };
  /** ISO 8601: when a backed-off partition tries again. */
  nextRetryAt?: string;
  lastError?: UplinkError;
}

export interface UplinkCounters {
  requests: number;
  batchesDelivered: number;
  eventsDelivered: number;
  eventsRejected: number;
  retries: number;
  splits: number;
}

export interface UplinkStatus {
  state: UplinkState;
  alarm?: UplinkAlarm;
  /** ISO 8601 */
  lastSuccessAt?: string;
  lastError?: UplinkError;
  counters: UplinkCounters;
  partitions: PartitionStatus[];
}

/** Typed events (STYLE.md §9) for the status page's live feed. */
export interface UplinkEvents {
  state: [state: UplinkState];
  alarm: [alarm: UplinkAlarm | undefined];
  delivered: [info: { partition: string; batchId: string; events: number; status: number }];
  rejected: [info: { partition: string; seq: number; code: string; reason: string }];
  retry: [info: { partition: string; batchId: string; attempts: number; delayMs: number; code: string; message: string; status?: number }];
}

export type UplinkListener<K extends keyof UplinkEvents> = (...args: UplinkEvents[K]) => void;

export interface Uplink {
  /** Starts sending every partition that has something to send; idempotent. */
  start(): void;
  /**
   * Starts no new sends; waits for requests in flight up to `deadlineMs` (a duration),
   * then aborts them. An aborted batch stays sealed and is resent after a restart.
   */
  stop(deadlineMs: number): Promise<void>;
  /** Clears an auth pause now instead of after authRetryMs (credentials fixed). */
  resume(): void;
  status(): UplinkStatus;
  on<K extends keyof UplinkEvents>(event: K, listener: UplinkListener<K>): this;
  off<K extends keyof UplinkEvents>(event: K, listener: UplinkListener<K>): this;
}
