/**
 * Maps what the ERP answered (or failed to answer) to a delivery verdict, exactly
 * per DESIGN.md's uplink contract table. Outcome is three-valued (STYLE.md §6):
 * delivered, retry, rejected; `action` says what the sender does about it.
 *
 *   2xx                       delivered
 *   207 {"results":[...]}     per event: 2xx delivered, 4xx rejected, 5xx/missing retry
 *   409                       delivered (already seen: a retry of an accepted batch)
 *   400, 422, other 4xx       rejected: split to isolate; one event → dead-letter, body as reason
 *   413                       retry after a split; one event → rejected as too large
 *   401, 403                  retry after an auth pause (alarm), data kept
 *   408, 429, 5xx, timeout,
 *   connection error          retry with backoff, Retry-After honoured
 */
import type { ErrorCode } from '../errors.js';
import type { BatchOutcome, RejectedEvent, SealedBatch } from '../buffer/types.js';
import type { SendResult } from './http-sink.js';
import { parseRetryAfter } from './retry-policy.js';

/** Longest ERP text kept as a dead letter's reason. */
const MAX_REASON_CHARS = 4096;

export type Verdict =
  | { outcome: 'delivered'; status: number; alreadySeen: boolean }
  | { outcome: 'partial'; status: 207; results: Map<string, EventResult> }
  | { outcome: 'rejected'; action: 'split' | 'dead-letter'; status: number; code: ErrorCode; reason: string }
  | { outcome: 'retry'; action: 'backoff' | 'auth-pause' | 'split'; status?: number; code: ErrorCode; reason: string; retryAfterMs?: number };

export interface EventResult {
  status: number;
  error?: string;
}

/** `events` is the number of events in the batch: a batch of one cannot be split. */
export function classify(result: SendResult, events: number, now: number = Date.now()): Verdict {
  if (result.kind === 'error') {
    return { outcome: 'retry', action: 'backoff', code: result.code, reason: result.message };
  }
  const { status } = result;
  const text = () => bodyText(result.body);
  if (status === 207) {
    const results = parseResults(result.body);
    if (results) return { outcome: 'partial', status: 207, results };
    // A 207 we cannot read tells us nothing per event: try the whole batch again.
    return { outcome: 'retry', action: 'backoff', status, code: 'PG_ERR_UPLINK_TRANSIENT', reason: `HTTP 207 without a readable {"results":[...]} body: ${text()}` };
  }
  if (status >= 200 && status < 300) return { outcome: 'delivered', status, alreadySeen: false };
  if (status === 409) return { outcome: 'delivered', status, alreadySeen: true };
  if (status === 401 || status === 403) {
    return { outcome: 'retry', action: 'auth-pause', status, code: 'PG_ERR_UPLINK_AUTH', reason: `ERP refused the credentials (HTTP ${status}): ${text()}` };
  }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(result.retryAfter, now);
    return {
      outcome: 'retry',
      action: 'backoff',
      status,
      code: 'PG_ERR_UPLINK_TRANSIENT',
      reason: `ERP answered HTTP ${status}${text() ? `: ${text()}` : ''}`,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  if (status === 413) {
    if (events > 1) return { outcome: 'retry', action: 'split', status, code: 'PG_ERR_UPLINK_REJECTED', reason: 'ERP answered 413: batch too large' };
    return { outcome: 'rejected', action: 'dead-letter', status, code: 'PG_ERR_UPLINK_REJECTED', reason: `event too large for the ERP (HTTP 413)${text() ? `: ${text()}` : ''}` };
  }
  // 400, 422 and any other 4xx (or an unexpected 1xx/3xx): a business rejection.
  const reason = `HTTP ${status}${text() ? `: ${text()}` : ''}`;
  return { outcome: 'rejected', action: events > 1 ? 'split' : 'dead-letter', status, code: 'PG_ERR_UPLINK_REJECTED', reason };
}

/**
 * Turns a 207's per-event results into a settle outcome. `events` are the batch's
 * events (ids and sequences), in batch order; an event without a result is retried.
 */
export function partialOutcome(batch: SealedBatch, events: Record<string, unknown>[], results: Map<string, EventResult>): BatchOutcome {
  const delivered: number[] = [];
  const rejected: RejectedEvent[] = [];
  const retry: number[] = [];
  events.forEach((ev, i) => {
    const seq = ev['sequence'] !== undefined ? Number(ev['sequence']) : batch.seqs[i]!;
    const r = results.get(String(ev['id']));
    if (!r || r.status >= 500 || r.status < 200) retry.push(seq);
    else if (r.status < 300 || r.status === 409) delivered.push(seq);
    else rejected.push({ seq, code: 'PG_ERR_UPLINK_REJECTED', reason: truncate(`HTTP ${r.status}${r.error ? `: ${r.error}` : ''}`) });
  });
  return { delivered, rejected, retry };
}

function parseResults(body: Buffer): Map<string, EventResult> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const list = (parsed as { results?: unknown } | null)?.results;
  if (!Array.isArray(list)) return undefined;
  const out = new Map<string, EventResult>();
  for (const r of list) {
    if (!r || typeof r !== 'object') continue;
    const { id, status, error } = r as { id?: unknown; status?: unknown; error?: unknown };
    if (typeof id !== 'string' || typeof status !== 'number') continue;
    out.set(id, error === undefined ? { status } : { status, error: typeof error === 'string' ? error : JSON.stringify(error) });
  }
  return out;
}

function bodyText(body: Buffer): string {
  return truncate(body.toString('utf8').trim());
}

function truncate(s: string): string {
  return s.length > MAX_REASON_CHARS ? `${s.slice(0, MAX_REASON_CHARS)}…` : s;
}
