/** Picks the record reader for an inbox's format. */
import type { FiledropFormat } from './config.js';
import { csvReader } from './csv.js';
import { jsonLinesReader, jsonReader } from './json.js';
import type { RecordReader } from './records.js';
import { xmlReader } from './xml.js';
import { x12Reader } from './x12/index.js';

export function readerFor(format: FiledropFormat, utcOffset: string): RecordReader {
  switch (format.kind) {
    case 'csv':
      return csvReader(format);
    case 'xml':
      return xmlReader(format);
    case 'json':
      return jsonReader(format);
    case 'jsonl':
      return jsonLinesReader();
    case 'x12':
      return x12Reader(format, utcOffset);
  }
}
