/**
 * When each partition sends: the uplink's scheduler. uplink.ts says what sending
 * one batch does; this decides when a partition's next worker runs.
 *
 *  - A partition is held by at most one worker: that keeps its batches in order.
 *  - At most `concurrency` partitions have a worker. Ready partitions wait in one
 *    FIFO; after each batch a partition goes to its tail, so a busy partition cannot
 *    starve the others (round robin).
 *  - Waiting (linger, backoff, auth pause) holds no concurrency slot.
 *  - Idle partitions are woken by the outbox's appends, not by polling.
 */
import { newPartition, type Partition } from './partition.js';

/** How long an accepted batch waits for a next one to be settled with (uplink.ts). */
const SETTLE_IDLE_MS = 20;

export interface SchedulerOptions {
  concurrency: number;
  lingerMs: number;
  maxBatchEvents: number;
  /** One batch of one partition; the partition stays 'sending' until it resolves. */
  work: (p: Partition) => Promise<void>;
}

export class PartitionScheduler {
  readonly parts = new Map<string, Partition>();
  /** Workers running. */
  readonly works = new Set<Promise<void>>();
  running = false;
  /** No new worker starts (the ERP refused the credentials). */
  paused = false;
  private readonly ready: Partition[] = [];

  constructor(private readonly o: SchedulerOptions) {}

  partition(name: string): Partition {
    let p = this.parts.get(name);
    if (!p) this.parts.set(name, (p = newPartition(name)));
    return p;
  }

  enqueue(p: Partition): void {
    if (!this.running || p.state === 'queued' || p.state === 'sending') return;
    this.clearTimers(p);
    p.nextRetryAt = undefined;
    p.state = 'queued';
    this.ready.push(p);
    this.pump();
  }

  /** Queues a partition ahead of all others: the one to retry first when a pause ends. */
  enqueueFirst(p: Partition): void {
    p.state = 'queued';
    this.ready.unshift(p);
  }

  wait(p: Partition, ms: number, lingering: boolean): void {
    this.clearTimers(p);
    p.state = 'waiting';
    p.lingering = lingering;
    p.timer = setTimeout(() => {
      p.timer = undefined;
      this.enqueue(p);
    }, ms);
  }

  /** Events were appended to a partition's outbox. */
  wake(name: string, count: number): void {
    const p = this.partition(name);
    p.appended = true;
    p.appendedEvents += count;
    if (p.pendingSince === undefined) p.pendingSince = Date.now();
    if (p.state === 'idle') this.schedule(p);
    else if (p.state === 'waiting' && p.lingering && p.appendedEvents >= this.o.maxBatchEvents) this.enqueue(p);
  }

  pump(): void {
    while (this.running && !this.paused && this.works.size < this.o.concurrency && this.ready.length > 0) {
      const p = this.ready.shift()!;
      p.state = 'sending';
      const w: Promise<void> = this.o.work(p).finally(() => {
        this.works.delete(w);
        if (p.state === 'sending') this.schedule(p);
        this.pump();
      });
      this.works.add(w);
    }
  }

  /** No new work: timers cleared, the queue emptied; workers running finish on their own. */
  stop(): void {
    this.running = false;
    this.paused = false;
    for (const p of this.parts.values()) this.clearTimers(p);
    this.ready.length = 0;
  }

  /**
   * After a worker released the partition (or it woke up): send now, linger, or go
   * idle. Decided from flags, not outbox.unsentCount(): counting a large backlog
   * per batch would cost more than sending it.
   */
  private schedule(p: Partition): void {
    p.state = 'idle';
    if (!this.running) return;
    if (p.current || p.sealedAhead || p.lastBatchFull) return this.enqueue(p);
    if (!p.appended) {
      if (p.accepted && !p.settleTimer) p.settleTimer = setTimeout(() => this.enqueue(p), SETTLE_IDLE_MS);
      return;
    }
    if (this.o.lingerMs === 0) return this.enqueue(p);
    const now = Date.now();
    const left = (p.pendingSince ?? now) + this.o.lingerMs - now;
    if (left <= 0) this.enqueue(p);
    else this.wait(p, left, true);
  }

  private clearTimers(p: Partition): void {
    if (p.timer) clearTimeout(p.timer);
    if (p.settleTimer) clearTimeout(p.settleTimer);
    p.timer = undefined;
    p.settleTimer = undefined;
    p.lingering = false;
  }
}
