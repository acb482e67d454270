/**
 * filedrop benchmark: a generated receipts CSV (1,000,000 lines; quick: 100,000)
 * dropped into an inbox, read, committed to a real LMDB buffer and archived.
 * Reports records/s (drop to archive) and the peak private memory (RssAnon; the
 * LMDB map is shared file memory and not counted) of a child process that runs
 * only the buffer and the source. Target: ≥ 50,000 records/s, ≤ 150 MiB.
 *
 * The bare building blocks run on the same file in the same run, so the figure
 * compares across machines: papaparse streaming the file, each row's fields as
 * JSON, one durable lmdb-js put per row (the puts of an event-loop turn share a
 * transaction). No mapping, envelope, dedupe, hold or archive.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchFigure } from './figure.js';
import { memOf } from './proc.js';
import type { IngestSink } from '../../src/protocols/source.js';

const SELF = fileURLToPath(import.meta.url);

export async function bench(opts: { quick: boolean }): Promise<BenchFigure[]> {
  const lines = opts.quick ? 100_000 : 1_000_000;
  const root = mkdtempSync(join(tmpdir(), 'pg-bench-filedrop-'));
  try {
    const file = join(root, 'receipts.csv');
    await generate(file, lines);
    // The source alone (a sink that answers at once) and end to end with the real LMDB buffer.
    const alone = await runChild({ root, file, nullSink: true });
    await generate(file, lines);
    const r = await runChild({ root, file });
    const rate = Math.round(lines / (r.ms / 1000));
    await generate(file, lines);
    const bare = await runChild({ root, file, bare: true });
    const bareRate = Math.round(lines / (bare.ms / 1000));
    return [
      { name: `filedrop CSV ${lines.toLocaleString('en')} lines read + mapped (null sink)`, value: Math.round(lines / (alone.ms / 1000)), unit: 'records/s', note: `peak RssAnon ${Math.round(alone.peakAnonKiB / 1024)} MiB` },
      { name: `filedrop CSV ${lines.toLocaleString('en')} lines → committed`, value: rate, unit: 'records/s', target: '≥ 50000', note: `${(rate / bareRate).toFixed(2)}× bare; ${(r.ms / 1000).toFixed(1)} s drop to archive, ${r.committed} committed` },
      { name: 'filedrop private memory (peak RssAnon)', value: Math.round(r.peakAnonKiB / 1024), unit: 'MiB', target: '≤ 150' },
      { name: 'bare papaparse + LMDB put per row', value: bareRate, unit: 'records/s', note: `building block; peak RssAnon ${Math.round(bare.peakAnonKiB / 1024)} MiB` },
    ];
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function generate(file: string, lines: number): Promise<void> {
  const out = createWriteStream(file);
  const write = (s: string) => (out.write(s) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r())));
  await write('\ufeffReceiptNo;PO;SSCC;Item;Description;Lot;Qty;UoM;ReceivedAt;Line\r\n');
  let chunk = '';
  for (let i = 1; i <= lines; i++) {
    chunk += `R-${100000 + (i >> 4)};45000${i % 9973};${String(i).padStart(18, '0')};MAT-${i % 4001};"Bolt M8x40; zinc ""A2""";${String(i % 997).padStart(7, '0')};${i % 500},5;PCE;04.03.2024 06:${String(i % 60).padStart(2, '0')};L${i % 4}\r\n`;
    if (i % 5000 === 0) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
  // On disk before the clock starts: the kernel writing back 100 MB the generator just
  // wrote is not the gateway's work, and it slowed the measured run by up to a fifth.
  const fh = await open(file, 'r');
  await fh.sync();
  await fh.close();
}

function runChild(args: ChildArgs): Promise<{ ms: number; committed: number; peakAnonKiB: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`filedrop bench child failed (exit ${code}): ${out.slice(-500)}`));
      else resolve(JSON.parse(line) as { ms: number; committed: number; peakAnonKiB: number });
    });
  });
}

const rssAnonKiB = (): number => memOf(process.pid)?.anonKiB ?? 0;

interface ChildArgs {
  root: string;
  file: string;
  nullSink?: boolean;
  bare?: boolean;
}

/** The building blocks alone: parse the file, put each row. */
async function bareChild(args: ChildArgs): Promise<void> {
  const { open } = await import('lmdb');
  const Papa = (await import('papaparse')).default;
  const env = open({ path: join(args.root, 'bare.lmdb'), overlappingSync: true, separateFlushed: false } as never);
  const db = env.openDB<string, number>({ name: 'journal', encoding: 'string' });
  let peak = rssAnonKiB();
  const sampler = setInterval(() => (peak = Math.max(peak, rssAnonKiB())), 50);
  const t0 = performance.now();
  let seq = 0;
  let inflight: Promise<boolean>[] = [];
  const waits: Promise<unknown>[] = [];
  await new Promise<void>((resolve, reject) => {
    Papa.parse<string[]>(createReadStream(args.file, { encoding: 'utf8', highWaterMark: 256 * 1024 }) as unknown as File, {
      delimiter: ';',
      step: (row, parser) => {
        inflight.push(db.put(++seq, JSON.stringify(row.data)));
        if (inflight.length >= 1000) {
          // Several transactions in flight, as the gateway's committer keeps them.
          waits.push(Promise.all(inflight));
          inflight = [];
          if (waits.length >= 4) {
            parser.pause();
            void waits.shift()!.then(() => parser.resume());
          }
        }
      },
      complete: () => resolve(),
      error: reject,
    });
  });
  await Promise.all([...waits, ...inflight]);
  const ms = performance.now() - t0;
  clearInterval(sampler);
  await env.close();
  process.stdout.write(`${JSON.stringify({ ms, committed: seq, peakAnonKiB: Math.max(peak, rssAnonKiB()) })}\n`);
}

/** The child: buffer + source only, so its private memory is the source's. */
async function child(args: ChildArgs): Promise<void> {
  (await import('../../src/heap.js')).tuneHeap(); // as the daemon does
  const { openBuffer } = await import('../../src/buffer/store.js');
  const { parseConfig } = await import('../../src/config/load.js');
  const { createLogger } = await import('../../src/logger.js');
  const { createSource } = await import('../../src/protocols/filedrop/index.js');
  const logger = createLogger('silent');
  const dataDir = join(args.root, args.nullSink ? 'data-null' : 'data');
  const inbox = join(args.root, args.nullSink ? 'inbox-null' : 'inbox');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(inbox, { recursive: true });
  const buffer = await openBuffer({ dataDir, config: parseConfig('').config.buffer, gatewayId: 'bench', logger });
  const nullSink: IngestSink = {
    commit: async (items) => items.map((i, n) => ({ id: i.draft.id ?? '', sequence: n, duplicate: false })),
    deadLetter: async () => undefined,
    accepting: () => true,
    committedRanges: () => [],
    // Holds are free here: the source reads the file once, as it does into the buffer.
    holds: { list: () => [], release: async () => undefined, discard: async () => 0 },
  };
  const config = {
    name: 'bench',
    path: inbox,
    pollMs: 10,
    completion: { mode: 'rename' },
    format: { kind: 'csv', delimiter: ';' },
    mapping: {
      type: 'goods.receipt',
      fields: {
        receipt: 'ReceiptNo',
        order: 'PO',
        sscc: 'SSCC',
        item: 'Item',
        description: 'Description',
        lot: 'Lot',
        quantity: { from: 'Qty', as: 'number' },
        unit: 'UoM',
        receivedAt: { from: 'ReceivedAt', as: 'date', format: 'dd.mm.yyyy HH:MM' },
        line: 'Line',
      },
      decimalSeparator: ',',
      subjectField: 'receipt',
      timeField: 'receivedAt',
    },
  };
  const source = createSource(config as unknown as Parameters<typeof createSource>[0], { gatewayId: 'bench', site: 'site1', connector: 'bench', sink: args.nullSink ? nullSink : buffer.sinkFor('bench'), logger, dataDir });
  let peak = rssAnonKiB();
  const sampler = setInterval(() => (peak = Math.max(peak, rssAnonKiB())), 50);
  await source.start();
  const t0 = performance.now();
  renameSync(args.file, join(inbox, 'receipts.csv'));
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    const s = source.status();
    if ((s.counters['filesArchived'] ?? 0) + (s.counters['filesRejected'] ?? 0) >= 1) break;
  }
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, rssAnonKiB());
  const committed = source.status().counters['recordsCommitted'] ?? 0;
  await source.stop();
  await buffer.close();
  process.stdout.write(`${JSON.stringify({ ms, committed, peakAnonKiB: peak })}\n`);
}

if (process.argv[1] === SELF) {
  if (process.argv[2]?.startsWith('{')) {
    const args = JSON.parse(process.argv[2]) as ChildArgs;
    await (args.bare ? bareChild(args) : child(args));
  }
  else for (const f of await bench({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(f));
}
