/**
 * A lean MQTT QoS 1 load generator, run as its own process by the benches
 * (mqtt.js costs ~5× the broker's CPU per message, FIELD-NOTES): CONNECT via
 * mqtt-packet, then hand-encoded PUBLISH packets written in one Buffer per
 * window refill, Nagle off, PUBACKs parsed by hand.
 *
 *   flood: `count` messages over `connections` sockets, at most `window` unacked
 *          per socket; each arriving chunk of PUBACKs is answered with one write
 *          of as many new PUBLISHes.
 *   paced: `rate` messages/s for `durationMs`, sent every `tickMs`; each payload
 *          carries `sentAt` (epoch ms, sub-ms precision, stamped just before the
 *          tick's packets are written) for end-to-end latency.
 *
 * Payloads are ~257-byte JSON objects with a unique `eventId`; message i goes to
 * `plant/bench/line<k>/completion`, k = connection index mod `lines` (flood) or
 * round robin (paced). Prints one JSON line with the result (see Result).
 *
 * usage: node load-publisher.js '{"port":1883,"connections":8,"count":200000,...}'
 */
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { generate } from 'mqtt-packet';

interface Options {
  host?: string;
  port: number;
  mode: 'flood' | 'paced';
  connections: number;
  /** flood: messages in total. */
  count?: number;
  /** Unacked messages per connection. */
  window?: number;
  lines?: number;
  /** Makes event ids unique across runs against one store. */
  tag: string;
  /**
   * `ascending` (default): `<tag>-<conn>-<seq>`, each connection's ids in order.
   * `uuid`: random UUIDs, in no order, as many MES publishers send (each payload is built once: no resends).
   */
  ids?: 'ascending' | 'uuid';
  timeCapMs?: number;
  /** paced */
  rate?: number;
  durationMs?: number;
  tickMs?: number;
}

export interface PublisherResult {
  mode: 'flood' | 'paced';
  connections: number;
  sent: number;
  acked: number;
  /** First PUBLISH written → last PUBACK received. */
  elapsedMs: number;
  ackedPerSec: number;
  timedOut: boolean;
  /** This process's CPU over the run, as a share of one core. */
  cpuCores: number;
  payloadBytes: number;
  /** paced: ticks where a connection's window was full and messages were held back. */
  throttled?: number;
  /** paced: PUBLISH → PUBACK round trip in ms (p50/p99/max), the gateway's commit latency seen from the client. */
  pubackMs?: { p50: number; p99: number; max: number };
}

const PAYLOAD_BYTES = 257;
const TIMESTAMP = '2026-03-01T08:00:00.000Z';

class Conn {
  readonly socket: Socket;
  inflight = 0;
  acked = 0;
  sent = 0;
  nextId = 1;
  private pending: Buffer | undefined;
  /** packet id → send time (paced mode) */
  readonly sentAt = new Float64Array(65536);
  connacked!: Promise<void>;
  onAcks: (n: number) => void = () => undefined;
  onRtt: ((ms: number) => void) | undefined;

  constructor(
    readonly index: number,
    host: string,
    port: number,
    tag: string,
  ) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.setNoDelay(true);
    this.connacked = new Promise<void>((resolve, reject) => {
      this.socket.on('error', reject);
      this.socket.once('connect', () => {
        this.socket.write(generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `bench-${tag}-${index}`, clean: true, keepalive: 0 }));
      });
      this.socket.on('data', (chunk: Buffer) => this.onData(chunk, resolve, reject));
      this.socket.once('close', () => reject(new Error(`connection ${index} closed`)));
    });
  }

  private onData(chunk: Buffer, connack: () => void, fail: (e: Error) => void): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let i = 0;
    let acks = 0;
    const now = this.onRtt ? performance.now() : 0;
    while (i + 2 <= buf.length) {
      const type = buf[i]! >> 4;
      let len = 0;
      let mult = 1;
      let j = i + 1;
      let complete = false;
      for (; j < buf.length && j < i + 5; j++) {
        len += (buf[j]! & 0x7f) * mult;
        mult *= 128;
        if ((buf[j]! & 0x80) === 0) {
          complete = true;
          j++;
          break;
        }
      }
      if (!complete || j + len > buf.length) break;
      if (type === 4) {
        acks++;
        if (this.onRtt) this.onRtt(now - this.sentAt[buf.readUInt16BE(j)]!);
      } else if (type === 2) {
        if (buf[j + 1] !== 0) fail(new Error(`CONNACK refused with code ${buf[j + 1]}`));
        else connack();
      }
      i = j + len;
    }
    this.pending = i < buf.length ? Buffer.from(buf.subarray(i)) : undefined;
    if (acks > 0) {
      this.inflight -= acks;
      this.acked += acks;
      this.onAcks(acks);
    }
  }

  /** Appends one QoS 1 PUBLISH to `out` at `off`; returns the new offset. */
  encode(out: Buffer, off: number, topic: Buffer, payload: string): number {
    const payloadLen = Buffer.byteLength(payload);
    const rl = 2 + topic.length + 2 + payloadLen;
    out[off++] = 0x32; // PUBLISH, QoS 1
    let x = rl;
    do {
      let b = x % 128;
      x = Math.floor(x / 128);
      if (x > 0) b |= 0x80;
      out[off++] = b;
    } while (x > 0);
    out.writeUInt16BE(topic.length, off);
    off += 2;
    off += topic.copy(out, off);
    const id = this.nextId;
    this.nextId = id === 65535 ? 1 : id + 1;
    out.writeUInt16BE(id, off);
    off += 2;
    if (this.onRtt) this.sentAt[id] = performance.now();
    off += out.write(payload, off, 'latin1');
    this.inflight++;
    this.sent++;
    return off;
  }
}

let idStyle: Options['ids'] = 'ascending';

function eventId(tag: string, conn: number, seq: number): string {
  return idStyle === 'uuid' ? randomUUID() : `${tag}-${String(conn).padStart(2, '0')}-${String(seq).padStart(9, '0')}`;
}

const SENT_AT = '"sentAt":';

function payloadFor(tag: string, conn: number, seq: number, sentAt: number): string {
  const head = `{"eventId":"${eventId(tag, conn, seq)}","workOrder":"WO-${100000 + (seq % 5000)}","material":"MAT-000042","qty":${seq % 97},"unit":"EA","station":"ST-07","operator":"OP-0042","timestamp":"${TIMESTAMP}",${SENT_AT}${sentAt.toFixed(3)},"pad":"`;
  const tail = '"}';
  return head + 'x'.repeat(Math.max(0, PAYLOAD_BYTES - head.length - tail.length)) + tail;
}

const MAX_PACKET = PAYLOAD_BYTES + 128;

async function flood(o: Options, conns: Conn[], topics: Buffer[]): Promise<Omit<PublisherResult, 'cpuCores' | 'mode' | 'connections' | 'payloadBytes'>> {
  const count = o.count ?? 100_000;
  const window = o.window ?? 1000;
  const cap = o.timeCapMs ?? 120_000;
  const quota = conns.map((_, i) => Math.floor(count / conns.length) + (i < count % conns.length ? 1 : 0));
  let totalAcked = 0;
  let lastAckAt = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const fill = (c: Conn) => {
    const n = Math.min(window - c.inflight, quota[c.index]! - c.sent);
    if (n <= 0) return;
    const out = Buffer.allocUnsafe(n * MAX_PACKET);
    let off = 0;
    const topic = topics[c.index % topics.length]!;
    for (let k = 0; k < n; k++) off = c.encode(out, off, topic, payloadFor(o.tag, c.index, c.sent, 0));
    c.socket.write(out.subarray(0, off));
  };
  const t0 = performance.now();
  for (const c of conns) {
    c.onAcks = (n) => {
      totalAcked += n;
      lastAckAt = performance.now();
      if (totalAcked >= count) resolveDone();
      else fill(c);
    };
  }
  for (const c of conns) fill(c);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), cap)))]);
  clearTimeout(timer);
  const sent = conns.reduce((n, c) => n + c.sent, 0);
  const elapsedMs = (timedOut ? performance.now() : lastAckAt) - t0;
  return { sent, acked: totalAcked, elapsedMs, ackedPerSec: totalAcked / (elapsedMs / 1000), timedOut };
}

async function paced(o: Options, conns: Conn[], topics: Buffer[]): Promise<Omit<PublisherResult, 'cpuCores' | 'mode' | 'connections' | 'payloadBytes'>> {
  const rate = o.rate ?? 10_000;
  const durationMs = o.durationMs ?? 10_000;
  const tickMs = o.tickMs ?? 5;
  const window = o.window ?? 1000;
  const total = Math.round((rate * durationMs) / 1000);
  const rtts = new Float64Array(total);
  let nRtt = 0;
  let totalAcked = 0;
  let lastAckAt = 0;
  let throttled = 0;
  let sent = 0;
  let rr = 0;
  for (const c of conns) {
    c.onRtt = (ms) => {
      if (nRtt < rtts.length) rtts[nRtt++] = ms;
    };
    c.onAcks = (n) => {
      totalAcked += n;
      lastAckAt = performance.now();
    };
  }
  const t0 = performance.now();
  const outs = conns.map(() => Buffer.allocUnsafe(Math.ceil((rate * tickMs * 20) / 1000 / conns.length + 16) * MAX_PACKET));
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - t0;
      const due = Math.min(total, Math.floor((elapsed * rate) / 1000)) - sent;
      // After a stall (GC, a busy core) catch up, but at most 20 ticks' worth at once.
      const n = Math.min(due, Math.ceil((rate * tickMs * 20) / 1000));
      const offs = conns.map(() => 0);
      /** Per connection: where each message's sentAt digits are in its buffer. */
      const stamps: number[][] = conns.map(() => []);
      const encodedAt = (performance.timeOrigin + performance.now()).toFixed(3);
      for (let k = 0; k < n; k++) {
        const ci = rr++ % conns.length;
        const c = conns[ci]!;
        if (c.inflight >= window) {
          throttled++;
          continue;
        }
        const payload = payloadFor(o.tag, ci, c.sent, Number(encodedAt));
        offs[ci] = c.encode(outs[ci]!, offs[ci]!, topics[ci % topics.length]!, payload);
        stamps[ci]!.push(offs[ci]! - payload.length + payload.indexOf(SENT_AT) + SENT_AT.length);
        sent++;
      }
      // sentAt is the time of the write: a pause of this process while it encoded (a collection,
      // a busy core) is not the gateway's latency. Same width, so the bytes are overwritten in place.
      const writtenAt = (performance.timeOrigin + performance.now()).toFixed(3);
      conns.forEach((c, i) => {
        if (offs[i]! === 0) return;
        if (writtenAt.length === encodedAt.length) for (const at of stamps[i]!) outs[i]!.write(writtenAt, at, 'latin1');
        c.socket.write(Buffer.from(outs[i]!.subarray(0, offs[i]!)));
      });
      if (sent >= total || elapsed > durationMs + 5_000) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, tickMs);
  });
  // Wait for the last PUBACKs (bounded).
  const cap = performance.now() + (o.timeCapMs ?? 10_000);
  while (totalAcked < sent && performance.now() < cap) await new Promise((r) => setTimeout(r, 10));
  const elapsedMs = lastAckAt - t0;
  const sorted = rtts.subarray(0, nRtt).sort();
  const q = (p: number) => Math.round((sorted[Math.min(nRtt - 1, Math.max(0, Math.ceil(p * nRtt) - 1))] ?? NaN) * 100) / 100;
  return { sent, acked: totalAcked, elapsedMs, ackedPerSec: totalAcked / (elapsedMs / 1000), timedOut: totalAcked < sent, throttled, pubackMs: { p50: q(0.5), p99: q(0.99), max: q(1) } };
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as Options;
  if (!o.port || !o.mode || !o.connections || !o.tag) throw new Error('usage: load-publisher.js \'{"port":N,"mode":"flood|paced","connections":N,"tag":"x",...}\'');
  idStyle = o.ids ?? 'ascending';
  const host = o.host ?? '127.0.0.1';
  const lines = o.lines ?? 8;
  const topics = Array.from({ length: lines }, (_, k) => Buffer.from(`plant/bench/line${k + 1}/completion`));
  const conns = Array.from({ length: o.connections }, (_, i) => new Conn(i, host, o.port, o.tag));
  await Promise.all(conns.map((c) => c.connacked));
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  const r = o.mode === 'flood' ? await flood(o, conns, topics) : await paced(o, conns, topics);
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - w0;
  const result: PublisherResult = { mode: o.mode, connections: o.connections, payloadBytes: payloadFor(o.tag, 0, 0, performance.timeOrigin).length, cpuCores: (cpu.user + cpu.system) / 1000 / wall, ...r };
  for (const c of conns) {
    c.socket.removeAllListeners('close');
    c.socket.on('error', () => undefined);
    c.socket.end(generate({ cmd: 'disconnect' }));
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  setTimeout(() => process.exit(0), 200).unref();
}

main().catch((err: unknown) => {
  process.stderr.write(`load-publisher: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
