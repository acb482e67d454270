/**
 * Config of one WMS file-drop inbox (`sources.filedrop: [...]`). See README.md in
 * this folder for every format, the mapping and the X12 944/945/947 tables.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConnectorName, Int, strict } from '../../config/common.js';

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

const CsvFormat = Type.Object(
  {
    kind: Type.Literal('csv'),
    delimiter: Type.String({ default: ',', minLength: 1, maxLength: 4, description: "Field separator, e.g. ',' ';' or '\\t'" }),
    quote: Type.String({ default: '"', minLength: 1, maxLength: 1 }),
    encoding: Type.Union([Type.Literal('utf-8'), Type.Literal('windows-1252'), Type.Literal('latin1')], {
      default: 'utf-8',
      description: 'utf-8 (a BOM is skipped), windows-1252 or latin1 (ISO-8859-1)',
    }),
    header: Type.Boolean({ default: true, description: 'First record holds the column names; else columns are named 1, 2, 3 ...' }),
    skipLines: Int(0, 0, 'Preamble lines before the header (report titles and such)'),
    trim: Type.Boolean({ default: true, description: 'Trim blanks around unquoted values' }),
  },
  strict,
);

const XmlFormat = Type.Object(
  {
    kind: Type.Literal('xml'),
    recordPath: Type.String({
      minLength: 2,
      pattern: '^(/[^/]+)+$',
      description: 'Element path of one record, by local names, e.g. /ReceiptExport/Receipts/Receipt (namespaces are matched by local name)',
    }),
    arrays: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Local names of child elements that are always lists, even when they occur once (e.g. Serial)',
    }),
  },
  strict,
);

const JsonFormat = Type.Object(
  {
    kind: Type.Literal('json'),
    recordPath: Type.String({ default: '', description: "Dotted path to the array of records; '' = the document is the array (or one record)" }),
    maxBytes: Int(64 * 1024 * 1024, 1, 'A JSON document is parsed whole: larger files are rejected (use JSON Lines for big exports)'),
  },
  strict,
);

const JsonLinesFormat = Type.Object({ kind: Type.Literal('jsonl') }, strict);

const X12Format = Type.Object(
  {
    kind: Type.Literal('x12'),
    transactionSets: Type.Array(Type.Union([Type.Literal('944'), Type.Literal('945'), Type.Literal('947')]), {
      default: ['944', '945', '947'],
      description: 'Transaction sets this inbox accepts; any other set rejects the file',
    }),
    maxBytes: Int(32 * 1024 * 1024, 1, 'An interchange is parsed whole: larger files are rejected'),
  },
  strict,
);

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
    format: Type.Union([CsvFormat, XmlFormat, JsonFormat, JsonLinesFormat, X12Format]),
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
    maxChunksInFlight: Int(4, 1, 'Commit calls in flight per file', 64),
    maxReportedProblems: Int(1000, 1, 'Bad records listed in an error report; the count covers all'),
  },
  strict,
);

export type FiledropConfigType = Static<typeof FiledropConfig>;
export type FiledropFormat = FiledropConfigType['format'];
export type FiledropMapping = FiledropConfigType['mapping'];
export type FieldSpecType = Static<typeof FieldSpec>;

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
export function withDefaults(config: FiledropConfigType): FiledropConfigType {
  const c = Value.Default(FiledropConfig, structuredClone(config)) as FiledropConfigType;
  c.format = { ...FORMAT_DEFAULTS[c.format.kind], ...c.format } as FiledropFormat;
  return c;
}
