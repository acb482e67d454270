/**
 * CSV reader on csv-parse (streaming, bounded memory). Values stay text; the
 * mapping converts them, so SSCCs and lot numbers keep their leading zeros.
 * `relax_quotes` because European exports contain bare quotes in unquoted fields
 * (FIELD-NOTES); `relax_column_count` so a short row is one bad record, not a dead file.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import iconv from 'iconv-lite';
import type { FiledropFormat } from './config.js';
import { FileParseError, type ReadItem, type RecordReader } from './records.js';

type CsvOptions = Extract<FiledropFormat, { kind: 'csv' }>;

interface ParsedRow {
  record: string[];
  raw: string;
}

export function csvReader(opts: CsvOptions): RecordReader {
  return async function* read(input): AsyncIterable<ReadItem> {
    const parser = parse({
      delimiter: opts.delimiter === '\\t' ? '\t' : opts.delimiter,
      quote: opts.quote,
      bom: true,
      relax_quotes: true,
      relax_column_count: true,
      // Line numbers come from counting breaks in each record's raw text: csv-parse's
      // `info` and `trim` options cost 10-20 % of its throughput (bench/filedrop).
      raw: true,
    });
    const skip = opts.skipLines ?? 0;
    const trim = opts.trim;
    const source = Readable.from(input, { objectMode: false });
    const stages: NodeJS.ReadWriteStream[] = opts.encoding === 'utf-8' ? [] : [iconv.decodeStream(opts.encoding === 'latin1' ? 'latin1' : 'win1252')];
    // Errors of the file stream or decoder surface through the parser's iterator.
    const feeding = (pipeline as unknown as (streams: NodeJS.ReadWriteStream[] | unknown[]) => Promise<void>)([source, ...stages, parser]).catch((err: unknown) => {
      parser.destroy(err as Error);
    });

    let header: string[] | undefined;
    let position = 0;
    let line = 0;
    try {
      for await (const row of parser as AsyncIterable<ParsedRow>) {
        const startLine = line + 1;
        for (let i = row.raw.indexOf('\n'); i >= 0; i = row.raw.indexOf('\n', i + 1)) line++;
        if (!row.raw.endsWith('\n')) line++; // last record without a final line break
        if (startLine <= skip) continue;
        if (row.record.length === 1 && row.record[0]!.trim() === '') continue; // empty line
        const raw = row.raw.replace(/\r?\n$/, '');
        if (trim) for (let i = 0; i < row.record.length; i++) row.record[i] = row.record[i]!.trim();
        if (opts.header && !header) {
          header = uniqueNames(row.record);
          continue;
        }
        position++;
        const names = header ?? row.record.map((_, i) => String(i + 1));
        if (header && row.record.length !== header.length) {
          yield {
            problem: {
              position,
              line: startLine,
              reason: `has ${row.record.length} fields but the header has ${header.length} (check the delimiter '${opts.delimiter}' and unclosed quotes)`,
              raw,
            },
          };
          continue;
        }
        const fields: Record<string, unknown> = {};
        for (let i = 0; i < names.length; i++) fields[names[i]!] = row.record[i] ?? '';
        yield { record: { position, where: { line: startLine }, fields, raw } };
      }
    } catch (err) {
      throw toParseError(err);
    } finally {
      await feeding;
    }
  };
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

function toParseError(err: unknown): unknown {
  if (err instanceof FileParseError) return err;
  const e = err as { code?: string; message?: string; lines?: number; column?: number | string };
  if (typeof e?.code === 'string' && e.code.startsWith('CSV_')) {
    const reason =
      e.code === 'CSV_QUOTE_NOT_CLOSED'
        ? 'a quoted field is never closed: a quote character is missing (the file may be cut off)'
        : `the CSV structure is broken (${e.code}): ${e.message ?? ''}`;
    return new FileParseError({ ...(e.lines !== undefined ? { line: e.lines } : {}), reason });
  }
  return err;
}
