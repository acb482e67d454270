/**
 * Ingest bench: durable QoS 1 ingest with the ERP down (uplink.url points at a
 * closed port), the REAL daemon as a child process, and the lean load generator
 * (load-publisher.ts) in another child: 8 connections, 1,000 unacked per
 * connection, ~257-byte JSON payloads with unique event ids over 8 lines (8
 * partitions). Then one connection. Then, on a fresh store, 8 connections whose event
 * ids are UUIDs in no order (the dedupe index then grows at random places). Then the
 * bare building block (bare-broker.ts:
 * aedes + lmdb-js put before PUBACK) with the same generator, in the same run, so
 * the gateway's figures come with a ratio that compares across machines.
 *
 * Verified: after the daemon stops, the store holds exactly as many events as
 * the publishers got PUBACKs for (each eventId is unique, so no dedupe hits).
 *
 * BENCH_CPU_PROF=<dir> runs the daemon with `node --cpu-prof` into that dir.
 * Standalone: `node dist/scripts/bench/ingest.js [--quick]`.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openBuffer } from '../../src/buffer/store.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import type { BenchFigure } from './figure.js';
import type { PublisherResult } from './load-publisher.js';
import { Sampler, fmtInt, freePort, round, runChild, spawnDaemon, startServerChild, tempDir, waitForPort, writeDaemonConfig, type DaemonChild } from './proc.js';

const CONNECTIONS = 8;
const WINDOW = 1000;
const LINES = 8;

interface Run {
  pub: PublisherResult;
  /** The broker process's CPU (cores) and peak memory over the run. */
  cpuCores: number;
  peakAnonMiB: number;
  peakFileMiB: number;
}

export function ingestYaml(dataDir: string, mqttPort: number, erpUrl: string, extra = ''): string {
  return `
gateway: { id: bench-gw, site: bench, dataDir: ${dataDir}, shutdownDeadlineMs: 5000 }
log: { level: warn }
web: { enabled: false }
buffer: { maxEvents: 50000000 }
uplink:
  url: ${erpUrl}
${extra}
sources:
  mqttBroker:
    - name: mes
      port: ${mqttPort}
      mappings:
        - topic: plant/{site}/{line}/completion
          type: production.completion
          idField: eventId
          subjectField: workOrder
          timeField: timestamp
`;
}

export function daemonNodeArgs(): string[] {
  const dir = process.env['BENCH_CPU_PROF'];
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

async function publish(port: number, connections: number, count: number, pid: number, capMs: number, ids: 'ascending' | 'uuid' = 'ascending'): Promise<Run> {
  const sampler = new Sampler(pid);
  const child = runChild<PublisherResult>('load-publisher', { port, mode: 'flood', connections, count, window: WINDOW, lines: LINES, tag: randomBytes(3).toString('hex'), ids, timeCapMs: capMs }, capMs + 30_000);
  try {
    const pub = await child.result;
    const s = sampler.stop();
    if (pub.timedOut) throw new Error(`the publisher hit its ${capMs} ms cap with ${fmtInt(pub.acked)} of ${fmtInt(count)} acknowledged (${fmtInt(pub.ackedPerSec)}/s)`);
    return { pub, cpuCores: s.cores, peakAnonMiB: s.peakAnonMiB, peakFileMiB: s.peakFileMiB };
  } finally {
    sampler.stop();
    child.kill();
  }
}

export async function bench(opts: { quick: boolean }): Promise<BenchFigure[]> {
  const n = opts.quick ? 200_000 : 1_000_000;
  const nSingle = n / 2;
  const capMs = opts.quick ? 60_000 : 180_000;
  const tmp = tempDir('ingest');
  let bare: Awaited<ReturnType<typeof startServerChild>> | undefined;
  try {
    // ---- the gateway: ids ascending per connection, then (a fresh store) UUID ids ----
    const asc = await gatewayRuns(join(tmp.path, 'asc'), 'ascending', capMs, [CONNECTIONS, n], [1, nSingle]);
    const [gw8, gw1] = asc.runs as [Run, Run];
    const stored = asc.stored;
    const uuid = await gatewayRuns(join(tmp.path, 'uuid'), 'uuid', capMs, [CONNECTIONS, n]);
    const gwUuid = uuid.runs[0]!;

    // ---- the bare building block, same generator, same machine, same run ----
    const bareDir = tempDir('bare');
    try {
      bare = await startServerChild('bare-broker', { dir: bareDir.path }, 20_000);
      const port = bare.ready['port'] as number;
      const bare8 = await publish(port, CONNECTIONS, n, bare.pid, capMs);
      const bare1 = await publish(port, 1, nSingle, bare.pid, capMs);
      await bare.stop();
      bare = undefined;

      const ratio = (a: Run, b: Run) => round(a.pub.ackedPerSec / b.pub.ackedPerSec, 2);
      const cpu = (r: Run) => `broker ${round(r.cpuCores, 2)} cores, generator ${round(r.pub.cpuCores, 2)} cores`;
      return [
        {
          name: 'durable QoS 1 ingest, ERP down, 8 publisher connections',
          value: Math.round(gw8.pub.ackedPerSec),
          unit: 'events/s',
          target: '≥ 100,000 events/s',
          note: `${ratio(gw8, bare8)}× bare; ${fmtInt(n)} events, ${gw8.pub.payloadBytes} B, window ${WINDOW}/conn; ${cpu(gw8)}; store verified (${fmtInt(stored)} = PUBACKs)`,
        },
        {
          name: 'same, 8 connections, random (UUID) event ids, fresh store',
          value: Math.round(gwUuid.pub.ackedPerSec),
          unit: 'events/s',
          note: `${ratio(gwUuid, bare8)}× bare; ${fmtInt(n)} events; ${cpu(gwUuid)}; store verified (${fmtInt(uuid.stored)} = PUBACKs)`,
        },
        {
          name: 'durable QoS 1 ingest, ERP down, 1 publisher',
          value: Math.round(gw1.pub.ackedPerSec),
          unit: 'events/s',
          note: `${ratio(gw1, bare1)}× bare; ${fmtInt(nSingle)} events; ${cpu(gw1)}`,
        },
        {
          name: 'gateway private memory during ingest (RssAnon, peak)',
          value: Math.round(Math.max(gw8.peakAnonMiB, gw1.peakAnonMiB, gwUuid.peakAnonMiB)),
          unit: 'MiB',
          target: '≤ 150 MiB',
          note: `bare: ${Math.round(Math.max(bare8.peakAnonMiB, bare1.peakAnonMiB))} MiB; mapped LMDB file (RssFile) peak ${Math.round(Math.max(gw8.peakFileMiB, gw1.peakFileMiB, gwUuid.peakFileMiB))} MiB, not counted`,
        },
        { name: 'bare aedes + LMDB put before PUBACK, 8 connections', value: Math.round(bare8.pub.ackedPerSec), unit: 'events/s', note: `building block; ${cpu(bare8)}` },
        { name: 'bare aedes + LMDB put before PUBACK, 1 connection', value: Math.round(bare1.pub.ackedPerSec), unit: 'events/s', note: `building block; ${cpu(bare1)}` },
      ];
    } finally {
      await bare?.stop();
      bareDir.remove();
    }
  } finally {
    tmp.remove();
  }
}

/** A fresh daemon on its own data dir; each [connections, count] run in turn; the store verified against the PUBACKs. */
async function gatewayRuns(root: string, ids: 'ascending' | 'uuid', capMs: number, ...runs: [number, number][]): Promise<{ runs: Run[]; stored: number }> {
  mkdirSync(root, { recursive: true });
  const mqttPort = await freePort();
  const closedPort = await freePort(); // nothing listens: the ERP is down
  const dataDir = join(root, 'data');
  const cfg = writeDaemonConfig(root, ingestYaml(dataDir, mqttPort, `http://127.0.0.1:${closedPort}/events`));
  let daemon: DaemonChild | undefined = spawnDaemon(cfg, { nodeArgs: daemonNodeArgs() });
  try {
    const d = daemon;
    await waitForPort(mqttPort, 20_000, () => d.alive());
    const results: Run[] = [];
    for (const [connections, count] of runs) results.push(await publish(mqttPort, connections, count, d.pid, capMs, ids));
    const code = await d.stop();
    daemon = undefined;
    if (code !== 0) throw new Error(`the daemon exited with ${code} after SIGTERM: ${d.stderr().slice(0, 1000)}`);
    const errors = d.logs.filter((l) => typeof l['level'] === 'number' && (l['level'] as number) >= 50);
    if (errors.length > 0) throw new Error(`the daemon logged errors: ${JSON.stringify(errors.slice(0, 3))}`);
    const { stored, deadLetters } = await storedEvents(dataDir);
    const acked = results.reduce((sum, r) => sum + r.pub.acked, 0);
    if (stored !== acked || deadLetters !== 0) throw new Error(`verification failed (${ids} ids): publishers got ${fmtInt(acked)} PUBACKs but the store holds ${fmtInt(stored)} events and ${fmtInt(deadLetters)} dead letters`);
    return { runs: results, stored };
  } finally {
    await daemon?.stop(5000);
  }
}

/** Events in the journal (opened read-only after the daemon stopped). */
async function storedEvents(dataDir: string): Promise<{ stored: number; deadLetters: number }> {
  const { config } = parseConfig('');
  const buffer = await openBuffer({ dataDir, config: { ...config.buffer, maxEvents: 100_000_000 }, gatewayId: 'bench-gw', logger: createLogger('warn') });
  try {
    const s = buffer.stats();
    return { stored: s.pendingEvents, deadLetters: s.deadLetters };
  } finally {
    await buffer.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of await bench({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(f));
}
