/**
 * Reads one complete file into the buffer, exactly once.
 *
 * Invariants:
 *  - Nothing of a file is committed before the whole file was read and checked
 *    (pass 1: hash + parse + map, streaming). Under badRecords: rejectFile a file
 *    with any bad record therefore never reaches the buffer.
 *  - Event ids are `fd:<connector>:<sha256/32>:<position>`: a re-read after a crash
 *    or a second drop of the same bytes commits nothing new (the buffer answers
 *    `duplicate`), so archiving after the last commit is safe to repeat.
 *  - Small files keep their drafts from pass 1 in memory; for large ones pass 1
 *    spills them to `<stateDir>/spill.jsonl` (bounded memory, and cheaper than
 *    parsing the file again). Drafts are committed in chunks, several in flight,
 *    never one record at a time (LMDB groups the puts of one event-loop turn).
 *  - The file moves only after every chunk resolved. A refused commit or an IO
 *    error leaves it in the inbox; the caller retries later.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { IngestSink, CommitItem } from '../source.js';
import type { EventDraft } from '../../model/event.js';
import { finishDraft, type FileInfo, type MapResult, type PendingDraft } from './mapping.js';
import { archiveFile, rejectFile, type ErrorReport } from './moves.js';
import { FileParseError, describeProblem, type RecordProblem, type RecordReader, type SourceRecord } from './records.js';

/** Drafts kept in memory from pass 1; above this they are spilled to disk (bounded memory). */
export const KEEP_DRAFTS_MAX = 5000;

export interface IngestOptions {
  connector: string;
  reader: RecordReader;
  map: (rec: SourceRecord, file: FileInfo) => MapResult;
  sink: IngestSink;
  signal: AbortSignal;
  badRecords: 'rejectFile' | 'acceptGood';
  archiveDir: string;
  errorDir: string;
  chunkRecords: number;
  maxChunksInFlight: number;
  maxReportedProblems: number;
  /** The source's own state folder (spill files). */
  stateDir: string;
}

export type IngestOutcome =
  | { kind: 'archived'; dest: string; records: number; committed: number; duplicates: number; bad: number; reportPath?: string }
  | { kind: 'rejected'; reportPath: string; reason: string; bad: number }
  /** The file changed while it was read: it is not complete yet. */
  | { kind: 'changed' }
  | { kind: 'stopped' };

export async function ingestFile(path: string, name: string, o: IngestOptions): Promise<IngestOutcome> {
  const st0 = await stat(path);
  const file: FileInfo = { name, mtime: st0.mtime.toISOString() };

  // Pass 1: hash, parse, map, keep small files' drafts.
  const hash = createHash('sha256');
  let kept: PendingDraft[] | undefined = [];
  const spillPath = join(o.stateDir, 'spill.jsonl');
  let spill: WriteStream | undefined;
  let total = 0;
  let good = 0;
  let bad = 0;
  const problems: RecordProblem[] = [];
  try {
    for await (const item of o.reader(hashed(path, hash))) {
      if (o.signal.aborted) return { kind: 'stopped' };
      total++;
      const r = item.record ? o.map(item.record, file) : { ok: false as const, problem: item.problem };
      if (!r.ok) {
        bad++;
        if (problems.length < o.maxReportedProblems) problems.push(r.problem);
        continue;
      }
      good++;
      if (kept && kept.length < KEEP_DRAFTS_MAX) kept.push(r.pending);
      else {
        if (!spill) {
          await mkdir(o.stateDir, { recursive: true });
          spill = createWriteStream(spillPath);
          for (const k of kept ?? []) spill.write(`${JSON.stringify(k)}\n`);
          kept = undefined;
        }
        if (!spill.write(`${JSON.stringify(r.pending)}\n`)) await once(spill, 'drain');
      }
    }
    if (spill) await new Promise<void>((res, rej) => spill!.end((err?: Error | null) => (err ? rej(err) : res())));
  } catch (err) {
    spill?.destroy();
    if (!(err instanceof FileParseError)) throw err;
    if (!(await unchanged(path, st0))) return { kind: 'changed' };
    return reject(path, o, report(name, o, undefined, 'rejected', [err.problem], total, 1, 0, `the file cannot be read: ${describeProblem(err.problem)}`));
  }
  const sha256 = hash.digest('hex');
  if (!(await unchanged(path, st0))) return { kind: 'changed' };

  if (bad > 0 && (o.badRecords === 'rejectFile' || good === 0)) {
    const why =
      good === 0
        ? `none of its ${total} record(s) can be used`
        : `${bad} of ${total} record(s) are bad and badRecords is rejectFile, so none of the file was sent (WMS files are transactions)`;
    return reject(path, o, report(name, o, sha256, 'rejected', problems, total, bad, 0, `${why}. Fix the records listed below in the WMS and send the file again.`));
  }

  // Commit: from memory, or by reading the file again.
  const committer = new Committer(o.sink, o.chunkRecords, o.maxChunksInFlight);
  if (kept) {
    for (const p of kept) {
      if (o.signal.aborted) return committer.abandon();
      await committer.push(finishDraft(p, o.connector, file, sha256));
    }
  } else {
    const lines = createInterface({ input: createReadStream(spillPath), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (o.signal.aborted) return await committer.abandon();
        await committer.push(finishDraft(JSON.parse(line) as PendingDraft, o.connector, file, sha256));
      }
    } finally {
      lines.close();
    }
  }
  await committer.flush();
  if (!kept) await rm(spillPath, { force: true });
  // Ids carry the hash of the bytes read; if the sender rewrote the file meanwhile, read it again.
  if (!(await unchanged(path, st0))) return { kind: 'changed' };

  const dest = await archiveFile(path, o.archiveDir);
  const outcome: IngestOutcome = { kind: 'archived', dest, records: total, committed: committer.committed, duplicates: committer.duplicates, bad };
  if (bad > 0) {
    const summary = `${bad} of ${total} record(s) are bad and were not sent; the other ${good} were (badRecords: acceptGood). The file is archived at ${dest}.`;
    outcome.reportPath = await rejectFile(undefined, o.errorDir, report(name, o, sha256, 'partial', problems, total, bad, good, summary));
  }
  return outcome;
}

async function* hashed(path: string, hash: Hash): AsyncIterable<Buffer> {
  for await (const chunk of createReadStream(path, { highWaterMark: 256 * 1024 })) {
    hash.update(chunk as Buffer);
    yield chunk as Buffer;
  }
}

async function unchanged(path: string, st0: { size: number; mtimeMs: number }): Promise<boolean> {
  const st = await stat(path);
  return st.size === st0.size && st.mtimeMs === st0.mtimeMs;
}

function report(
  name: string,
  o: IngestOptions,
  sha256: string | undefined,
  outcome: ErrorReport['outcome'],
  problems: RecordProblem[],
  total: number,
  bad: number,
  committed: number,
  summary: string,
): ErrorReport {
  return {
    file: name,
    inbox: o.connector,
    ...(sha256 ? { sha256 } : {}),
    at: new Date().toISOString(),
    outcome,
    summary,
    records: { total, bad, committed },
    problems,
    truncated: bad > problems.length,
  };
}

async function reject(path: string, o: IngestOptions, r: ErrorReport): Promise<IngestOutcome> {
  const reportPath = await rejectFile(path, o.errorDir, r);
  return { kind: 'rejected', reportPath, reason: r.summary, bad: r.records.bad };
}

/** Chunks of drafts, up to `maxInFlight` commit calls at once; the first failure stops the file. */
class Committer {
  committed = 0;
  duplicates = 0;
  private buf: CommitItem[] = [];
  private inflight: Promise<void>[] = [];
  private failure: unknown;

  constructor(
    private readonly sink: IngestSink,
    private readonly chunk: number,
    private readonly maxInFlight: number,
  ) {}

  async push(draft: EventDraft): Promise<void> {
    this.buf.push({ draft });
    if (this.buf.length >= this.chunk) await this.send();
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

  async abandon(): Promise<IngestOutcome> {
    await this.settle();
    return { kind: 'stopped' };
  }

  private async send(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const items = this.buf;
    this.buf = [];
    this.inflight.push(
      this.sink.commit(items).then(
        (outcomes) => {
          for (const r of outcomes) {
            if (r.duplicate) this.duplicates++;
            else this.committed++;
          }
        },
        (err: unknown) => {
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
