/**
 * Record → EventDraft. The event id is `fd:<connector>:<sha256 of the file, 32 hex>:<position>`,
 * so the same bytes always give the same ids (a re-read after a crash or a second
 * drop of the same file is recognised by the buffer), and new content gives new ids.
 */
import { getPath, renderTemplate, toIsoTime } from '../../model/template.js';
import type { EventDraft } from '../../model/event.js';
import type { FieldSpecType, FiledropMapping } from './config.js';
import type { RecordProblem, SourceRecord } from './records.js';
import { dateParser, parseBoolean, parseNumber, type DateParser, type NumberStyle } from './values.js';

export interface FileInfo {
  name: string;
  /** ISO time of the file's mtime: the event time when no field gives one. */
  mtime: string;
  /** SHA-256 of the file's bytes (hex). */
  sha256: string;
  /** `fd:<connector>:<sha256/32>`: the stream name, and every event id before `:<position>`. */
  stream: string;
}

export type MapResult = { ok: true; draft: EventDraft } | { ok: false; problem: RecordProblem };

interface CompiledField {
  name: string;
  from: string;
  as: 'string' | 'number' | 'integer' | 'date' | 'boolean';
  required: boolean;
  date?: DateParser;
}

export interface MappingContext {
  connector: string;
  site: string;
  defaultType?: string;
}

export function compileMapping(mapping: FiledropMapping, ctx: MappingContext): (rec: SourceRecord, file: FileInfo) => MapResult {
  const style: NumberStyle = { decimalSeparator: mapping.decimalSeparator, thousandsSeparator: mapping.thousandsSeparator };
  const fields: CompiledField[] = Object.entries(mapping.fields).map(([name, spec]) => compileField(name, spec, mapping));
  const context = { site: ctx.site, line: ctx.connector };
  // A time field mapped `as: date` is already ISO 8601: no need to parse it again.
  const timeIsIso = fields.some((f) => f.name === mapping.timeField && f.as === 'date');

  return (rec, file) => {
    let data: Record<string, unknown>;
    if (fields.length === 0) {
      data = { ...rec.fields };
    } else {
      data = {};
      for (const f of fields) {
        const rawValue = rec.fields[f.from] ?? (f.from.includes('.') ? getPath(rec.fields, f.from) : undefined);
        if (rawValue === undefined || rawValue === null || (typeof rawValue === 'string' && rawValue.trim() === '')) {
          if (f.required) return bad(rec, f.from, `required field '${f.name}' (source '${f.from}') is empty or missing`);
          continue;
        }
        const converted = convert(f, rawValue, style);
        if (converted === undefined) return bad(rec, f.from, explain(f, rawValue, style));
        data[f.name] = converted;
      }
    }

    const type = mapping.type ?? rec.preset?.type ?? ctx.defaultType;
    if (!type) return bad(rec, undefined, 'no event type: set mapping.type for this inbox');

    let time = rec.preset?.time ?? file.mtime;
    if (mapping.timeField) {
      const t = data[mapping.timeField];
      if (t !== undefined) {
        const iso = timeIsIso ? (t as string) : toIsoTime(t);
        if (!iso) return bad(rec, mapping.timeField, `time field '${mapping.timeField}' holds '${String(t)}', which is not a date`);
        time = iso;
      }
    }

    let subject = rec.preset?.subject;
    if (mapping.subjectField) {
      const s = data[mapping.subjectField];
      subject = s === undefined || s === null ? undefined : String(s);
    } else if (mapping.subject) {
      const r = renderTemplate(mapping.subject, { payload: data, context });
      if (r.missing.length) return bad(rec, r.missing[0], `subject template '${mapping.subject}' needs ${r.missing.map((m) => `'${m}'`).join(', ')}, missing in this record`);
      subject = r.value;
    }

    const pk = renderTemplate(mapping.partitionKey, { payload: data, context });
    if (pk.missing.length) {
      return bad(rec, pk.missing[0], `partition key template '${mapping.partitionKey}' needs ${pk.missing.map((m) => `'${m}'`).join(', ')}, missing in this record`);
    }

    // After the templates: they see the record's own fields only.
    data['file'] = { name: file.name, sha256: file.sha256, record: rec.position };
    const draft: EventDraft = { id: `${file.stream}:${rec.position}`, type, time, partitionkey: pk.value, data };
    if (subject !== undefined && subject !== '') draft.subject = subject;
    return { ok: true, draft };
  };
}

function compileField(name: string, spec: FieldSpecType, mapping: FiledropMapping): CompiledField {
  if (typeof spec === 'string') return { name, from: spec, as: 'string', required: false };
  const as = spec.as ?? 'string';
  const f: CompiledField = { name, from: spec.from, as, required: spec.required ?? false };
  if (as === 'date') f.date = dateParser(spec.format ?? mapping.dateFormat, mapping.utcOffset);
  return f;
}

function convert(f: CompiledField, v: unknown, style: NumberStyle): unknown {
  switch (f.as) {
    case 'string':
      // Keep text exactly: SSCCs and lot numbers have leading zeros that numbers would drop.
      return typeof v === 'string' ? v : typeof v === 'object' ? v : String(v);
    case 'number':
      return parseNumber(v, style);
    case 'integer': {
      const n = parseNumber(v, style);
      return n !== undefined && Number.isInteger(n) ? n : undefined;
    }
    case 'boolean':
      return parseBoolean(v);
    case 'date':
      return f.date!(v);
  }
}

function explain(f: CompiledField, v: unknown, style: NumberStyle): string {
  const shown = JSON.stringify(v);
  switch (f.as) {
    case 'number':
    case 'integer':
      return `'${f.from}' = ${shown} is not ${f.as === 'integer' ? 'a whole number' : 'a number'} (decimal separator '${style.decimalSeparator}'${style.thousandsSeparator ? `, thousands '${style.thousandsSeparator}'` : ''})`;
    case 'date':
      return `'${f.from}' = ${shown} is not a valid date in the configured format`;
    case 'boolean':
      return `'${f.from}' = ${shown} is not yes/no (true/false, 1/0, ja/nein, x)`;
    default:
      return `'${f.from}' = ${shown} cannot be read`;
  }
}

function bad(rec: SourceRecord, column: string | undefined, reason: string): MapResult {
  const problem: RecordProblem = { position: rec.position, ...rec.where, reason };
  if (column !== undefined && rec.where.column === undefined) problem.column = column;
  if (rec.raw !== undefined) problem.raw = rec.raw;
  return { ok: false, problem };
}
