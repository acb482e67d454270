/**
 * X12 004010 reader: 944 → goods.receipt, 945 → shipment.confirmation,
 * 947 → inventory.adjustment, one record per line item (W07 / W12 / W19).
 * The interchange is validated whole before any record is yielded, so an
 * envelope error rejects the file before anything could be committed.
 */
import type { FiledropFormat } from '../config.js';
import { inBatches, readAll, type ReadItem, type RecordReader } from '../records.js';
import { dateParser } from '../values.js';
import { validateEnvelope } from './envelope.js';
import { tokenize } from './segments.js';
import { itemFields, SETS } from './sets.js';
import { walk } from './walk.js';

type X12Options = Extract<FiledropFormat, { kind: 'x12' }>;

export function x12Reader(opts: X12Options, utcOffset: string): RecordReader {
  const day = dateParser('yyyymmdd', utcOffset);
  const minute = dateParser('yyyymmddHHMM', utcOffset);
  const second = dateParser('yyyymmddHHMMSS', utcOffset);
  // X12 dates are CCYYMMDD (YYMMDD in old partners' files) and times HHMM[SS[dd]].
  const date = (d: string, t?: string): string | undefined => {
    const full = d.length === 6 ? `20${d}` : d;
    if (!t) return day(full);
    return t.length >= 6 ? second(full + t.slice(0, 6)) : minute(full + t.slice(0, 4));
  };
  const sets = opts.transactionSets ?? ['944', '945', '947'];

  return async function* read(input): AsyncIterable<ReadItem[]> {
    const text = (await readAll(input, opts.maxBytes ?? 32 * 1024 * 1024, 'X12')).toString('latin1');
    const { segments } = tokenize(text);
    const transactions = validateEnvelope(segments, text, sets);
    yield* inBatches(lineItems(transactions));
  };

  /** One item per line item, numbered across the interchange; a set without line items is one bad item. */
  function* lineItems(transactions: ReturnType<typeof validateEnvelope>): Generator<ReadItem> {
    let position = 0;
    for (const tx of transactions) {
      const spec = SETS[tx.set]!;
      const { header, items } = walk(tx.segments, spec.walk);
      if (items.length === 0) {
        position++;
        yield { problem: { position, segment: `ST (segment ${tx.segments[0]!.ordinal})`, line: tx.segments[0]!.line, reason: `transaction set ${tx.set} control ${tx.control} has no line items (${spec.walk.item} segments)` } };
        continue;
      }
      const headerFields = spec.header(header, date);
      for (const it of items) {
        position++;
        const r = itemFields(tx, spec, headerFields, it);
        if ('problem' in r) {
          yield { problem: { position, ...r.problem } };
          continue;
        }
        const fields = r.fields;
        const preset: { type: string; subject?: string; time?: string } = { type: spec.type };
        const subject = spec.subject(fields);
        const time = spec.time(fields);
        if (subject) preset.subject = subject;
        if (time) preset.time = time;
        yield { record: { position, where: { segment: `${it.segment.tag} (segment ${it.segment.ordinal})`, line: it.segment.line }, fields, raw: it.segment.raw, preset } };
      }
    }
  }
}
