/**
 * The configuration schema: the one place that says which keys exist, what they
 * mean and their defaults (units in the names). Unknown keys are rejected.
 * Each source kind contributes its own section from its folder (protocols/registry.ts).
 */
import { Type, type Static, type TArray } from '@sinclair/typebox';
import { sourceKinds } from '../protocols/registry.js';
import { Int, Section, strict } from './common.js';

export const GatewaySection = Section({
  id: Type.String({ default: 'edge-01', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', description: 'Gateway identity; part of every event source URI' }),
  site: Type.String({ default: 'site', minLength: 1, description: 'Site name used where a partition template has no site' }),
  dataDir: Type.String({ default: './data', minLength: 1, description: 'Where LMDB and source state live (systemd: StateDirectory)' }),
  shutdownDeadlineMs: Int(10_000, 0, 'How long SIGTERM waits for in-flight commits and requests'),
});

export const LogSection = Section({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)), { default: 'info' }),
});

export const BufferSection = Section({
  maxEvents: Int(10_000_000, 1, 'Stop acknowledging sources when this many events wait for the uplink'),
  maxBytes: Int(8 * 1024 ** 3, 1024 * 1024, 'Stop acknowledging when the store holds this many bytes'),
  minFreeDiskBytes: Int(512 * 1024 ** 2, 0, 'Stop acknowledging when the data disk has less free space than this'),
  dedupeMaxEntries: Int(2_000_000, 1000, 'How many recent event ids are remembered to recognise resends'),
  dedupeMaxAgeHours: Int(72, 1, 'How long an event id is remembered to recognise resends'),
  dropWhenFullTypes: Type.Array(Type.String({ minLength: 1 }), {
    default: [],
    description: 'Low-value event types that are dropped (and counted) instead of refused while the buffer is full',
  }),
});

export const RetrySection = Section({
  minDelayMs: Int(500, 1, 'First retry delay (before jitter)'),
  maxDelayMs: Int(60_000, 1, 'Cap on the retry delay'),
  factor: Type.Number({ default: 2, minimum: 1, description: 'Backoff multiplier per attempt' }),
  maxRetryAfterMs: Int(15 * 60_000, 0, 'Longest Retry-After the gateway honours'),
  authRetryMs: Int(5 * 60_000, 1000, 'After 401/403, how long the uplink pauses before trying again'),
});

export const UplinkSection = Section({
  enabled: Type.Boolean({ default: true }),
  url: Type.String({ default: 'http://127.0.0.1:8088/events', pattern: '^https?://', description: 'ERP integration API endpoint' }),
  maxBatchEvents: Int(500, 1, 'Events per batch', 100_000),
  maxBatchBytes: Int(1024 * 1024, 1024, 'Bytes per batch body (before gzip)'),
  // 0: a partition sends as soon as its previous batch is settled; what arrives meanwhile forms the next batch.
  lingerMs: Int(0, 0, 'How long a partition waits to fill a batch before sending a partial one'),
  concurrency: Int(4, 1, 'Partitions sent in parallel', 256),
  requestTimeoutMs: Int(30_000, 100, 'Request timeout; a timeout is retried'),
  gzip: Type.Boolean({ default: false, description: 'Send Content-Encoding: gzip' }),
  bearerToken: Type.Optional(Type.String({ minLength: 1, description: 'Authorization: Bearer token; use a ${env:} or ${file:} reference' })),
  headers: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Extra request headers' }),
  tls: Type.Optional(
    Type.Object(
      {
        certFile: Type.Optional(Type.String({ description: 'Client certificate (PEM) for mTLS' })),
        keyFile: Type.Optional(Type.String({ description: 'Client key (PEM) for mTLS' })),
        passphrase: Type.Optional(Type.String()),
        caFile: Type.Optional(Type.String({ description: 'CA bundle (PEM) that signs the ERP server certificate' })),
        rejectUnauthorized: Type.Boolean({ default: true }),
      },
      strict,
    ),
  ),
  retry: RetrySection,
});

export const WebSection = Section({
  enabled: Type.Boolean({ default: true }),
  host: Type.String({ default: '127.0.0.1' }),
  port: Type.Integer({ default: 8080, minimum: 0, maximum: 65535 }),
});

type SourceSections = { [K in keyof typeof sourceKinds]: TArray<(typeof sourceKinds)[K]['schema']> };
const sourceSections = Object.fromEntries(
  Object.entries(sourceKinds).map(([kind, entry]) => [kind, Type.Array(entry.schema, { default: [] })]),
) as SourceSections;

export const ConfigSchema = Type.Object(
  {
    gateway: GatewaySection,
    log: LogSection,
    buffer: BufferSection,
    uplink: UplinkSection,
    web: WebSection,
    sources: Section(sourceSections, 'Sources by kind; each entry is one named connector'),
  },
  strict,
);

export type Config = Static<typeof ConfigSchema>;
export type UplinkConfig = Config['uplink'];
export type BufferConfig = Config['buffer'];
export type RetryConfig = UplinkConfig['retry'];
