/**
 * Drain bench: how fast the uplink empties a full buffer into the ERP, in order,
 * with durable acknowledgements, against the mock ERP in a separate process (so
 * the two do not share one event loop). Also measures the bare building block —
 * LMDB getRange → undici POST of 500 events → durable remove, one request in
 * flight — and prints the gateway's figure as a ratio to it.
 *
 * Every run is verified against the mock's report: all events accepted, no
 * duplicate, no order violation. A bench that passes wrong data is not a figure.
 *
 * Standalone: `node dist/scripts/bench/drain.js [--quick]`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { request, Pool } from 'undici';
import { openBuffer } from '../../src/buffer/store.js';
import { parseConfig } from '../../src/config/load.js';
import { tuneHeap } from '../../src/heap.js';
import { createLogger } from '../../src/logger.js';
import { createUplink } from '../../src/uplink/uplink.js';
import type { MockReport } from '../mock-erp/server.js';
import type { BenchFigure } from './figure.js';
import { memOf, withTimeout } from './proc.js';

const rssAnonKiB = (): number => memOf(process.pid)?.anonKiB ?? 0;

const PARTITIONS = Array.from({ length: 8 }, (_, i) => `site1/line${i + 1}`);
const BATCH = 500;
const CONTENT_TYPE = 'application/cloudevents-batch+json';

export async function bench(opts: { quick: boolean }): Promise<BenchFigure[]> {
  const n = opts.quick ? 100_000 : 1_000_000;
  const erp = await startChildErp();
  try {
    const bare = await bareDrain(n, erp.url);
    await verify(erp, n, 'bare drain');
    await request(`${erp.base}/_reset`, { method: 'POST' }).then((r) => r.body.dump());
    const gw = await gatewayDrain(n, erp.url);
    await verify(erp, n, 'uplink drain');
    return [
      { name: 'buffer fill (sink.commit, 1000 per commit)', value: Math.round(gw.fillRate), unit: 'events/s', note: `${n.toLocaleString('en-US')} events, ~${gw.avgBytes} bytes each, 8 partitions` },
      { name: 'uplink drain, LMDB → mock ERP (ordered, durable acks)', value: Math.round(gw.rate), unit: 'events/s', target: '≥ 200000', note: `concurrency ${gw.concurrency}, ${BATCH} per batch, verified: all accepted once, in order` },
      { name: 'bare drain loop (getRange → POST 500 → durable remove)', value: Math.round(bare), unit: 'events/s', note: 'one request in flight' },
      { name: 'uplink drain / bare drain', value: Math.round((gw.rate / bare) * 100) / 100, unit: '×' },
      { name: 'gateway private memory during drain (RssAnon, peak)', value: Math.round(gw.peakAnonMiB), unit: 'MiB', note: 'the LMDB map is file-backed and not counted' },
    ];
  } finally {
    await erp.stop();
  }
}

function event(i: number, partition: string, seq?: number) {
  return {
    id: `bench-${i}`,
    type: 'production.completion',
    time: '2026-03-01T08:00:00.000Z',
    partitionkey: partition,
    data: { workOrder: `WO-${100000 + (i % 5000)}`, qty: i % 97 },
    ...(seq !== undefined ? { sequence: String(seq) } : {}),
  };
}

async function gatewayDrain(n: number, url: string) {
  tuneHeap(); // the buffer and uplink run in this process: give it the daemon's heap settings
  const dir = mkdtempSync(join(tmpdir(), 'plantgate-bench-'));
  const { config } = parseConfig('');
  const buffer = await openBuffer({ dataDir: dir, config: { ...config.buffer, maxEvents: 100_000_000 }, gatewayId: 'bench', logger: createLogger('warn') });
  try {
    const sink = buffer.sinkFor('bench');
    const t0 = performance.now();
    const inflight: Promise<unknown>[] = [];
    for (let start = 0; start < n; start += 1000) {
      const items = [];
      for (let i = start; i < Math.min(n, start + 1000); i++) items.push({ draft: event(i, PARTITIONS[Math.floor(i / 1000) % PARTITIONS.length]!) });
      inflight.push(sink.commit(items));
      if (inflight.length >= 8) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
    const fillRate = n / ((performance.now() - t0) / 1000);

    // One partition is never sent in parallel with itself, so concurrency beyond the
    // partition count buys nothing; the bench uses one slot per partition.
    const uplinkConfig = { ...config.uplink, url, lingerMs: 0, maxBatchEvents: BATCH, concurrency: PARTITIONS.length };
    const uplink = createUplink({ config: uplinkConfig, outbox: buffer.outbox, logger: createLogger('warn') });
    let delivered = 0;
    let bytes = 0;
    let peakAnon = rssAnonKiB();
    const sampler = setInterval(() => (peakAnon = Math.max(peakAnon, rssAnonKiB())), 100);
    const done = new Promise<void>((resolve) =>
      uplink.on('delivered', (d) => {
        delivered += d.events;
        if (delivered >= n) resolve();
      }),
    );
    // Seals the first batch the uplink would seal anyway, to report the event size.
    const first = await buffer.outbox.nextBatch(PARTITIONS[0]!, { maxEvents: BATCH, maxBytes: uplinkConfig.maxBatchBytes });
    if (first) bytes = first.bytes / first.seqs.length;
    const t1 = performance.now();
    uplink.start();
    await withTimeout(done, Math.max(120_000, n / 5), 'the uplink drain');
    const rate = n / ((performance.now() - t1) / 1000);
    clearInterval(sampler);
    await uplink.stop(5000);
    return { rate, fillRate, peakAnonMiB: peakAnon / 1024, avgBytes: Math.round(bytes), concurrency: uplinkConfig.concurrency };
  } finally {
    await buffer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The building block: what one ordered loop over LMDB and undici does with nothing else around it. */
async function bareDrain(n: number, url: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'plantgate-bare-'));
  const env = open({ path: join(dir, 'bare.lmdb'), overlappingSync: true, separateFlushed: false } as never);
  const db = env.openDB<string, [string, number]>({ name: 'journal', encoding: 'string' });
  const pool = new Pool(new URL(url).origin, { connections: 1, pipelining: 1 });
  try {
    const puts: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const p = PARTITIONS[Math.floor(i / 1000) % PARTITIONS.length]!;
      puts.push(db.put([p, i + 1], JSON.stringify(event(i, p, i + 1))));
      if (puts.length >= 10_000) await Promise.all(puts.splice(0));
    }
    await Promise.all(puts);
    const path = new URL(url).pathname;
    let sent = 0;
    let batch = 0;
    const t0 = performance.now();
    for (const p of PARTITIONS) {
      for (;;) {
        const keys: number[] = [];
        const values: string[] = [];
        for (const { key, value } of db.getRange({ start: [p, 0], end: [p, Number.MAX_SAFE_INTEGER], limit: BATCH })) {
          keys.push(key[1]);
          values.push(value);
        }
        if (keys.length === 0) break;
        const res = await pool.request({ path, method: 'POST', headers: { 'content-type': CONTENT_TYPE, 'idempotency-key': `bare-${batch++}` }, body: `[${values.join(',')}]` });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`bare drain: ERP answered ${res.statusCode}`);
        await env.transaction(() => {
          for (const k of keys) db.remove([p, k]);
        });
        sent += keys.length;
      }
    }
    return sent / ((performance.now() - t0) / 1000);
  } finally {
    await pool.close();
    await env.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function verify(erp: { base: string }, n: number, what: string): Promise<void> {
  const r = (await (await request(`${erp.base}/_report`)).body.json()) as MockReport;
  const problems = [
    r.accepted !== n && `accepted ${r.accepted} of ${n}`,
    r.duplicates > 0 && `${r.duplicates} duplicates`,
    r.orderViolations > 0 && `${r.orderViolations} order violations`,
    r.contractViolations > 0 && `${r.contractViolations} contract violations`,
  ].filter(Boolean);
  if (problems.length > 0) throw new Error(`${what} failed verification: ${problems.join(', ')}`);
}

/** The mock ERP in its own process, on a port it picks itself. */
async function startChildErp(): Promise<{ url: string; base: string; stop: () => Promise<void> }> {
  const script = fileURLToPath(new URL('../mock-erp.js', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve(line.trim());
      });
      child.once('exit', (code) => reject(new Error(`mock ERP exited with ${code}`)));
    }),
    10_000,
    'the mock ERP to start',
  );
  return {
    url,
    base: new URL(url).origin,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const figures = await bench({ quick: process.argv.includes('--quick') });
  for (const f of figures) console.log(`${f.name}: ${f.value.toLocaleString('en-US')} ${f.unit}${f.target ? ` (target ${f.target})` : ''}${f.note ? ` — ${f.note}` : ''}`);
}
