/**
 * The bare building block the ingest bench compares the gateway with: aedes on
 * net.createServer({ noDelay: true }), and authorizePublish → one async lmdb-js
 * put per message (never awaited one by one: the puts of one event-loop turn
 * share a transaction and one flush) → callback → PUBACK. No mapping, no event
 * envelope, no dedupe: what the libraries themselves do on this machine.
 * Same LMDB flags as src/buffer/store.ts (overlappingSync, separateFlushed: false).
 *
 * Run as a child: `node bare-broker.js '{"dir":"/tmp/x"}'`; prints
 * `{"port":N,"pid":N}` when listening; SIGTERM closes it (bare-server.ts).
 */
import { join } from 'node:path';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { open } from 'lmdb';
import { serveBare } from './bare-server.js';

const { dir, port = 0 } = JSON.parse(process.argv[2] ?? '{}') as { dir?: string; port?: number };
if (!dir) throw new Error('usage: bare-broker.js \'{"dir":"/tmp/x"}\'');

const env = open({ path: join(dir, 'bare.lmdb'), overlappingSync: true, separateFlushed: false } as never);
const db = env.openDB<Buffer, number>({ name: 'journal', encoding: 'binary' });
let seq = 0;

const broker = await Aedes.createBroker({
  authorizePublish: (_client: Client | null, packet: AedesPublishPacket, cb: (err?: Error | null) => void) => {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    db.put(++seq, payload).then(
      () => cb(null),
      (err: unknown) => process.stderr.write(`bare-broker: put failed: ${String(err)}\n`),
    );
  },
} as never);
await serveBare(broker, port, () => env.close());
