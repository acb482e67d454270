/**
 * The operations surface (DESIGN.md): one fastify server with the status page,
 * the JSON API, the live websocket feed, Prometheus metrics and health checks.
 * It reaches the gateway only through GatewayControl, so it can be started over
 * a real gateway or, in tests, over a stand-in.
 */
import type { Socket } from 'node:net';
import websocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import type { GatewayControl } from '../status.js';
import { installErrorHandling, installOriginGuard } from './http-errors.js';
import { createLiveHub, liveRoute } from './live.js';
import { createMetrics } from './metrics.js';
import { apiRoutes } from './routes-api.js';
import { healthRoutes } from './routes-health.js';
import { staticRoutes } from './static.js';

export interface WebServerOptions {
  config: { host: string; port: number };
  control: GatewayControl;
  logger: Logger;
  /** Where index.html, app.js and style.css are; found next to the code by default. */
  staticDir?: string;
}

export interface WebServer {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  /** The bound port (the one chosen by the OS when config.port is 0). */
  port: number;
  /** Closes live feeds and waits for requests in flight. */
  close(): Promise<void>;
}

/** Bodies are tiny (none of the routes takes one); anything large is a mistake or an attack. */
const BODY_LIMIT_BYTES = 64 * 1024;
/** After this, close() destroys what is still open: an open status page (which reconnects) must not hold up a shutdown. */
const CLOSE_GRACE_MS = 2_000;

export async function startWebServer(opts: WebServerOptions): Promise<WebServer> {
  const { control, logger } = opts;
  const app = Fastify({
    // Widened so the instance has fastify's default type and the route modules take a plain FastifyInstance.
    loggerInstance: logger as FastifyBaseLogger,
    // Prometheus scrapes and health checks would flood journald at one line per request; errors are logged in http-errors.ts.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // At shutdown idle keep-alive sockets are closed and requests in flight finish (fastify's default, stated).
    forceCloseConnections: 'idle',
  });
  const metrics = createMetrics(control);
  const hub = createLiveHub(control, logger);

  installErrorHandling(app, logger);
  installOriginGuard(app);
  await app.register(websocket, { options: { maxPayload: 4096 } });
  // Live clients go first at close: their timer and uplink listeners must not outlive the server.
  app.addHook('preClose', async () => hub.close());
  app.addHook('onClose', async () => metrics.close());

  healthRoutes(app, control);
  apiRoutes(app, control);
  liveRoute(app, hub);
  app.get('/metrics', async (_req, reply) => reply.header('content-type', metrics.contentType).send(await metrics.scrape()));
  staticRoutes(app, opts.staticDir);

  try {
    await app.listen({ host: opts.config.host, port: opts.config.port });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error(`web server bound to an unexpected address: ${String(address)}`);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'web server listening');

  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const close = async (): Promise<void> => {
    const grace = setTimeout(() => {
      for (const socket of sockets) socket.destroy();
    }, CLOSE_GRACE_MS);
    grace.unref();
    try {
      await app.close();
    } finally {
      clearTimeout(grace);
    }
  };

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    close: () => (closing ??= close()),
  };
}
