/**
 * What the bare building blocks (bare-broker.ts, bare-relay.ts) share: an aedes
 * broker served on 127.0.0.1 with `noDelay` (as the gateway does), a line
 * `{"port":N,"pid":N}` on stdout once it listens, and SIGTERM closing it.
 */
import { createServer, type Socket } from 'node:net';
import type { Aedes } from 'aedes';

export async function serveBare(broker: Aedes, port: number, close: () => Promise<unknown>): Promise<void> {
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
      void close().finally(() => process.exit(0));
    });
    setTimeout(() => process.exit(0), 5000).unref();
  });
}
