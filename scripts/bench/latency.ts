/**
 * Latency bench: a steady 10,000 events/s in and out. The daemon runs as a child
 * process; its uplink points at a tiny HTTP receiver in this process (node:http,
 * reads each batch, answers 200 at once); a paced publisher child sends 50
 * QoS 1 messages every 5 ms over 4 connections (4 lines → 4 partitions), each
 * payload carrying `sentAt` = performance.timeOrigin + performance.now() just
 * before its packet is written. Per event: latency = (receiver's clock when the
 * batch body arrived) − sentAt, i.e. publish → ERP accepted. The publisher and the
 * receiver share the two cores with the daemon, and their own pauses would count as
 * the gateway's latency, so both are kept lean: the publisher stamps sentAt after
 * encoding a tick's packets (its collections reached 23 ms in a run, and one while
 * it encoded counted as latency); the receiver reads each event's id and sentAt from the body
 * bytes instead of parsing every event into objects (that parse, and the
 * collections it caused, were a third of the receiver's CPU, with pauses of up to
 * 16 ms), and keeps no object per event. The first WARMUP_MS are warm-up: a fresh
 * daemon compiles its hot paths and opens its connections while the load already
 * runs, falls behind by a few hundred ms and catches up over the next two seconds
 * (measured: p50 261 ms in second 0, p99 29–62 ms in seconds 1–2, 15–34 ms after).
 * The steady figures skip it; the warm-up's own p99 is printed beside them.
 *
 * Beside the p99 over the steady part it prints the lowest and highest p99 of its
 * 5 s windows and how busy the whole machine was (all cores, every process): on two
 * cores shared with the publisher and the receiver, the tail follows that load.
 *
 * The bare building blocks (bare-relay.ts: aedes, an LMDB put before the PUBACK, an
 * undici POST per partition, a durable remove) run under the same load to the same
 * receiver, alternating with the gateway at its default uplink.lingerMs (three rounds
 * of one each; one with --quick), each on a fresh process and data dir: on a shared
 * machine the tail drifts with the load of the minute, so each gateway run is compared
 * with a bare run just before it. The p99 is over all rounds' events, and printed as a
 * ratio to the bare runs' p99 and per round. Last, one run with lingerMs 20.
 * Verified: every event the publisher got a PUBACK for arrives, none twice.
 *
 * Standalone: `node dist/scripts/bench/latency.js [--quick]`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UplinkSection } from '../../src/config/schema.js';
import type { BenchFigure } from './figure.js';
import { daemonNodeArgs, ingestYaml } from './ingest.js';
import type { PublisherResult } from './load-publisher.js';
import { Sampler, fmtInt, freePort, quantile, round, runChild, sleep, spawnDaemon, startServerChild, tempDir, waitForPort, writeDaemonConfig } from './proc.js';

/** BENCH_LATENCY_RATE overrides the rate, to see latency below saturation on a busy machine. */
const RATE = Number(process.env['BENCH_LATENCY_RATE'] ?? 10_000);
const TICK_MS = 5;
const CONNECTIONS = 4;
const WARMUP_MS = 3000;
/** The steady part is also cut into windows this long, to show how the p99 moves within one run. */
const WINDOW_MS = 5000;

/** Doubles in one typed array: a run's samples put no objects on the receiver's heap for its collector to walk. */
class Samples {
  private values = new Float64Array(1 << 18);
  length = 0;

  push(v: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = v;
  }

  at(i: number): number {
    return this.values[i]!;
  }
}

interface Receiver {
  url: string;
  server: Server;
  /** Events received: latency (ms) and sentAt, in arrival order. */
  latency: Samples;
  sentAt: Samples;
  /** Keys of the event ids seen (idKey): small integers, no strings kept. */
  ids: Set<number>;
  duplicates: number;
  batches: number;
  reset(): void;
}

async function startReceiver(): Promise<Receiver> {
  const r: Receiver = {
    url: '',
    server: undefined as unknown as Server,
    latency: new Samples(),
    sentAt: new Samples(),
    ids: new Set(),
    duplicates: 0,
    batches: 0,
    reset() {
      r.latency = new Samples();
      r.sentAt = new Samples();
      r.ids = new Set();
      r.duplicates = 0;
      r.batches = 0;
    },
  };
  // The receiver stands in for the ERP on the same two cores: its own pauses would count as
  // the gateway's latency, so it keeps nothing per event on the heap (its collections reached
  // 25 ms in a run while it kept every id as a string and every sample in an array).
  const onEvent = (now: number, key: number, sentAt: number): void => {
    if (r.ids.has(key)) {
      r.duplicates++;
      return;
    }
    r.ids.add(key);
    r.latency.push(now - sentAt);
    r.sentAt.push(sentAt);
  };
  r.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const now = performance.timeOrigin + performance.now();
      if (!readEvents(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), now, onEvent)) {
        res.writeHead(400).end();
        return;
      }
      r.batches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  r.server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', () => resolve()));
  r.url = `http://127.0.0.1:${(r.server.address() as { port: number }).port}/events`;
  return r;
}

const ID = Buffer.from('"id":"');
const SENT_AT = Buffer.from('"sentAt":');
/** The publisher's event ids end in `-<connection, 2 digits>-<sequence, 9 digits>`. */
const ID_TAIL = 13;

/**
 * Each event's id and data.sentAt, read from the body bytes in the order the gateway
 * writes its envelope (id first, data last), handed to `onEvent` with the id as a small
 * integer (connection × 10^7 + sequence); false unless the body is a JSON array in which
 * every event has both, with an id of the publisher's shape.
 */
function readEvents(body: Buffer, now: number, onEvent: (now: number, key: number, sentAt: number) => void): boolean {
  if (body[0] !== 0x5b || body[body.length - 1] !== 0x5d) return false;
  let events = 0;
  for (let at = body.indexOf(ID); at >= 0; at = body.indexOf(ID, at)) {
    const start = at + ID.length;
    const end = body.indexOf(0x22, start);
    const field = end < 0 ? -1 : body.indexOf(SENT_AT, end);
    if (field < 0 || end - start < ID_TAIL || body[end - 10] !== 0x2d || body[end - 13] !== 0x2d) return false;
    const conn = digits(body, end - 12, end - 10);
    const seq = digits(body, end - 9, end);
    const sentAt = Number.parseFloat(body.toString('latin1', field + SENT_AT.length, field + SENT_AT.length + 24));
    if (conn < 0 || seq < 0 || seq >= 1e7 || !Number.isFinite(sentAt)) return false;
    onEvent(now, conn * 1e7 + seq, sentAt);
    events++;
    at = field;
  }
  return events > 0;
}

/** The decimal number in body[from, to), or -1 if it holds anything but digits. */
function digits(body: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = body[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

interface RunResult {
  target: Target;
  /** p99 over the warm-up (start-up catch-up), for the record. */
  warmupP99: number;
  /** Latencies (ms) of the events after the warm-up, ascending. */
  latencies: number[];
  rate: number;
  peakAnonMiB: number;
  daemonCores: number;
  /** Share of the machine's CPU time (all cores, all processes) that was busy during the run. */
  machineBusy: number;
  /** Lowest and highest p99 of the steady part's WINDOW_MS windows. */
  windowP99: [number, number];
  pub: PublisherResult;
  batches: number;
}

/** What the publisher sends to: the gateway with its default or a given linger, or the bare building blocks. */
type Target = { kind: 'gateway'; lingerMs?: number } | { kind: 'bare' };

/** A started target: the daemon or bare-relay.ts. */
interface Relay {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

const DEFAULT_LINGER_MS = (UplinkSection.properties.lingerMs as unknown as { default: number }).default;

async function startGateway(dir: string, receiver: Receiver, lingerMs: number | undefined): Promise<Relay> {
  const port = await freePort();
  const extra = lingerMs !== undefined ? `  lingerMs: ${lingerMs}` : '';
  const cfg = writeDaemonConfig(dir, ingestYaml(join(dir, 'data'), port, receiver.url, extra));
  const daemon = spawnDaemon(cfg, { nodeArgs: daemonNodeArgs() });
  try {
    await waitForPort(port, 20_000, () => daemon.alive());
  } catch (err) {
    await daemon.stop(5000);
    throw err;
  }
  return { port, pid: daemon.pid, stop: () => daemon.stop(5000).then(() => undefined) };
}

async function startBare(dir: string, receiver: Receiver): Promise<Relay> {
  const bare = await startServerChild('bare-relay', { dir, url: receiver.url }, 20_000);
  return { port: bare.ready['port'] as number, pid: bare.pid, stop: bare.stop };
}

/** One run against a fresh process and data dir. */
async function run(receiver: Receiver, target: Target, durationMs: number): Promise<RunResult> {
  receiver.reset();
  // The benches before this one leave gigabytes of LMDB files being written back; this
  // one is not to measure their writeback (in a full run without this sync: p99 47 ms,
  // against 24-31 ms run alone).
  spawnSync('sync');
  const tmp = tempDir('latency');
  let relay: Relay | undefined;
  try {
    relay = target.kind === 'bare' ? await startBare(tmp.path, receiver) : await startGateway(tmp.path, receiver, target.lingerMs);
    const { port } = relay;
    const sampler = new Sampler(relay.pid);
    const child = runChild<PublisherResult>('load-publisher', { port, mode: 'paced', connections: CONNECTIONS, rate: RATE, durationMs, tickMs: TICK_MS, window: 1000, lines: CONNECTIONS, tag: randomBytes(3).toString('hex'), timeCapMs: 10_000 }, durationMs + 30_000);
    let pub: PublisherResult;
    try {
      pub = await child.result;
    } finally {
      child.kill();
    }
    // Everything acknowledged must arrive (bounded wait).
    const deadline = performance.now() + 15_000;
    while (receiver.ids.size < pub.acked && performance.now() < deadline) await sleep(20);
    const s = sampler.stop();
    await relay.stop();
    relay = undefined;
    if (receiver.ids.size < pub.acked) throw new Error(`verification failed: ${fmtInt(pub.acked)} events acknowledged, ${fmtInt(receiver.ids.size)} reached the receiver within 15 s`);
    if (receiver.duplicates > 0) throw new Error(`verification failed: the receiver saw ${receiver.duplicates} events twice`);
    if (pub.acked < pub.sent) throw new Error(`the publisher got ${fmtInt(pub.acked)} PUBACKs for ${fmtInt(pub.sent)} messages`);

    let t0 = Number.POSITIVE_INFINITY;
    for (let i = 0; i < Math.min(1000, receiver.sentAt.length); i++) t0 = Math.min(t0, receiver.sentAt.at(i));
    const measured: number[] = [];
    const warmup: number[] = [];
    const windows: number[][] = [];
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (let i = 0; i < receiver.latency.length; i++) {
      const sent = receiver.sentAt.at(i);
      const latency = receiver.latency.at(i);
      if (sent < t0 + WARMUP_MS) {
        warmup.push(latency);
        continue;
      }
      measured.push(latency);
      (windows[Math.floor((sent - t0 - WARMUP_MS) / WINDOW_MS)] ??= []).push(latency);
      first = Math.min(first, sent);
      last = Math.max(last, sent);
    }
    measured.sort((a, b) => a - b);
    warmup.sort((a, b) => a - b);
    // Whole windows only: the last one is cut short by the end of the run.
    const windowP99s = windows.slice(0, -1).filter((w) => w.length > 0).map((w) => quantile(w.sort((a, b) => a - b), 0.99));
    return {
      target,
      warmupP99: round(quantile(warmup, 0.99), 1),
      latencies: measured,
      rate: measured.length / ((last - first) / 1000),
      peakAnonMiB: s.peakAnonMiB,
      daemonCores: s.cores,
      machineBusy: s.machineBusy,
      windowP99: [round(Math.min(...windowP99s), 1), round(Math.max(...windowP99s), 1)],
      pub,
      batches: receiver.batches,
    };
  } finally {
    await relay?.stop();
    tmp.remove();
  }
}

/** Quantiles of one run, or of several runs' events taken together. */
function stats(runs: RunResult[]): { p50: number; p99: number; p999: number; max: number; events: number } {
  const all = runs.length === 1 ? runs[0]!.latencies : runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  return { p50: round(quantile(all, 0.5), 1), p99: round(quantile(all, 0.99), 1), p999: round(quantile(all, 0.999), 1), max: round(all[all.length - 1] ?? Number.NaN, 1), events: all.length };
}

export async function bench(opts: { quick: boolean }): Promise<BenchFigure[]> {
  // Bare and gateway runs alternate, so each pair meets the machine's load of the same
  // minute: on a shared machine the tail follows that load, which drifts over minutes.
  const rounds = opts.quick ? 1 : 3;
  const durationMs = opts.quick ? 8_000 : 12_000;
  const receiver = await startReceiver();
  try {
    const bare: RunResult[] = [];
    const gateway: RunResult[] = [];
    for (let i = 0; i < rounds; i++) {
      bare.push(await run(receiver, { kind: 'bare' }, durationMs));
      gateway.push(await run(receiver, { kind: 'gateway' }, durationMs));
    }
    // For comparison: a 20 ms linger (fewer, larger batches; more latency).
    const lingering = await run(receiver, { kind: 'gateway', lingerMs: 20 }, durationMs);
    const bareAll = stats(bare);
    const figures: BenchFigure[] = [];
    for (const runs of [gateway, [lingering]]) {
      const linger = (runs[0]!.target as { lingerMs?: number }).lingerMs;
      const tag = linger === undefined ? `lingerMs ${DEFAULT_LINGER_MS}, default` : `lingerMs ${linger}`;
      const all = stats(runs);
      const perRound = runs === gateway && rounds > 1 ? `; per round (gateway / bare p99, ms): ${runs.map((r, i) => `${stats([r]).p99} / ${stats([bare[i]!]).p99}`).join(', ')}` : '';
      figures.push(
        {
          name: `publish → ERP accepted latency p99 (${tag})`,
          value: all.p99,
          unit: 'ms',
          target: '≤ 25 ms',
          note: `${round(all.p99 / bareAll.p99, 2)}× bare; p50 ${all.p50}, p99.9 ${all.p999}, max ${all.max} ms; ${fmtInt(all.events)} events after a ${WARMUP_MS / 1000} s warm-up per run (its p99: ${runs.map((r) => r.warmupP99).join(', ')} ms); ${spread(runs)}${perRound}`,
        },
        { name: `  p50 (${tag})`, value: all.p50, unit: 'ms' },
        { name: `  p99.9 (${tag})`, value: all.p999, unit: 'ms' },
        { name: `  max (${tag})`, value: all.max, unit: 'ms' },
        {
          name: `  achieved rate in and out (${tag})`,
          value: Math.round(mean(runs.map((r) => r.rate))),
          unit: 'events/s',
          target: `${fmtInt(RATE)} events/s`,
          note: `${batchesOf(runs)}; PUBACK p99 ${runs.map((r) => r.pub.pubackMs?.p99).join(', ')} ms; ${cpuOf(runs)}, publisher ${round(mean(runs.map((r) => r.pub.cpuCores)), 2)}`,
        },
        { name: `  gateway private memory (RssAnon, peak) (${tag})`, value: Math.round(Math.max(...runs.map((r) => r.peakAnonMiB))), unit: 'MiB', target: '≤ 150 MiB' },
      );
    }
    figures.push({
      name: 'bare aedes + LMDB put before PUBACK → undici POST → LMDB remove, p99',
      value: bareAll.p99,
      unit: 'ms',
      note: `building block (bare-relay.ts), same load, ${rounds > 1 ? `${rounds} runs, each just before a gateway run` : 'just before the gateway run'}; p50 ${bareAll.p50}, p99.9 ${bareAll.p999}, max ${bareAll.max} ms; ${spread(bare)}; ${batchesOf(bare)}; ${cpuOf(bare)}`,
    });
    return figures;
  } finally {
    await new Promise<void>((resolve) => {
      receiver.server.close(() => resolve());
      receiver.server.closeAllConnections();
    });
  }
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function spread(runs: RunResult[]): string {
  // A --quick run is too short for a whole window.
  const whole = runs.filter((r) => Number.isFinite(r.windowP99[0]));
  const windows = whole.length > 0 ? `p99 per ${WINDOW_MS / 1000} s: ${Math.min(...whole.map((r) => r.windowP99[0]))}–${Math.max(...whole.map((r) => r.windowP99[1]))} ms; ` : '';
  return `${windows}machine ${runs.map((r) => Math.round(r.machineBusy * 100)).join(', ')} % busy`;
}

function batchesOf(runs: RunResult[]): string {
  const batches = runs.reduce((n, r) => n + r.batches, 0);
  const events = runs.reduce((n, r) => n + r.latencies.length, 0);
  return `${fmtInt(batches)} batches (${round(events / Math.max(1, batches), 1)}/batch)`;
}

/**
 * The process's CPU, and its CPU time per 1,000 events: the same work costs more of it
 * when the machine's other tenants are busy, and the tail follows that figure.
 */
function cpuOf(runs: RunResult[]): string {
  const cores = runs.map((r) => round(r.daemonCores, 2));
  const perK = runs.map((r) => Math.round((r.daemonCores * 1000 * 1000) / r.rate));
  return `${runs[0]!.target.kind === 'bare' ? 'bare' : 'daemon'} ${cores.join(', ')} cores (${perK.join(', ')} ms CPU per 1,000 events)`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of await bench({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(f));
}
