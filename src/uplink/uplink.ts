/**
 * The uplink: drains the buffer's outbox to the ERP, partition by partition.
 *
 * Invariants:
 *  - Within a partition, batch n+1 is never sent before the ERP's answer to batch n
 *    is applied: a partition is held by at most one worker, and a worker asks for the
 *    next batch only after settling the current one, or (below) once it was accepted.
 *  - A batch the ERP accepted is settled in the transaction that seals the next
 *    one, or alone after 20 ms without one (scheduler.ts): a steady flow costs one
 *    write per batch, not two. Until then it stays sealed; a crash resends it under the
 *    same key, which the ERP recognises.
 *  - While a partition's worker holds it (a batch out, or being sealed, settled or
 *    sent), events committed for it are sealed as its next batch in their own commit's
 *    transaction (outbox.sealAhead), chained behind a seal still being written. When
 *    the ERP accepts the batch out, the next one goes at once, while the accepted one's
 *    settle flushes: its events wait for one write, not two. The settle ends before the
 *    partition's next buffer operation; a crash before it resends the accepted batch
 *    under its key, which the ERP recognises.
 *  - When each partition's worker runs (concurrency, round robin, linger, waking
 *    idle partitions) is scheduler.ts's part.
 *  - A retry resends the SAME sealed batch (same id, same bytes). Halves of a
 *    split go out in order; a 207's replacement batch goes out next.
 *  - Nothing is removed from the buffer except through `settle`; stopping
 *    mid-request leaves the batch sealed, resent after a restart.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { BatchLimits, Outbox, SealedBatch } from '../buffer/types.js';
import type { UplinkConfig } from '../config/schema.js';
import { describeError, isPlantgateError, type ErrorCode } from '../errors.js';
import { classify, partialOutcome, type Verdict } from './classify.js';
import { createHttpSink, type HttpSink } from './http-sink.js';
import { partitionStatus, type Partition } from './partition.js';
import { retryDelay, retryPolicy } from './retry-policy.js';
import { PartitionScheduler } from './scheduler.js';
import type { Uplink, UplinkAlarm, UplinkCounters, UplinkError, UplinkEvents, UplinkListener, UplinkState, UplinkStatus } from './types.js';

export type * from './types.js';

export interface UplinkOptions {
  config: UplinkConfig;
  outbox: Outbox;
  logger: Logger;
  /** Injected for tests; default: an undici sink built from config. */
  sink?: HttpSink;
}

export function createUplink(opts: UplinkOptions): Uplink {
  const { config, outbox } = opts;
  const log = opts.logger.child({ component: 'uplink' });
  const policy = retryPolicy(config.retry);
  const limits: BatchLimits = { maxEvents: config.maxBatchEvents, maxBytes: config.maxBatchBytes, sealPartialAhead: config.lingerMs === 0 };
  const emitter = new EventEmitter();
  const counters: UplinkCounters = { requests: 0, batchesDelivered: 0, eventsDelivered: 0, eventsRejected: 0, retries: 0, splits: 0 };
  const sched = new PartitionScheduler({ concurrency: config.concurrency, lingerMs: config.lingerMs, maxBatchEvents: config.maxBatchEvents, work });
  const stopAc = new AbortController();

  let state: UplinkState = config.enabled ? 'stopped' : 'disabled';
  let started = false;
  let alarm: UplinkAlarm | undefined;
  let authTimer: NodeJS.Timeout | undefined;
  let lastSuccessAt: string | undefined;
  let lastError: UplinkError | undefined;
  let unsubscribe: (() => void) | undefined;
  let sink: HttpSink | undefined = opts.sink;

  function setState(next: UplinkState, why: string, level: 'info' | 'warn' | 'error' = 'info', extra: Record<string, unknown> = {}): void {
    if (state === next) return;
    state = next;
    log[level]({ state: next, ...extra }, `uplink ${next}: ${why}`);
    emitter.emit('state', next);
  }

  /** Runs inside the buffer's commit path: it must never throw there. */
  function onAppend(name: string, count: number): void {
    try {
      sched.wake(name, count);
      // A healthy partition its worker holds (a batch out, or being sealed, settled or sent): the next batch is sealed in this commit, ready to follow.
      const p = sched.parts.get(name);
      if (config.lingerMs === 0 && p?.state === 'sending' && p.attempts === 0) outbox.sealAhead(name, limits);
    } catch (err) {
      log.error({ err: describeError(err), partition: name }, 'could not wake the partition; it is picked up at the next append or restart');
    }
  }

  /** One batch of one partition: send, classify, settle or arrange the retry. */
  async function work(p: Partition): Promise<void> {
    try {
      // Only when a settle is flushing: an await here would end the turn in which an idle
      // partition seals the events just offered into their own commit's transaction.
      if (!p.current && p.settling) await settlingEnded(p);
      // Whatever is sealed now goes out next: seal it in the accepted batch's settle.
      if (p.accepted) await settleAccepted(p, true);
      let batch = p.current;
      if (!batch) {
        // Events appended from here on are not in this batch; they wake the next one.
        p.appended = false;
        p.appendedEvents = 0;
        p.pendingSince = undefined;
        batch = await outbox.nextBatch(p.name, limits);
        if (!batch) {
          // Only an empty answer proves no sealed batch is left (a split leaves several).
          p.sealedAhead = false;
          p.lastBatchFull = false;
          return;
        }
        p.lastBatchFull = batch.seqs.length >= limits.maxEvents || batch.bytes >= limits.maxBytes / 2;
        p.current = batch;
        // A batch sealed ahead (inside the last settle) leaves out what arrived since; those events still need a wake.
        if (outbox.hasUnsent(p.name)) {
          p.appended = true;
          p.pendingSince ??= Date.now();
        }
      }
      if (p.ready) {
        const ready = p.ready;
        p.ready = undefined;
        try {
          await ready;
        } catch (err) {
          p.current = undefined; // its commit failed: the batch was never stored
          throw err;
        }
      }
      if (!sched.running) return;
      const body = outbox.body(batch);
      p.inFlight = { batchId: batch.id, events: batch.seqs.length, attempts: p.attempts + 1, since: new Date().toISOString() };
      counters.requests++;
      const result = await sink!.send(body, batch.id, stopAc.signal);
      p.inFlight = undefined;
      if (result.kind === 'error' && result.aborted) return; // shutting down: the batch stays sealed
      await settlingEnded(p);
      await apply(p, batch, classify(result, batch.seqs.length));
    } catch (err) {
      p.inFlight = undefined;
      if (!sched.running) return;
      // The buffer failed (commit error, closed): back off like a transient error.
      const code: ErrorCode = isPlantgateError(err) ? err.code : 'PG_ERR_UPLINK_TRANSIENT';
      backoff(p, p.current?.id ?? '-', { code, reason: `buffer operation failed: ${describeError(err)}` });
    }
  }

  async function apply(p: Partition, batch: SealedBatch, v: Verdict): Promise<void> {
    const n = batch.seqs.length;
    switch (v.outcome) {
      case 'delivered': {
        const ahead = config.lingerMs === 0 ? outbox.takeAhead(batch) : undefined;
        if (ahead) {
          // Its successor is sealed (or being sealed) by a commit: it goes now, while this settle flushes.
          const settling = outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] }).then(() => undefined);
          settling.catch(() => undefined); // awaited before the partition's next buffer operation
          p.settling = settling;
          delivered(p, batch, n, v.status);
          p.current = ahead.batch;
          p.ready = ahead.durable;
          if (v.alreadySeen) log.debug({ partition: p.name, batchId: batch.id }, 'ERP had already accepted this batch (409)');
          return;
        }
        if (config.lingerMs === 0 && outbox.hasUnsent(p.name)) {
          // Events wait (maybe not yet announced): settle and seal them in one write, and send at once.
          await outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] }, true);
          p.sealedAhead = true;
        } else {
          p.accepted = batch;
        }
        delivered(p, batch, n, v.status);
        if (v.alreadySeen) log.debug({ partition: p.name, batchId: batch.id }, 'ERP had already accepted this batch (409)');
        return;
      }
      case 'partial': {
        const outcome = partialOutcome(batch, outbox.events(batch), v.results);
        const replacement = await outbox.settle(batch, outcome);
        p.current = replacement;
        rejectedEvents(p, outcome.rejected);
        counters.eventsDelivered += outcome.delivered.length;
        if (outcome.delivered.length > 0) lastSuccessAt = new Date().toISOString();
        if (replacement) {
          backoff(p, replacement.id, { code: 'PG_ERR_UPLINK_TRANSIENT', status: 207, reason: `ERP asked to retry ${outcome.retry.length} event(s) of batch ${batch.id}` });
        } else {
          counters.batchesDelivered++;
          recovered(p);
        }
        return;
      }
      case 'rejected':
        if (v.action === 'split') return split(p, batch, v.status);
        await outbox.settle(batch, { delivered: [], rejected: batch.seqs.map((seq) => ({ seq, code: v.code, reason: v.reason })), retry: [] });
        p.current = undefined;
        rejectedEvents(p, batch.seqs.map((seq) => ({ seq, code: v.code, reason: v.reason })));
        recovered(p);
        return;
      case 'retry':
        if (v.action === 'split') return split(p, batch, v.status ?? 413);
        if (v.action === 'auth-pause') return authPause(p, batch, v.reason, v.status);
        backoff(p, batch.id, { code: v.code, reason: v.reason, ...(v.status !== undefined ? { status: v.status } : {}), ...(v.retryAfterMs !== undefined ? { retryAfterMs: v.retryAfterMs } : {}) });
        return;
    }
  }

  /** The settle left behind when a batch sealed ahead went out has ended (or failed: thrown here). */
  async function settlingEnded(p: Partition): Promise<void> {
    const settling = p.settling;
    p.settling = undefined;
    await settling;
  }

  async function settleAccepted(p: Partition, sendingNext: boolean): Promise<void> {
    const batch = p.accepted!;
    await outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] }, sendingNext);
    p.accepted = undefined;
  }

  function delivered(p: Partition, batch: SealedBatch, n: number, status: number): void {
    p.current = undefined;
    counters.batchesDelivered++;
    counters.eventsDelivered += n;
    lastSuccessAt = new Date().toISOString();
    recovered(p);
    if (emitter.listenerCount('delivered') > 0) emitter.emit('delivered', { partition: p.name, batchId: batch.id, events: n, status });
  }

  function recovered(p: Partition): void {
    if (p.attempts > 0) log.info({ partition: p.name, attempts: p.attempts }, 'partition delivering again');
    p.attempts = 0;
    p.lastError = undefined;
    // A request sent before the pause may still succeed; the alarm stays until the pause ends.
    if (alarm && !sched.paused) {
      log.info({ code: alarm.code }, 'uplink alarm cleared: the ERP accepts requests again');
      alarm = undefined;
      emitter.emit('alarm', undefined);
    }
  }

  function rejectedEvents(p: Partition, list: { seq: number; code: string; reason: string }[]): void {
    counters.eventsRejected += list.length;
    for (const r of list) {
      log.warn({ code: r.code, partition: p.name, seq: r.seq, reason: r.reason }, 'ERP rejected an event; moved to the dead letters');
      emitter.emit('rejected', { partition: p.name, ...r });
    }
  }

  async function split(p: Partition, batch: SealedBatch, status: number): Promise<void> {
    const [first] = await outbox.split(batch);
    counters.splits++;
    p.current = first;
    p.sealedAhead = true;
    log.debug({ partition: p.name, batchId: batch.id, status, events: batch.seqs.length }, 'split batch to isolate the refused part');
  }

  function noteError(p: Partition, code: string, message: string, status?: number): UplinkError {
    const e: UplinkError = { code, message, at: new Date().toISOString(), ...(status !== undefined ? { status } : {}) };
    p.lastError = e;
    lastError = e;
    return e;
  }

  function backoff(p: Partition, batchId: string, e: { code: ErrorCode; reason: string; status?: number; retryAfterMs?: number }): void {
    noteError(p, e.code, e.reason, e.status);
    const delayMs = retryDelay(policy, p.attempts, e.retryAfterMs);
    p.attempts++;
    counters.retries++;
    // The first failure of a streak is worth a warning; the rest would flood the journal.
    const level = p.attempts === 1 ? 'warn' : 'debug';
    log[level]({ code: e.code, partition: p.name, batchId, status: e.status, attempts: p.attempts, delayMs }, `delivery failed, retrying: ${e.reason}`);
    emitter.emit('retry', { partition: p.name, batchId, attempts: p.attempts, delayMs, code: e.code, message: e.reason, ...(e.status !== undefined ? { status: e.status } : {}) });
    if (!sched.running) return;
    p.nextRetryAt = Date.now() + delayMs;
    sched.wait(p, delayMs, false);
  }

  function authPause(p: Partition, batch: SealedBatch, reason: string, status?: number): void {
    noteError(p, 'PG_ERR_UPLINK_AUTH', reason, status);
    p.attempts++;
    counters.retries++;
    if (!sched.running) return;
    // Retried first when the pause ends; the batch stays the same.
    sched.enqueueFirst(p);
    if (sched.paused) return;
    sched.paused = true;
    const since = new Date().toISOString();
    if (!alarm) {
      alarm = { code: 'PG_ERR_UPLINK_AUTH', message: `${reason}; check uplink.bearerToken / uplink.tls; data is kept`, since };
      emitter.emit('alarm', alarm);
    }
    p.nextRetryAt = Date.now() + policy.authRetryMs;
    authTimer = setTimeout(() => unpause('retrying after authRetryMs'), policy.authRetryMs);
    setState('paused', `ERP refused the credentials; retrying in ${policy.authRetryMs} ms or on resume`, 'error', { code: 'PG_ERR_UPLINK_AUTH', partition: p.name, batchId: batch.id, status });
  }

  function unpause(why: string): void {
    if (authTimer) clearTimeout(authTimer);
    authTimer = undefined;
    if (!sched.paused) return;
    sched.paused = false;
    for (const p of sched.parts.values()) if (p.state === 'queued') p.nextRetryAt = undefined;
    setState('running', why);
    sched.pump();
  }

  /** For the status page only: it may ask after the buffer closed. */
  function unsent(name: string): number {
    try {
      return outbox.unsentCount(name);
    } catch {
      return 0;
    }
  }

  return {
    start() {
      if (!config.enabled || started) return;
      started = true;
      sink ??= createHttpSink(config);
      sched.running = true;
      unsubscribe = outbox.onAppend(onAppend);
      setState('running', `sending to ${new URL(config.url).origin}`, 'info', { concurrency: config.concurrency, maxBatchEvents: config.maxBatchEvents, lingerMs: config.lingerMs });
      // Sealed batches left by the last run go first, without lingering.
      for (const name of outbox.partitions()) {
        const p = sched.partition(name);
        p.sealedAhead = true;
        sched.enqueue(p);
      }
    },

    async stop(deadlineMs) {
      if (!sched.running) {
        if (state !== 'disabled') setState('stopped', 'stop requested');
        return;
      }
      sched.stop();
      unsubscribe?.();
      if (authTimer) clearTimeout(authTimer);
      const works = sched.works;
      if (works.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), deadlineMs)));
        const done = Promise.all([...works]).then(() => false);
        if (await Promise.race([done, expired])) {
          log.warn({ inFlight: works.size, deadlineMs }, 'aborting requests still in flight; their batches stay sealed and are resent on restart');
          stopAc.abort();
          await done;
        }
        clearTimeout(timer);
      }
      // What the ERP accepted is settled before the buffer closes: a settle still flushing, or one not yet made.
      const settleAll = async (p: Partition): Promise<void> => {
        await settlingEnded(p);
        if (p.accepted) await settleAccepted(p, false);
      };
      await Promise.all([...sched.parts.values()].map((p) => settleAll(p).catch((err: unknown) => log.warn({ err: describeError(err), partition: p.name, batchId: p.accepted?.id }, 'could not settle an accepted batch; it is resent after a restart and the ERP recognises its key'))));
      await sink?.destroy().catch(() => undefined);
      for (const p of sched.parts.values()) p.state = 'idle';
      setState('stopped', 'stop requested');
    },

    resume() {
      if (sched.paused && sched.running) unpause('resumed by operator');
    },

    status(): UplinkStatus {
      const names = new Set<string>(sched.parts.keys());
      if (sched.running || started) for (const n of outbox.partitions()) names.add(n);
      const partitions = [...names].sort().map((name) => partitionStatus(name, unsent(name), sched.parts.get(name)));
      return {
        state,
        ...(alarm ? { alarm: { ...alarm } } : {}),
        ...(lastSuccessAt ? { lastSuccessAt } : {}),
        ...(lastError ? { lastError: { ...lastError } } : {}),
        counters: { ...counters },
        partitions,
      };
    },

    on<K extends keyof UplinkEvents>(event: K, listener: UplinkListener<K>) {
      emitter.on(event, listener as (...args: unknown[]) => void);
      return this;
    },

    off<K extends keyof UplinkEvents>(event: K, listener: UplinkListener<K>) {
      emitter.off(event, listener as (...args: unknown[]) => void);
      return this;
    },
  };
}
