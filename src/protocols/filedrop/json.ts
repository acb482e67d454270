/**
 * JSON (one document, parsed whole up to format.maxBytes) and JSON Lines
 * (streamed line by line: bounded memory for any size; one bad line is one bad record).
 */
import { StringDecoder } from 'node:string_decoder';
import { getPath } from '../../model/template.js';
import type { FiledropFormat } from './config.js';
import { FileParseError, inBatches, readAll, type ReadItem, type RecordReader } from './records.js';

type JsonOptions = Extract<FiledropFormat, { kind: 'json' }>;

export function jsonReader(opts: JsonOptions): RecordReader {
  return async function* read(input): AsyncIterable<ReadItem[]> {
    const bytes = await readAll(input, opts.maxBytes ?? 64 * 1024 * 1024, 'JSON');
    let doc: unknown;
    try {
      doc = JSON.parse(stripBom(bytes.toString('utf8')));
    } catch (err) {
      throw new FileParseError({ reason: `not valid JSON: ${(err as Error).message}` });
    }
    const list = opts.recordPath ? getPath(doc, opts.recordPath) : doc;
    if (list === undefined) throw new FileParseError({ reason: `the document has no '${opts.recordPath}' (format.recordPath)` });
    const records = Array.isArray(list) ? list : [list];
    yield* inBatches(recordItems(records, opts.recordPath || '$'));
  };
}

function* recordItems(records: unknown[], path: string): Generator<ReadItem> {
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const where = { column: `${path}[${i}]` };
    if (r === null || typeof r !== 'object' || Array.isArray(r)) yield { problem: { position: i + 1, ...where, reason: 'record is not a JSON object', raw: JSON.stringify(r) } };
    else yield { record: { position: i + 1, where, fields: r as Record<string, unknown>, raw: JSON.stringify(r) } };
  }
}

export function jsonLinesReader(): RecordReader {
  return async function* read(input): AsyncIterable<ReadItem[]> {
    const decoder = new StringDecoder('utf8');
    let rest = '';
    let line = 0;
    let position = 0;
    const parseLine = (text: string): ReadItem | undefined => {
      line++;
      const t = (line === 1 ? stripBom(text) : text).replace(/\r$/, '');
      if (t.trim() === '') return undefined;
      position++;
      try {
        const v: unknown = JSON.parse(t);
        if (v === null || typeof v !== 'object' || Array.isArray(v)) return { problem: { position, line, reason: 'line is not a JSON object', raw: t } };
        return { record: { position, where: { line }, fields: v as Record<string, unknown>, raw: t } };
      } catch (err) {
        return { problem: { position, line, reason: `not valid JSON: ${(err as Error).message}`, raw: t.slice(0, 2000) } };
      }
    };
    for await (const chunk of input) {
      const text = rest + decoder.write(chunk);
      const parts = text.split('\n');
      rest = parts.pop() ?? '';
      const batch: ReadItem[] = [];
      for (const p of parts) {
        const item = parseLine(p);
        if (item) batch.push(item);
      }
      if (batch.length) yield batch;
    }
    const last = rest + decoder.end();
    if (last !== '') {
      const item = parseLine(last);
      if (item) yield [item];
    }
  };
}

function stripBom(s: string): string {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}
