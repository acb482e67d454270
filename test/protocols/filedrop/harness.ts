/** Shared set-up for the filedrop tests: a temp inbox, a real LMDB buffer, a started source. */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { createLogger } from '../../../src/logger.js';
import type { BufferStore } from '../../../src/buffer/store.js';
import { createSource } from '../../../src/protocols/filedrop/index.js';
import type { FiledropConfigType } from '../../../src/protocols/filedrop/config.js';
import type { IngestSink, Source } from '../../../src/protocols/source.js';
import { contractBuffer } from '../../helpers/source-contract.js';
import { tempDir } from '../../helpers/tmp.js';
import { waitFor } from '../../helpers/net.js';

// Compiled tests run from dist/test/...; the fixtures stay in the source tree.
export const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/filedrop/', import.meta.url));

export type PartialConfig = Partial<Omit<FiledropConfigType, 'format' | 'mapping' | 'completion'>> & {
  format: FiledropConfigType['format'] | { kind: string; [k: string]: unknown };
  mapping?: Partial<FiledropConfigType['mapping']>;
  completion?: Partial<FiledropConfigType['completion']>;
};

export interface Inbox {
  dir: string;
  dataDir: string;
  buffer: BufferStore;
  source: Source;
  sink: IngestSink;
  /** Drops a fixture (or given bytes) atomically: written under .name.tmp, then renamed. */
  drop(name: string, content?: Buffer | string): void;
  archived(): string[];
  errors(): string[];
  events(): Promise<Record<string, unknown>[]>;
  waitSettled(count: number, what?: string): Promise<void>;
}

export async function openInbox(t: TestContext, partial: PartialConfig, opts: { sink?: (s: IngestSink) => IngestSink; start?: boolean } = {}): Promise<Inbox> {
  const root = tempDir(t, 'pg-filedrop-');
  const dir = join(root, 'inbox');
  const dataDir = join(root, 'data');
  mkdirSync(dir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const buffer = await contractBuffer(t, dataDir);
  const inner = buffer.sinkFor('wms');
  const sink = opts.sink ? opts.sink(inner) : inner;
  const config = {
    name: 'wms',
    path: dir,
    pollMs: 20,
    retryMs: 50,
    ...partial,
    completion: { mode: 'rename', ...partial.completion },
    mapping: { ...partial.mapping },
  } as FiledropConfigType;
  const source = createSource(config, { gatewayId: 'test-gw', site: 'site1', connector: 'wms', sink, logger: createLogger('silent'), dataDir });
  if (opts.start !== false) await source.start();
  t.after(() => source.stop());

  const inbox: Inbox = {
    dir,
    dataDir,
    buffer,
    source,
    sink,
    drop(name, content) {
      const tmp = join(dir, `.${name}.tmp`);
      if (content === undefined) copyFileSync(join(FIXTURES, name), tmp);
      else writeFileSync(tmp, content);
      renameSync(tmp, join(dir, name));
    },
    archived: () => listFiles(join(dir, 'archive')),
    errors: () => listFiles(join(dir, 'error')),
    events: () => allEvents(buffer),
    async waitSettled(count, what = `${count} file(s) archived or rejected`) {
      await waitFor(() => {
        const s = source.status().counters;
        return (s['filesArchived'] ?? 0) + (s['filesRejected'] ?? 0) >= count;
      }, what, 10_000);
    },
  };
  return inbox;
}

/** Every event in the buffer, in sequence order (seals batches: call once, at the end of a test). */
export async function allEvents(buffer: BufferStore): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const p of buffer.outbox.partitions()) {
    for (let i = 0; i < 1000; i++) {
      const batch = await buffer.outbox.nextBatch(p, { maxEvents: 100_000, maxBytes: 1024 ** 3 });
      if (!batch) break;
      out.push(...buffer.outbox.events(batch));
      await buffer.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
    }
  }
  return out.sort((a, b) => Number(a['sequence']) - Number(b['sequence']));
}

export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p).map((n) => `${name}/${n}`));
    else out.push(name);
  }
  return out.sort();
}

export function readReport(inbox: Inbox, name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(inbox.dir, 'error', `${name}.error.json`), 'utf8')) as Record<string, unknown>;
}

/** The first problem of a file's error report. */
export function firstProblem(inbox: Inbox, name: string): Record<string, unknown> {
  return (readReport(inbox, name)['problems'] as Record<string, unknown>[])[0]!;
}

export function data(e: Record<string, unknown>): Record<string, unknown> {
  return e['data'] as Record<string, unknown>;
}
