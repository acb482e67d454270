/**
 * The live feed at /api/live (websocket). Each client gets a status message on
 * connect and then once a second, plus every uplink event as it happens:
 *   { type: 'status', status }
 *   { type: 'state', state } | { type: 'alarm', alarm: UplinkAlarm | null }
 *   { type: 'delivered' | 'rejected' | 'retry', ...info }
 * One hub serves all clients: status() is computed once per tick, not per
 * client, and the hub subscribes to the uplink only while someone listens, so
 * a closed page leaves no listener and no timer behind.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { describeError } from '../errors.js';
import type { GatewayControl } from '../status.js';
import type { UplinkEvents } from '../uplink/types.js';

/** How often status is pushed. */
const STATUS_INTERVAL_MS = 1000;
/** A client this far behind (bytes queued) skips status ticks until it catches up; the next tick has it all anyway. */
const MAX_BUFFERED_BYTES = 1 << 20;

const UPLINK_EVENTS = ['state', 'alarm', 'delivered', 'rejected', 'retry'] as const satisfies readonly (keyof UplinkEvents)[];

export interface LiveHub {
  add(socket: WebSocket): void;
  clients(): number;
  close(): void;
}

export function createLiveHub(control: GatewayControl, logger: Logger, intervalMs = STATUS_INTERVAL_MS): LiveHub {
  const sockets = new Set<WebSocket>();
  let timer: NodeJS.Timeout | undefined;

  const send = (socket: WebSocket, text: string, droppable: boolean): void => {
    if (socket.readyState !== socket.OPEN) return;
    if (droppable && socket.bufferedAmount > MAX_BUFFERED_BYTES) return;
    socket.send(text, (err) => {
      if (err) logger.debug({ err: describeError(err) }, 'live feed send failed');
    });
  };
  const statusText = (): string | undefined => {
    try {
      return JSON.stringify({ type: 'status', status: control.status() });
    } catch (err) {
      logger.warn({ err: describeError(err) }, 'status for the live feed failed');
      return undefined;
    }
  };
  const broadcast = (text: string, droppable: boolean): void => {
    for (const s of sockets) send(s, text, droppable);
  };
  const pushStatus = (): void => {
    const text = statusText();
    if (text) broadcast(text, true);
  };

  // Events are not droppable: a technician watching for a rejection must see it.
  const listeners = {
    state: (state: UplinkEvents['state'][0]) => {
      broadcast(JSON.stringify({ type: 'state', state }), false);
      pushStatus(); // the badge should change now, not on the next tick
    },
    alarm: (alarm: UplinkEvents['alarm'][0]) => {
      broadcast(JSON.stringify({ type: 'alarm', alarm: alarm ?? null }), false);
      pushStatus();
    },
    delivered: (info: UplinkEvents['delivered'][0]) => broadcast(JSON.stringify({ ...info, type: 'delivered' }), false),
    rejected: (info: UplinkEvents['rejected'][0]) => broadcast(JSON.stringify({ ...info, type: 'rejected' }), false),
    retry: (info: UplinkEvents['retry'][0]) => broadcast(JSON.stringify({ ...info, type: 'retry' }), false),
  };

  const subscribe = (): void => {
    for (const e of UPLINK_EVENTS) control.uplink.on(e, listeners[e] as never);
    timer = setInterval(pushStatus, intervalMs);
    timer.unref();
  };
  const unsubscribe = (): void => {
    for (const e of UPLINK_EVENTS) control.uplink.off(e, listeners[e] as never);
    clearInterval(timer);
    timer = undefined;
  };
  const remove = (socket: WebSocket): void => {
    if (!sockets.delete(socket)) return;
    if (sockets.size === 0) unsubscribe();
  };

  return {
    add(socket) {
      if (sockets.size === 0) subscribe();
      sockets.add(socket);
      socket.on('close', () => remove(socket));
      socket.on('error', (err) => {
        logger.debug({ err: describeError(err) }, 'live feed client error');
        remove(socket);
      });
      // Clients only listen; anything they send is ignored.
      const text = statusText();
      if (text) send(socket, text, false);
    },
    clients: () => sockets.size,
    close() {
      for (const s of [...sockets]) {
        remove(s);
        s.terminate();
      }
    },
  };
}

export function liveRoute(app: FastifyInstance, hub: LiveHub): void {
  app.get('/api/live', { websocket: true }, (socket) => hub.add(socket));
  closeRefusedUpgrades(app);
}

/** After a refused upgrade's response is written, a stuck client gets this long to hang up. */
const REFUSED_UPGRADE_LINGER_MS = 1000;

/**
 * @fastify/websocket runs an upgrade request through the normal route and hooks
 * on a socket the HTTP server no longer tracks. When it is answered instead of
 * upgraded (403 from the origin guard, 404 for a wrong path) nothing closes that
 * socket: it leaks a file descriptor and makes server.close() wait forever.
 * Upgraded requests are hijacked and never reach these hooks.
 */
function closeRefusedUpgrades(app: FastifyInstance): void {
  const isUpgrade = (headers: { upgrade?: string | undefined }): boolean => headers.upgrade?.toLowerCase() === 'websocket';
  app.addHook('onSend', async (req, reply, payload) => {
    if (isUpgrade(req.headers)) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onResponse', async (req) => {
    const socket = req.raw.socket;
    if (!isUpgrade(req.headers) || !socket || socket.destroyed) return;
    socket.end();
    setTimeout(() => socket.destroy(), REFUSED_UPGRADE_LINGER_MS).unref();
  });
}
