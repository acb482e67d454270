/**
 * Table names, key shapes and the store schema version. store.ts's header
 * explains what each table holds and what a crash leaves behind.
 */
import type { Database, RootDatabase } from 'lmdb';

export const SCHEMA_VERSION = 1;
export const STORE_FILE = 'plantgate.lmdb';

export const TABLES = {
  meta: 'meta',
  journal: 'journal',
  batches: 'batches',
  dedupe0: 'dedupe.0',
  dedupe1: 'dedupe.1',
  deadLetters: 'dead-letters',
} as const;

/** Journal and batch keys: [partition, sequence]; sorts by partition, then sequence. */
export type PartitionKey = [string, number];

/**
 * The journal, opened as bytes: each event's UTF-8 JSON as stored and sent. The intake
 * puts the Buffer it encoded once, and a seal copies the stored bytes into the request
 * body, with no transcoding on the way.
 */
export type JournalBytes = Database<Buffer, PartitionKey>;

/** The environment and the tables most parts of the store write to. */
export interface CoreTables {
  env: RootDatabase;
  meta: Database;
  journal: JournalBytes;
}

/** Above every sequence: a range end, and the jump to the next partition. */
export const SEQ_MAX = Number.MAX_SAFE_INTEGER;

export const META = {
  schemaVersion: 'schemaVersion',
  storeId: 'storeId',
  /** The highest sequence handed out when events were last removed (settle, dead-letter). */
  lastSequence: 'lastSequence',
  dedupe: 'dedupe',
} as const;

export interface DedupeMeta {
  /** Which of the two generation tables takes new entries. */
  current: 0 | 1;
  startedAt: number;
}

export interface BatchRecord {
  id: string;
  seqs: number[];
  bytes: number;
  sealedAt: string;
}

export function batchId(storeId: string, seqs: number[]): string {
  return `${storeId}-${seqs[0]}-${seqs[seqs.length - 1]}-${seqs.length}`;
}

interface TableStats {
  entryCount: number;
  pageSize: number;
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
}

/** lmdb-js types getStats() loosely; these are the fields mdb_stat reports. O(1). */
export function tableStats(db: { getStats(): unknown }): TableStats {
  return db.getStats() as TableStats;
}
