/**
 * Reads one complete file into the buffer, exactly once.
 *
 * Invariants:
 *  - Nothing of a file can be sent before the whole file was read and checked. A
 *    small file's drafts wait in memory until then. A larger one is committed while
 *    it is read, under a hold (buffer/holds.ts): the uplink seals none of it until
 *    the hold is released after the last record. A bad record under rejectFile, a
 *    file that cannot be parsed or a file rewritten meanwhile discards what was held.
 *    So a file is parsed once, and a rejected file never reaches the ERP.
 *  - Event ids are `fd:<connector>:<sha256/32>:<position>`, and every chunk is
 *    committed as the range of positions it covers of the stream
 *    `fd:<connector>:<sha256/32>`, recorded in the same transaction. A re-read after
 *    a crash or a second drop of the same bytes skips every position inside a
 *    recorded range (counted as duplicates) and commits nothing twice, so archiving
 *    after the last commit is safe to repeat. A re-read after a crash mid-file
 *    resumes under the file's hold. The hash is taken first, block by block, so
 *    that the reading pass already builds final drafts.
 *  - When the buffer refuses a held commit (the file is larger than the room left),
 *    holding on would never end: the file is checked to the end without committing,
 *    the held part released, and the rest committed in a second pass as the buffer
 *    drains. A sink without holds takes that second pass for every large file.
 *    Every pass reads the file in the same fixed blocks and checks each block
 *    against its digest from the first read before parsing it, so every committed
 *    record comes from exactly the bytes its id was hashed from; a file rewritten
 *    meanwhile stops the pass as `changed`.
 *  - Drafts are committed in chunks, never one record at a time (LMDB groups the
 *    puts of one event-loop turn). The file moves only after every chunk resolved
 *    and its hold was released. A refused commit or an IO error leaves it (and its
 *    hold) in the inbox; the caller retries later.
 *  - A file's events keep the order of its records. Held chunks go several in
 *    flight; if one fails while a later one commits, the later one is ahead of the
 *    gap, so the held part is discarded (nothing of it was sent) and the file is
 *    read afresh: when the buffer refused it, before the second pass; after any
 *    other failure, on the next read, which finds a committed range past its first
 *    uncommitted record. Chunks that are not held may be sent as soon as they
 *    commit, so they go one at a time and a failure stops the file there.
 */
import { stat } from 'node:fs/promises';
import { isPlantgateError } from '../../errors.js';
import type { IngestSink } from '../source.js';
import { Committer, GapInHold, type PositionedDraft } from './committer.js';
import { FileChanged, fingerprint, sameBytes, unchanged, type Fingerprint } from './file-bytes.js';
import type { FileInfo, MapResult } from './mapping.js';
import { archiveFile, rejectFile, type ErrorReport } from './moves.js';
import { FileParseError, describeProblem, type RecordProblem, type RecordReader, type SourceRecord } from './records.js';

/** Drafts kept in memory until a file is checked whole; a file with more is committed while read, held (bounded memory). */
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
}

export type IngestOutcome =
  | { kind: 'archived'; dest: string; records: number; committed: number; duplicates: number; bad: number; reportPath?: string }
  | { kind: 'rejected'; reportPath: string; reason: string; bad: number }
  /** The file changed while it was read: it is not complete yet. */
  | { kind: 'changed' }
  | { kind: 'stopped' };

/** `afresh`: the file's held part was just discarded for a gap; the read starts over once, not again. */
export async function ingestFile(path: string, name: string, o: IngestOptions, afresh = false): Promise<IngestOutcome> {
  const st0 = await stat(path);
  const print = await fingerprint(path);
  const file: FileInfo = { name, mtime: st0.mtime.toISOString(), sha256: print.sha256, stream: `fd:${o.connector}:${print.sha256.slice(0, 32)}` };
  const holds = o.sink.holds;
  // Held from an earlier run: the same bytes resume under their hold; a rewritten file's hold, or one
  // cut short while being discarded, is discarded first.
  if (holds) for (const h of holds.list()) if ((h.file === name && h.stream !== file.stream) || (h.stream === file.stream && h.discarding)) await holds.discard(h.stream);

  // One pass: parse, map and check every record. A small file's drafts wait in memory until all
  // is checked; a larger file is committed while it is read, held from the uplink until the end.
  let kept: PositionedDraft[] | undefined = [];
  let held: Committer | undefined;
  /** The buffer refused a held commit (full): finish checking, release, commit the rest in a second pass. */
  let checkOnly = false;
  let total = 0;
  let good = 0;
  let bad = 0;
  const problems: RecordProblem[] = [];
  /** Whether the records checked so far may still be sent: under rejectFile, one bad record sends none. */
  const sendable = () => bad === 0 || o.badRecords === 'acceptGood';
  /** Nothing of the file may be sent: discards what was committed held (before the file moves on). */
  const discardHeld = async (): Promise<void> => {
    if (!held) return;
    await held.settle();
    await holds!.discard(file.stream);
  };
  try {
    for await (const items of o.reader(sameBytes(path, print))) {
      if (o.signal.aborted) {
        await held?.settle();
        return { kind: 'stopped' };
      }
      let drafts: PositionedDraft[] = [];
      for (const item of items) {
        total++;
        const r = item.record ? o.map(item.record, file) : { ok: false as const, problem: item.problem };
        if (!r.ok) {
          bad++;
          if (problems.length < o.maxReportedProblems) problems.push(r.problem);
          continue;
        }
        good++;
        if (kept) kept.push({ draft: r.draft, position: item.record!.position });
        else if (held && !checkOnly) drafts.push({ draft: r.draft, position: item.record!.position });
      }
      if (kept && kept.length > KEEP_DRAFTS_MAX) {
        // Too many to keep: commit held from here on (or, without holds, parse again to commit).
        if (holds && sendable()) {
          held = new Committer(o.sink, file.stream, o.chunkRecords, o.maxChunksInFlight, { file: name });
          drafts = kept;
        }
        kept = undefined;
      }
      if (held && !checkOnly && sendable() && drafts.length > 0) {
        try {
          await held.add(drafts);
        } catch (err) {
          if (!isPlantgateError(err, 'PG_ERR_BUFFER_FULL')) throw err;
          await held.settle();
          checkOnly = true;
          if (held.gapped) {
            // A chunk went in after the refused one: the second pass sends the whole file instead.
            await discardHeld();
            held = undefined;
          }
        }
      }
    }
  } catch (err) {
    await held?.settle();
    if (err instanceof GapInHold && !afresh) {
      await discardHeld();
      return ingestFile(path, name, o, true);
    }
    // An IO error or a failed commit leaves the file and its hold: the next read resumes.
    if (!(err instanceof FileChanged) && !(err instanceof FileParseError)) throw err;
    await discardHeld();
    if (err instanceof FileChanged || !(await unchanged(path, st0))) return { kind: 'changed' };
    return reject(path, o, report(name, o, undefined, 'rejected', [err.problem], total, 1, 0, `the file cannot be read: ${describeProblem(err.problem)}`));
  }
  if (!(await unchanged(path, st0))) {
    await discardHeld();
    return { kind: 'changed' };
  }

  if (bad > 0 && (o.badRecords === 'rejectFile' || good === 0)) {
    const why =
      good === 0
        ? `none of its ${total} record(s) can be used`
        : `${bad} of ${total} record(s) are bad and badRecords is rejectFile, so none of the file was sent (WMS files are transactions)`;
    await discardHeld();
    return reject(path, o, report(name, o, file.sha256, 'rejected', problems, total, bad, 0, `${why}. Fix the records listed below in the WMS and send the file again.`));
  }

  let committed = 0;
  let duplicates = 0;
  if (held && !checkOnly) {
    // A failure here leaves the hold; the next read of the file resumes under it.
    await held.flush();
  } else {
    // Checked whole and good: what is held may go (it also makes room), the rest follows.
    if (held) await holds!.release(file.stream);
    const rest = await commitChecked(path, print, file, kept, o);
    if ('kind' in rest) return rest;
    committed = rest.committed;
    duplicates = rest.duplicates;
  }
  committed += held?.committed ?? 0;
  duplicates += held?.duplicates ?? 0;
  // Ids carry the hash of the bytes read; if the sender rewrote the file meanwhile, read it again.
  if (!(await unchanged(path, st0))) {
    await discardHeld();
    return { kind: 'changed' };
  }
  if (held) await holds!.release(file.stream);

  const dest = await archiveFile(path, o.archiveDir);
  const outcome: IngestOutcome = { kind: 'archived', dest, records: total, committed, duplicates, bad };
  if (bad > 0) {
    const summary = `${bad} of ${total} record(s) are bad and were not sent; the other ${good} were (badRecords: acceptGood). The file is archived at ${dest}.`;
    outcome.reportPath = await rejectFile(undefined, o.errorDir, report(name, o, file.sha256, 'partial', problems, total, bad, good, summary));
  }
  return outcome;
}

/** Commits a file already checked whole: from memory (small file), or parsing the (verified same) bytes again. */
async function commitChecked(path: string, print: Fingerprint, file: FileInfo, kept: PositionedDraft[] | undefined, o: IngestOptions): Promise<Committer | IngestOutcome> {
  // One chunk at a time: these may be sent as soon as they commit, so none may overtake a failed one.
  const committer = new Committer(o.sink, file.stream, o.chunkRecords, 1);
  if (kept) {
    if (o.signal.aborted) return { kind: 'stopped' };
    await committer.add(kept);
  } else {
    try {
      for await (const items of o.reader(sameBytes(path, print))) {
        if (o.signal.aborted) {
          await committer.settle();
          return { kind: 'stopped' };
        }
        const drafts: PositionedDraft[] = [];
        for (const item of items) {
          const r = item.record ? o.map(item.record, file) : undefined;
          if (r?.ok) drafts.push({ draft: r.draft, position: item.record!.position });
        }
        await committer.add(drafts);
      }
    } catch (err) {
      await committer.settle();
      if (err instanceof FileChanged) return { kind: 'changed' };
      throw err;
    }
  }
  await committer.flush();
  return committer;
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
