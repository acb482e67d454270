/**
 * CSV reader on papaparse (streaming, bounded memory). Values stay text; the
 * mapping converts them, so SSCCs and lot numbers keep their leading zeros. A bare
 * quote inside an unquoted field (European exports) is kept as text; an unclosed
 * quoted field makes the file unreadable; a row with the wrong number of fields is
 * one bad record, not a dead file.
 *
 * papaparse reports where each row ends (`meta.cursor`, in characters of the decoded
 * text), so each record keeps its exact raw text for error reports and its line
 * number (line breaks counted in the raw text: quoted fields may hold some).
 */
import { Readable } from 'node:stream';
import Papa from 'papaparse';
import iconv from 'iconv-lite';
import type { FiledropFormat } from './config.js';
import { FileParseError, type ReadItem, type RecordReader, type SourceRecord } from './records.js';

type CsvOptions = Extract<FiledropFormat, { kind: 'csv' }>;

/** A parsed row and where its text lies in the decoded window. */
interface ParsedRow {
  record: string[];
  text: string;
  from: number;
  to: number;
}

/** A CSV record; its raw text is cut from the window only when a report asks for it. */
class CsvRecord implements SourceRecord {
  constructor(
    readonly position: number,
    readonly where: { line: number },
    readonly fields: Record<string, unknown>,
    private readonly row: ParsedRow,
  ) {}

  get raw(): string {
    return rawText(this.row);
  }
}

function rawText(row: ParsedRow): string {
  return row.text.slice(row.from, row.to).replace(/\r?\n$/, '');
}

/** Rows parsed ahead of the consumer before reading pauses (bounded memory). */
const MAX_ROWS_AHEAD = 1_000;

export function csvReader(opts: CsvOptions): RecordReader {
  return async function* read(input): AsyncIterable<ReadItem[]> {
    // iconv-lite's decoders strip a UTF-8 BOM.
    const decoder = iconv.getDecoder(opts.encoding === 'utf-8' ? 'utf8' : opts.encoding === 'latin1' ? 'latin1' : 'win1252');
    // The decoded text not yet taken by a row: characters [base, base + text.length).
    let text = '';
    let base = 0;
    let steps: Papa.ParseStepResult<string[]>[] = [];
    let done = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    let room: (() => void) | undefined;
    let handle: Papa.Parser | undefined;
    let stopped = false;
    const notify = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    async function* decoded(): AsyncIterable<string> {
      for await (const chunk of input) {
        while (steps.length >= MAX_ROWS_AHEAD && !stopped) await new Promise<void>((r) => (room = r));
        if (stopped) return; // leaving the loop closes the file
        const s = decoder.write(chunk);
        text += s;
        if (s) yield s;
      }
      const tail = decoder.end() ?? '';
      text += tail;
      if (tail) yield tail;
    }
    const source = Readable.from(decoded(), { highWaterMark: 1 });
    Papa.parse<string[]>(source as unknown as File, {
      delimiter: opts.delimiter === '\\t' ? '\t' : opts.delimiter,
      quoteChar: opts.quote,
      escapeChar: opts.quote,
      step: (r, parser) => {
        handle = parser;
        steps.push(r);
        notify();
      },
      complete: () => {
        done = true;
        notify();
      },
      error: (err: Error) => {
        failure = err;
        notify();
      },
    });

    const rows = new RowReader(opts);
    let finished = false;
    try {
      for (;;) {
        if (steps.length) {
          const batch = steps;
          steps = [];
          const items: ReadItem[] = [];
          let from = 0;
          for (const r of batch) {
            const to = r.meta.cursor - base;
            const row: ParsedRow = { record: r.data, text, from, to };
            from = to;
            if (r.errors.length) {
              const quoteError = r.errors.find((e) => e.type === 'Quotes');
              if (quoteError) throw quoteProblem(quoteError, rawText(row), rows.nextLine);
            }
            rows.take(row, items);
          }
          text = text.slice(from);
          base += from;
          const r = room;
          room = undefined;
          r?.();
          if (items.length) yield items;
          continue;
        }
        if (failure !== undefined) throw failure;
        if (done) break;
        await new Promise<void>((r) => (wake = r));
      }
      finished = true;
    } finally {
      if (!finished) {
        // Stopped early (a parse error, or the source stopping): release the reading side.
        stopped = true;
        room?.();
        handle?.abort();
        source.destroy();
      }
    }
  };
}

function quoteProblem(e: Papa.ParseError, raw: string, line: number): FileParseError {
  const reason =
    e.code === 'MissingQuotes'
      ? 'a quoted field is never closed: a quote character is missing (the file may be cut off)'
      : 'a quoted field has text after its closing quote (a quote inside a quoted field must be doubled)';
  return new FileParseError({ line, reason, raw: raw.slice(0, 2000) });
}

/** Rows → records: line numbers, skipped lines, the header, field names. */
class RowReader {
  private header: string[] | undefined;
  private position = 0;
  private line = 0;

  constructor(private readonly opts: CsvOptions) {}

  get nextLine(): number {
    return this.line + 1;
  }

  take(row: ParsedRow, items: ReadItem[]): void {
    const { opts } = this;
    const startLine = this.line + 1;
    const last = row.to - 1;
    for (let i = row.text.indexOf('\n', row.from); i >= 0 && i <= last; i = row.text.indexOf('\n', i + 1)) this.line++;
    if (row.text.charCodeAt(last) !== 10) this.line++; // last record without a final line break
    if (startLine <= (opts.skipLines ?? 0)) return;
    if (row.record.length === 1 && row.record[0]!.trim() === '') return; // empty line
    if (opts.trim) for (let i = 0; i < row.record.length; i++) row.record[i] = row.record[i]!.trim();
    if (opts.header && !this.header) {
      this.header = uniqueNames(row.record);
      return;
    }
    const position = ++this.position;
    const header = this.header;
    const names = header ?? row.record.map((_, i) => String(i + 1));
    if (header && row.record.length !== header.length) {
      const reason = `has ${row.record.length} fields but the header has ${header.length} (check the delimiter '${opts.delimiter}' and unclosed quotes)`;
      items.push({ problem: { position, line: startLine, reason, raw: rawText(row) } });
      return;
    }
    const fields: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) fields[names[i]!] = row.record[i] ?? '';
    items.push({ record: new CsvRecord(position, { line: startLine }, fields, row) });
  }
}

function uniqueNames(names: string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const name = n.trim();
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return count === 1 ? name : `${name}_${count}`;
  });
}
