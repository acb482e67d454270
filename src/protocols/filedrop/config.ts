/**
 * Config of one WMS file-drop inbox (`sources.filedrop: [...]`). See README.md in
 * this folder for every format, the mapping and the X12 944/945/947 tables.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConnectorName, Int, strict } from '../../config/common.js';
import { PlantgateError } from '../../errors.js';

const CompletionConfig = Type.Object(
  {
    mode: Type.Union([Type.Literal('quiet'), Type.Literal('marker'), Type.Literal('rename')], {
      default: 'quiet',
      description:
        'quiet: read once size and mtime were unchanged for quietMs; marker: read once <file>.done or <file>.ok exists; rename: the sender writes under an ignored temporary name and renames',
    }),
    quietMs: Int(2000, 0, 'quiet mode: how long size and mtime must stay unchanged'),
    markerSuffixes: Type.Array(Type.String({ minLength: 1 }), {
      default: ['.done', '.ok'],
      description: 'marker mode: suffixes of the marker file, added to the full name (a.csv.done) or replacing the extension (a.done)',
    }),
  },
  { ...strict, default: {} },
);

/**
 * One flat object for all formats (not a union): the config loader then reports a
 * misspelt key with "did you mean", instead of one complaint per format. Which
 * options apply to which kind is checked in withDefaults() at start.
 */
const FormatConfig = Type.Object(
  {
    kind: Type.Union([Type.Literal('csv'), Type.Literal('xml'), Type.Literal('json'), Type.Literal('jsonl'), Type.Literal('x12')], {
      description: 'csv, xml, json (one document), jsonl (JSON Lines) or x12 (ANSI X12 004010 944/945/947)',
    }),
    delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 4, description: "csv: field separator (default ','), e.g. ';' or '\\t'" })),
    quote: Type.Optional(Type.String({ minLength: 1, maxLength: 1, description: 'csv: quote character (default ")' })),
    encoding: Type.Optional(
      Type.Union([Type.Literal('utf-8'), Type.Literal('windows-1252'), Type.Literal('latin1')], {
        description: 'csv: utf-8 (default; a BOM is skipped), windows-1252 or latin1 (ISO-8859-1)',
      }),
    ),
    header: Type.Optional(Type.Boolean({ description: 'csv: first record holds the column names (default true); else columns are named 1, 2, 3 ...' })),
    skipLines: Type.Optional(Type.Integer({ minimum: 0, description: 'csv: preamble lines before the header (default 0)' })),
    trim: Type.Optional(Type.Boolean({ description: 'csv: trim blanks around values (default true)' })),
    recordPath: Type.Optional(
      Type.String({
        description: "xml: element path of one record by local names, e.g. /ReceiptExport/Receipts/Receipt (required); json: dotted path to the records array ('' = the document)",
      }),
    ),
    arrays: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'xml: child elements that are always lists, even when they occur once (e.g. Serial)' })),
    maxBytes: Type.Optional(Type.Integer({ minimum: 1, description: 'json, x12: parsed whole, so larger files are rejected (default 64 MiB json, 32 MiB x12)' })),
    transactionSets: Type.Optional(
      Type.Array(Type.Union([Type.Literal('944'), Type.Literal('945'), Type.Literal('947')]), {
        description: 'x12: transaction sets this inbox accepts (default all three); any other rejects the file',
      }),
    ),
  },
  strict,
);

/** The format options after defaults, per kind: what the readers receive. */
export type FiledropFormat =
  | { kind: 'csv'; delimiter: string; quote: string; encoding: 'utf-8' | 'windows-1252' | 'latin1'; header: boolean; skipLines: number; trim: boolean }
  | { kind: 'xml'; recordPath: string; arrays: string[] }
  | { kind: 'json'; recordPath: string; maxBytes: number }
  | { kind: 'jsonl' }
  | { kind: 'x12'; transactionSets: ('944' | '945' | '947')[]; maxBytes: number };

export const FieldSpec = Type.Union([
  Type.String({ minLength: 1, description: 'Shorthand: the source column / path, kept as a string' }),
  Type.Object(
    {
      from: Type.String({ minLength: 1, description: 'CSV column name (or 1-based number without header), JSON/XML dotted path' }),
      as: Type.Optional(
        Type.Union([Type.Literal('string'), Type.Literal('number'), Type.Literal('integer'), Type.Literal('date'), Type.Literal('boolean')], {
          description: 'Default string: SSCCs and lot numbers keep their leading zeros',
        }),
      ),
      required: Type.Optional(Type.Boolean({ description: 'A record without a value is bad (default false)' })),
      format: Type.Optional(Type.String({ minLength: 1, description: 'Date format for as: date, e.g. dd.mm.yyyy or yyyy-mm-dd HH:MM:SS' })),
    },
    strict,
  ),
]);

const MappingConfig = Type.Object(
  {
    type: Type.Optional(Type.String({ minLength: 1, description: 'Event type, e.g. goods.receipt; X12 sets default to their canonical type' })),
    fields: Type.Record(Type.String({ minLength: 1 }), FieldSpec, {
      default: {},
      description: 'Canonical field name → source. Empty: every source field is passed through as a string',
    }),
    subjectField: Type.Optional(Type.String({ minLength: 1, description: 'Canonical field holding the business key (shipment, lot, ...)' })),
    subject: Type.Optional(Type.String({ minLength: 1, description: 'Template for the subject, e.g. {order}/{lot}' })),
    timeField: Type.Optional(Type.String({ minLength: 1, description: 'Canonical field holding the event time; else the file mtime' })),
    partitionKey: Type.String({
      default: '{site}/{line}',
      description: 'Template over canonical fields and the gateway site; {line} falls back to the connector name',
    }),
    decimalSeparator: Type.Union([Type.Literal('.'), Type.Literal(',')], { default: '.', description: "',' for European exports (12,5)" }),
    thousandsSeparator: Type.Union([Type.Literal(''), Type.Literal('.'), Type.Literal(','), Type.Literal(' '), Type.Literal("'")], {
      default: '',
      description: "Grouping character removed from numbers (1.234,5 with '.')",
    }),
    dateFormat: Type.String({ default: 'iso', minLength: 1, description: 'Default date format for as: date; iso = ISO 8601' }),
    utcOffset: Type.String({
      default: 'local',
      pattern: '^(local|Z|[+-]\\d{2}:\\d{2})$',
      description: 'Zone of dates without one: local (the gateway clock), Z or +01:00',
    }),
  },
  { ...strict, default: {} },
);

export const FiledropConfig = Type.Object(
  {
    name: ConnectorName,
    path: Type.String({ minLength: 1, description: 'Inbox folder the WMS (or its SFTP account) writes into' }),
    include: Type.Array(Type.String({ minLength: 1 }), { default: ['*'], description: 'Glob patterns of files to read (* and ?)' }),
    ignore: Type.Array(Type.String({ minLength: 1 }), {
      default: ['.*', '*.tmp', '*.part', '*.filepart', '~*'],
      description: 'Glob patterns never read: temporary names used while writing',
    }),
    completion: CompletionConfig,
    format: FormatConfig,
    mapping: MappingConfig,
    badRecords: Type.Union([Type.Literal('rejectFile'), Type.Literal('acceptGood')], {
      default: 'rejectFile',
      description: 'rejectFile: one bad record rejects the whole file (WMS files are transactions); acceptGood: commit the good records, report the bad',
    }),
    archiveDir: Type.Optional(Type.String({ minLength: 1, description: 'Default <path>/archive; files land in archive/YYYY-MM-DD/' })),
    errorDir: Type.Optional(Type.String({ minLength: 1, description: 'Default <path>/error; rejected files with <name>.error.json' })),
    pollMs: Int(1000, 10, 'How often the inbox is scanned'),
    retryMs: Int(5000, 10, 'Wait before retrying a file after a refused commit or an IO error (doubles up to 60 s)'),
    chunkRecords: Int(1000, 1, 'Drafts per commit call', 100_000),
    maxChunksInFlight: Int(4, 1, 'Commit calls in flight per file while it is held (a large file); others commit one at a time', 64),
    maxReportedProblems: Int(1000, 1, 'Bad records listed in an error report; the count covers all'),
  },
  strict,
);

export type FiledropConfigType = Static<typeof FiledropConfig>;
export type FiledropMapping = FiledropConfigType['mapping'];
export type FieldSpecType = Static<typeof FieldSpec>;

const FORMAT_OPTIONS: Record<FiledropFormat['kind'], string[]> = {
  csv: ['delimiter', 'quote', 'encoding', 'header', 'skipLines', 'trim'],
  xml: ['recordPath', 'arrays'],
  json: ['recordPath', 'maxBytes'],
  jsonl: [],
  x12: ['transactionSets', 'maxBytes'],
};

const FORMAT_DEFAULTS: Record<FiledropFormat['kind'], Record<string, unknown>> = {
  csv: { delimiter: ',', quote: '"', encoding: 'utf-8', header: true, skipLines: 0, trim: true },
  xml: { arrays: [] },
  json: { recordPath: '', maxBytes: 64 * 1024 * 1024 },
  jsonl: {},
  x12: { transactionSets: ['944', '945', '947'], maxBytes: 32 * 1024 * 1024 },
};

/**
 * Fills defaults for a config that did not come through the config loader (tests,
 * tools) and inside the format union, where the validator does not apply them.
 */
export function withDefaults(config: FiledropConfigType): ResolvedFiledropConfig {
  const c = Value.Default(FiledropConfig, structuredClone(config)) as FiledropConfigType;
  const kind = c.format.kind;
  const where = `sources.filedrop[name=${c.name}].format`;
  const wrong = Object.keys(c.format).filter((k) => k !== 'kind' && !FORMAT_OPTIONS[kind].includes(k));
  if (wrong.length) {
    throw new PlantgateError('PG_ERR_CONFIG_INVALID', `${where}: ${wrong.join(', ')} do(es) not apply to kind ${kind}; options for ${kind}: ${FORMAT_OPTIONS[kind].join(', ') || 'none'}`);
  }
  if (kind === 'xml' && !/^(\/[^/]+)+$/.test(c.format.recordPath ?? '')) {
    throw new PlantgateError('PG_ERR_CONFIG_INVALID', `${where}.recordPath is required for xml and looks like /Export/Records/Record`);
  }
  return { ...c, format: { ...FORMAT_DEFAULTS[kind], ...c.format } as FiledropFormat };
}

export type ResolvedFiledropConfig = Omit<FiledropConfigType, 'format'> & { format: FiledropFormat };
