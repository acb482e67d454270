/**
 * Commit with retry: while the buffer refuses (full, commit error) the same items
 * are offered again with capped exponential backoff, until they are accepted or
 * the source stops. The caller acknowledges (handshake) only on acceptance.
 */
import type { CommitItem, CommitOutcome, IngestSink } from '../source.js';

export interface RetryControl {
  /** True once the source is stopping: no further attempt is made. */
  stopped(): boolean;
  maxDelayMs: number;
  /** Called for every refusal, with the attempt number (1-based). */
  onRefused(err: unknown, attempt: number): void;
}

const FIRST_DELAY_MS = 50;

/** Resolves with the outcomes, or undefined when the source stopped before the buffer accepted. */
export async function commitUntilAccepted(sink: IngestSink, items: CommitItem[], ctl: RetryControl): Promise<CommitOutcome[] | undefined> {
  let delay = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    if (ctl.stopped()) return undefined;
    try {
      return await sink.commit(items);
    } catch (err) {
      ctl.onRefused(err, attempt);
    }
    await sleepUnless(delay, ctl.stopped);
    delay = Math.min(delay * 2, ctl.maxDelayMs);
  }
}

/** Sleeps up to `ms`, waking early (checked every 50 ms) when `stop()` turns true. */
export async function sleepUnless(ms: number, stop: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!stop() && Date.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(50, end - Date.now())));
  }
}
