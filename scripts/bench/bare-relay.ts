/**
 * The bare building blocks the latency bench compares the gateway with: the path of
 * one event through the libraries alone, with no gateway code around them.
 *
 *  - in: aedes on net.createServer({ noDelay: true }); authorizePublish → one async
 *    lmdb-js put per message under [topic, n] (the puts of one event-loop turn share
 *    a transaction and one flush) → callback → PUBACK, as bare-broker.ts;
 *  - out: per topic, one undici POST in flight, of every payload committed and not
 *    yet sent (at most 500, each wrapped as `{"id":…,"data":…}`), then, after its
 *    200, one durable remove of their keys; the next POST follows that remove.
 *
 * No mapping, no event envelope, no dedupe, no sealed batch records, no retries:
 * what aedes, lmdb-js and undici cost on this machine at the bench's load.
 * Same LMDB flags as src/buffer/store.ts (overlappingSync, separateFlushed: false).
 *
 * Run as a child: `node bare-relay.js '{"dir":"/tmp/x","url":"http://127.0.0.1:N/events"}'`;
 * prints `{"port":N,"pid":N}` when listening; SIGTERM closes it (bare-server.ts).
 */
import { join } from 'node:path';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { open } from 'lmdb';
import { Pool } from 'undici';
import { serveBare } from './bare-server.js';

const { dir, url } = JSON.parse(process.argv[2] ?? '{}') as { dir?: string; url?: string };
if (!dir || !url) throw new Error('usage: bare-relay.js \'{"dir":"/tmp/x","url":"http://127.0.0.1:N/events"}\'');

const MAX_BATCH = 500;
const env = open({ path: join(dir, 'bare.lmdb'), overlappingSync: true, separateFlushed: false } as never);
const db = env.openDB<Buffer, [string, number]>({ name: 'journal', encoding: 'binary' });
const target = new URL(url);
const pool = new Pool(target.origin, { connections: 8 });
let n = 0;

/** Per topic: payloads committed and not yet sent, and whether a POST is out. */
const topics = new Map<string, { committed: { key: [string, number]; value: Buffer }[]; sending: boolean }>();

function fail(what: string, err: unknown): void {
  process.stderr.write(`bare-relay: ${what}: ${String(err)}\n`);
  process.exit(1);
}

async function send(topic: string): Promise<void> {
  const t = topics.get(topic)!;
  if (t.sending || t.committed.length === 0) return;
  t.sending = true;
  const batch = t.committed.splice(0, MAX_BATCH);
  const body = Buffer.concat([Buffer.from('['), ...batch.flatMap((e, i) => (i > 0 ? [Buffer.from(','), e.value] : [e.value])), Buffer.from(']')]);
  const res = await pool.request({ path: target.pathname, method: 'POST', body, headers: { 'content-type': 'application/cloudevents-batch+json' } });
  await res.body.dump();
  if (res.statusCode !== 200) throw new Error(`receiver answered ${res.statusCode}`);
  let removed: Promise<boolean> | undefined;
  for (const e of batch) removed = db.remove(e.key);
  await removed;
  t.sending = false;
  void send(topic).catch((err: unknown) => fail('send failed', err));
}

const broker = await Aedes.createBroker({
  authorizePublish: (_client: Client | null, packet: AedesPublishPacket, cb: (err?: Error | null) => void) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const id = (JSON.parse(payload.toString('utf8')) as { eventId: string }).eventId;
    const value = Buffer.from(`{"id":${JSON.stringify(id)},"data":${payload.toString('utf8')}}`);
    const key: [string, number] = [packet.topic, ++n];
    db.put(key, value).then(
      () => {
        cb(null);
        let t = topics.get(packet.topic);
        if (!t) topics.set(packet.topic, (t = { committed: [], sending: false }));
        t.committed.push({ key, value });
        void send(packet.topic).catch((err: unknown) => fail('send failed', err));
      },
      (err: unknown) => fail('put failed', err),
    );
  },
} as never);
await serveBare(broker, 0, () => pool.close().then(() => env.close()));
