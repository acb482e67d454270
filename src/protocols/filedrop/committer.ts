/**
 * Commits a file's drafts in chunks, each recorded as the range of file positions it
 * covers (ingest.ts's header says why, and what a failure leaves).
 */
import type { EventDraft } from '../../model/event.js';
import type { CommitItem, IngestSink } from '../source.js';

export interface PositionedDraft {
  draft: EventDraft;
  /** The record's position in the file: ascending, gaps where records are bad. */
  position: number;
}

/** A held read resumed past a record that was never committed while later ones were (a chunk failed). */
export class GapInHold extends Error {}

/**
 * Chunks of drafts, up to `maxInFlight` commit calls at once, each recorded as the
 * range of file positions it covers; drafts inside a range committed before (an
 * earlier read of the same bytes) are counted as duplicates and not sent. The
 * first failure stops the file.
 */
export class Committer {
  committed = 0;
  duplicates = 0;
  private buf: CommitItem[] = [];
  private from = 0;
  private to = 0;
  private inflight: Promise<void>[] = [];
  private failure: unknown;
  /** Chunks sent so far; the first of them that failed and the last that committed. */
  private chunks = 0;
  private firstFailed = Infinity;
  private lastCommitted = -1;
  /** Committed ranges, ascending; `next` is the first that may still cover a coming position. */
  private readonly done: [number, number][];
  private next = 0;

  constructor(
    private readonly sink: IngestSink,
    private readonly stream: string,
    private readonly chunk: number,
    private readonly maxInFlight: number,
    /** Commits held from the uplink (CommitOptions.hold) until the file is released. */
    private readonly hold?: { file: string },
  ) {
    this.done = sink.committedRanges(stream);
  }

  /** Queues drafts (ascending positions); sends each full chunk, waiting only while `maxInFlight` commits are open. */
  async add(drafts: PositionedDraft[]): Promise<void> {
    for (const { draft, position } of drafts) {
      if (this.covered(position)) {
        this.duplicates++;
        continue;
      }
      // A range past this record was committed, this one was not: held, it would be sent out of order.
      if (this.hold && this.next < this.done.length) throw new GapInHold(`record ${position} of ${this.stream} was never committed, later ones were`);
      if (this.buf.length === 0) this.from = position;
      this.buf.push({ draft });
      this.to = position;
      if (this.buf.length >= this.chunk) await this.send();
    }
  }

  /** A chunk failed while a later one committed: the committed events skip some of the file's. */
  get gapped(): boolean {
    return this.lastCommitted > this.firstFailed;
  }

  private covered(position: number): boolean {
    while (this.next < this.done.length && this.done[this.next]![1] < position) this.next++;
    const r = this.done[this.next];
    return r !== undefined && r[0] <= position;
  }

  async flush(): Promise<void> {
    if (this.buf.length) await this.send();
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for commits in flight, so nothing is committed after stop() returns. */
  async settle(): Promise<void> {
    await Promise.all(this.inflight);
    this.inflight = [];
  }

  private async send(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const items = this.buf;
    this.buf = [];
    const chunk = this.chunks++;
    this.inflight.push(
      this.sink.commit(items, { range: { stream: this.stream, from: this.from, to: this.to }, ...(this.hold ? { hold: this.hold } : {}) }).then(
        (outcomes) => {
          this.lastCommitted = Math.max(this.lastCommitted, chunk);
          for (const r of outcomes) {
            if (r.duplicate) this.duplicates++;
            else this.committed++;
          }
        },
        (err: unknown) => {
          this.firstFailed = Math.min(this.firstFailed, chunk);
          this.failure ??= err;
        },
      ),
    );
    if (this.inflight.length >= this.maxInFlight) await this.inflight.shift();
    if (this.failure !== undefined) {
      await this.settle();
      throw this.failure;
    }
  }
}
