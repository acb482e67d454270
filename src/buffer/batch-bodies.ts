/**
 * Request bodies of sealed batches: the events' stored bytes as one JSON array, the
 * same bytes on every send. A batch just sealed keeps the bytes read (or offered) to
 * seal it until its first send, so that send reads nothing again; the body is built
 * only then (a batch waiting ahead may be sealed again, and replaced, several times
 * before). Retries, and batches found at open, rebuild it from the journal.
 */
import { PlantgateError } from '../errors.js';
import type { JournalBytes } from './layout.js';
import type { SealedBatch } from './types.js';

/** Bodies kept for a first send, at most this many bytes in all. */
const FRESH_BODIES_MAX_BYTES = 8 * 1024 * 1024;

export class BatchBodies {
  private readonly fresh = new Map<string, { values: Buffer[]; bytes: number }>();
  private freshBytes = 0;

  constructor(private readonly journal: JournalBytes) {}

  /** A batch was sealed from these stored bytes: they wait for the first send, room permitting. */
  keep(batchId: string, values: Buffer[], bytes: number): void {
    if (this.freshBytes + bytes > FRESH_BODIES_MAX_BYTES) return;
    this.fresh.set(batchId, { values, bytes });
    this.freshBytes += bytes;
  }

  /** The body of a batch: the one kept since its seal (once), else read from the journal. */
  of(batch: SealedBatch): Buffer {
    const fresh = this.fresh.get(batch.id);
    if (fresh) {
      this.drop(batch.id);
      return bodyOf(fresh.values);
    }
    const values: Buffer[] = new Array(batch.seqs.length);
    for (let i = 0; i < batch.seqs.length; i++) {
      const bytes = this.journal.get([batch.partition, batch.seqs[i]!]);
      if (bytes === undefined) throw new PlantgateError('PG_ERR_BUFFER_COMMIT', `event ${batch.seqs[i]} of batch ${batch.id} is missing from the journal`);
      values[i] = bytes;
    }
    return bodyOf(values);
  }

  /** The batch was settled, split or replaced: what it kept is not needed. */
  drop(batchId: string): void {
    const kept = this.fresh.get(batchId);
    if (!kept) return;
    this.fresh.delete(batchId);
    this.freshBytes -= kept.bytes;
  }
}

/** The events' stored bytes as one JSON array, copied once. */
function bodyOf(values: Buffer[]): Buffer {
  let size = values.length + 1; // the brackets and the commas between
  for (const v of values) size += v.length;
  const body = Buffer.allocUnsafe(size);
  body[0] = 0x5b; // [
  let at = 1;
  for (let i = 0; i < values.length; i++) {
    if (i > 0) body[at++] = 0x2c; // ,
    at += values[i]!.copy(body, at);
  }
  body[at] = 0x5d; // ]
  return body;
}
