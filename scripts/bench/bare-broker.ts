/**
 * The bare building block the ingest bench compares the gateway with: aedes on
 * net.createServer({ noDelay: true }), and authorizePublish → one async lmdb-js
 * put per message (never awaited one by one: the puts of one event-loop turn
 * share a transaction and one flush) → callback → PUBACK. No mapping, no event
 * envelope, no dedupe: what the libraries themselves do on this machine.
 * Same LMDB flags as src/buffer/store.ts (overlappingSync, separateFlushed: false).
 *
 * Run as a child: `node bare-broker.js '{"dir":"/tmp/x"}'`; prints
 * `{"port":N,"pid":N}` when listening; SIGTERM closes it.
 */
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { open } from 'lmdb';

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
const sockets = new Set<Socket>();
const server = createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  broker.handle(socket);
});
await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => resolve());
});
process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port, pid: process.pid })}\n`);

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  server.close();
  for (const s of sockets) s.destroy();
  broker.close(() => {
    void env.close().finally(() => process.exit(0));
  });
  setTimeout(() => process.exit(0), 5000).unref();
});
