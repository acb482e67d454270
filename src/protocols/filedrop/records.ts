/**
 * What every format reader yields: records in file order, each with a stable
 * 1-based position (the event id's second half), or a bad record with where it is
 * and why. A problem that makes the whole file unreadable is thrown as FileParseError.
 */
import { PlantgateError } from '../../errors.js';

/** Where in the file: CSV/JSONL line, XML line+column, X12 segment. */
export interface Where {
  line?: number;
  column?: number | string;
  /** X12: the segment tag and its ordinal in the interchange, e.g. "SE (segment 12)". */
  segment?: string;
}

export interface SourceRecord {
  /** 1-based, stable for the same bytes: part of the event id. */
  position: number;
  where: Where;
  /** CSV: column name → text; JSON/XML: the record object; X12: canonical fields. */
  fields: Record<string, unknown>;
  /** The record's text as in the file, for error reports. */
  raw?: string;
  /** X12 readers already know the event type, subject and time. */
  preset?: { type: string; subject?: string; time?: string };
}

export interface RecordProblem extends Where {
  position?: number;
  reason: string;
  raw?: string;
}

export type ReadItem = { record: SourceRecord; problem?: undefined } | { problem: RecordProblem; record?: undefined };

/**
 * A reader consumes the file's bytes and yields items in order, in batches (one per
 * chunk read, or up to READ_BATCH): one await per batch, not per record. A chunk of
 * input is only valid until the next one is asked for (the buffer is reused).
 */
export type RecordReader = (input: AsyncIterable<Buffer>) => AsyncIterable<ReadItem[]>;

/** Batch size for readers that hold a whole parsed document. */
const READ_BATCH = 1000;

/** The items of a document parsed whole, handed on in batches of READ_BATCH. */
export function* inBatches(items: Iterable<ReadItem>): Generator<ReadItem[]> {
  let batch: ReadItem[] = [];
  for (const item of items) {
    batch.push(item);
    if (batch.length >= READ_BATCH) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

/** The whole file cannot be read (broken syntax, envelope error): it is rejected whatever the policy. */
export class FileParseError extends PlantgateError {
  readonly problem: RecordProblem;
  constructor(problem: RecordProblem) {
    super('PG_ERR_FILE_PARSE', describeProblem(problem), { ...problem });
    this.problem = problem;
  }
}

export function describeProblem(p: RecordProblem): string {
  const at = [
    p.segment ? `segment ${p.segment}` : undefined,
    p.line !== undefined ? `line ${p.line}` : undefined,
    p.column !== undefined ? `column ${p.column}` : undefined,
  ].filter(Boolean);
  return `${at.length ? `${at.join(', ')}: ` : ''}${p.reason}`;
}

/** Reads the whole input, refusing more than maxBytes (formats parsed as one document). */
export async function readAll(input: AsyncIterable<Buffer>, maxBytes: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    size += chunk.length;
    if (size > maxBytes) {
      throw new FileParseError({ reason: `${what} file is larger than format.maxBytes (${maxBytes} bytes); split it or raise the limit` });
    }
    chunks.push(Buffer.from(chunk)); // the reader reuses its block buffer
  }
  return Buffer.concat(chunks, size);
}
