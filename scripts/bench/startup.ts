/**
 * Start-up bench: the daemon on a data dir holding a large backlog must start as
 * fast as on an empty one (DESIGN: start-up never scans the backlog).
 *
 * Fills a data dir through the real store (openBuffer(...).sinkFor('bench')
 * .commit) in chunks of 1,000 drafts with 8 chunks in flight, 8 partitions,
 * ~300-byte events (10,000,000 full, 1,000,000 quick); closes it; then spawns the
 * daemon on it with the uplink disabled and measures spawn → 'buffer open' and
 * spawn → 'plantgate started' (median of 3 starts), and the same on an empty dir.
 * The full run writes ~6.5 GB (measured ~640 bytes/event incl. the dedupe index) under os.tmpdir() and deletes it afterwards.
 *
 * Standalone: `node dist/scripts/bench/startup.js [--quick]`.
 */
import { mkdirSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBuffer } from '../../src/buffer/store.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import type { BenchFigure } from './figure.js';
import { diskUsage, fmtInt, round, spawnDaemon, tempDir, writeDaemonConfig } from './proc.js';

const PARTITIONS = Array.from({ length: 8 }, (_, i) => `site1/line${i + 1}`);
const CHUNK = 1000;
const IN_FLIGHT = 8;
const STARTS = 3;

function yaml(dataDir: string): string {
  return `
gateway: { id: bench-gw, site: bench, dataDir: ${dataDir}, shutdownDeadlineMs: 5000 }
log: { level: info }
web: { enabled: false }
buffer: { maxEvents: 50000000, maxBytes: 68719476736 }
uplink: { enabled: false }
sources:
  mqttBroker:
    - name: mes
      port: 0
      mappings:
        - topic: plant/{site}/{line}/completion
          type: production.completion
          idField: eventId
`;
}

async function fill(dataDir: string, n: number): Promise<{ rate: number; avgBytes: number }> {
  const { config } = parseConfig('');
  const buffer = await openBuffer({ dataDir, config: { ...config.buffer, maxEvents: 100_000_000, maxBytes: 64 * 1024 ** 3, minFreeDiskBytes: 0 }, gatewayId: 'bench-gw', logger: createLogger('warn') });
  try {
    const sink = buffer.sinkFor('bench');
    const t0 = performance.now();
    const inflight: Promise<unknown>[] = [];
    for (let start = 0; start < n; start += CHUNK) {
      const partitionkey = PARTITIONS[(start / CHUNK) % PARTITIONS.length]!;
      const items = [];
      for (let i = start; i < Math.min(n, start + CHUNK); i++) {
        const wo = `WO-${100000 + (i % 5000)}`;
        items.push({ draft: { id: `bf-${i}`, type: 'production.completion', time: '2026-03-01T08:00:00.000Z', subject: wo, partitionkey, data: { workOrder: wo, qty: i % 97 } } });
      }
      inflight.push(sink.commit(items));
      if (inflight.length >= IN_FLIGHT) await Promise.all(inflight.splice(0, inflight.length - IN_FLIGHT / 2));
    }
    await Promise.all(inflight);
    const rate = n / ((performance.now() - t0) / 1000);
    const stats = buffer.stats();
    if (stats.pendingEvents !== n) throw new Error(`fill: the store holds ${fmtInt(stats.pendingEvents)} events, expected ${fmtInt(n)}`);
    const sample = await buffer.outbox.nextBatch(PARTITIONS[0]!, { maxEvents: 100, maxBytes: 1 << 20 });
    return { rate, avgBytes: sample ? Math.round(sample.bytes / sample.seqs.length) : 0 };
  } finally {
    await buffer.close();
  }
}

/** One daemon start: ms from spawn to 'buffer open' and to 'plantgate started'; then SIGTERM. */
async function timeStart(cfg: string, expected: number): Promise<{ open: number; started: number }> {
  const d = spawnDaemon(cfg);
  try {
    const open = d.waitForLog('buffer open', 60_000);
    const started = d.waitForLog('plantgate started', 60_000);
    const o = await open;
    const s = await started;
    if (o.entry['pendingEvents'] !== expected) throw new Error(`the daemon opened the buffer with ${String(o.entry['pendingEvents'])} pending events, expected ${fmtInt(expected)}`);
    const code = await d.stop();
    if (code !== 0) throw new Error(`the daemon exited with ${code}: ${d.stderr().slice(0, 1000)}`);
    return { open: o.at - d.spawnedAt, started: s.at - d.spawnedAt };
  } finally {
    await d.stop(5000);
  }
}

/**
 * STARTS starts each on the empty and the full data dir, alternating (so machine
 * load drifts hit both alike), after one unmeasured start that warms the page
 * cache for the daemon's own modules. Medians.
 */
async function timeStarts(dir: string, emptyData: string, fullData: string, n: number) {
  const emptyCfg = writeDaemonConfig(join(dir, 'empty-cfg'), yaml(emptyData));
  const fullCfg = writeDaemonConfig(join(dir, 'full-cfg'), yaml(fullData));
  await timeStart(emptyCfg, 0);
  const empty: { open: number; started: number }[] = [];
  const full: { open: number; started: number }[] = [];
  for (let k = 0; k < STARTS; k++) {
    empty.push(await timeStart(emptyCfg, 0));
    full.push(await timeStart(fullCfg, n));
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const sum = (a: { open: number; started: number }[]) => ({ open: med(a.map((x) => x.open)), started: med(a.map((x) => x.started)), maxStarted: Math.max(...a.map((x) => x.started)) });
  return { empty: sum(empty), backlog: sum(full) };
}

export async function bench(opts: { quick: boolean }): Promise<BenchFigure[]> {
  const n = opts.quick ? 1_000_000 : 10_000_000;
  const needBytes = Math.ceil(n * 700); // measured: ~640 bytes/event on disk with the dedupe index
  const fs = statfsSync(tmpdir());
  const free = fs.bavail * fs.bsize;
  console.log(`  startup: writes a ${fmtInt(n)}-event backlog (~${(needBytes / 1024 ** 3).toFixed(1)} GB) under ${tmpdir()}; deleted afterwards`);
  if (free < needBytes * 1.3) throw new Error(`startup needs ~${(needBytes / 1024 ** 3).toFixed(1)} GB free under ${tmpdir()}; ${(free / 1024 ** 3).toFixed(1)} GB free. Set TMPDIR to a bigger disk.`);
  const tmp = tempDir('startup');
  try {
    mkdirSync(join(tmp.path, 'empty-cfg'));
    mkdirSync(join(tmp.path, 'full-cfg'));
    const emptyData = join(tmp.path, 'empty');
    const fullData = join(tmp.path, 'backlog');
    const filled = await fill(fullData, n);
    const size = diskUsage(fullData);
    const { empty, backlog } = await timeStarts(tmp.path, emptyData, fullData, n);
    return [
      {
        name: `start-up with a ${fmtInt(n)}-event backlog (spawn → 'plantgate started')`,
        value: Math.round(backlog.started),
        unit: 'ms',
        target: '≤ 2,000 ms',
        note: `empty data dir: ${Math.round(empty.started)} ms (${round(backlog.started / empty.started, 2)}×); median of ${STARTS} alternating starts after a warm-up start, slowest ${Math.round(backlog.maxStarted)} ms; page cache warm`,
      },
      { name: `  spawn → 'buffer open', ${fmtInt(n)}-event backlog`, value: Math.round(backlog.open), unit: 'ms', note: `empty data dir: ${Math.round(empty.open)} ms` },
      { name: `  backlog on disk`, value: round(size / 1024 ** 2, 0), unit: 'MiB', note: `${fmtInt(n)} events of ~${filled.avgBytes} bytes (as sent), 8 partitions; ${round(size / n, 0)} bytes/event on disk incl. dedupe index` },
      { name: `  backlog fill (sink.commit, ${CHUNK} per commit, ${IN_FLIGHT} in flight)`, value: Math.round(filled.rate), unit: 'events/s' },
    ];
  } finally {
    tmp.remove();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of await bench({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(f));
}
