/**
 * How errors leave the HTTP API: always `{ code, message }` with a status a
 * client can act on. PlantgateError codes map to statuses here, in one table;
 * anything unexpected is a 500 whose details go to the log, not to the client.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isPlantgateError, type ErrorCode } from '../errors.js';

/** Codes the web layer raises itself (request shape, routing, origin). */
export const WEB_CODES = {
  badRequest: 'PG_ERR_WEB_BAD_REQUEST',
  notFound: 'PG_ERR_WEB_NOT_FOUND',
  forbiddenOrigin: 'PG_ERR_WEB_FORBIDDEN_ORIGIN',
  internal: 'PG_ERR_WEB_INTERNAL',
} as const;

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  PG_ERR_DLQ_NOT_FOUND: 404,
  PG_ERR_DLQ_NOT_REPLAYABLE: 409,
  // Intake refused: the client may retry later.
  PG_ERR_BUFFER_FULL: 503,
  PG_ERR_BUFFER_CLOSED: 503,
};

export interface ErrorBody {
  code: string;
  message: string;
}

export function installErrorHandling(app: FastifyInstance, logger: Logger): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isPlantgateError(err)) {
      const status = STATUS_BY_CODE[err.code] ?? 500;
      if (status >= 500) logger.error({ code: err.code, err: err.message, url: req.url }, 'request failed');
      return reply.code(status).send({ code: err.code, message: err.message } satisfies ErrorBody);
    }
    if (err.validation) {
      return reply.code(400).send({ code: WEB_CODES.badRequest, message: `invalid request: ${err.message}` } satisfies ErrorBody);
    }
    // fastify's own client errors (bad JSON body, unsupported media type...) keep their status.
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ code: err.code ?? WEB_CODES.badRequest, message: err.message } satisfies ErrorBody);
    }
    logger.error({ err, url: req.url, method: req.method }, 'request failed');
    return reply.code(500).send({ code: WEB_CODES.internal, message: 'internal error; see the gateway log' } satisfies ErrorBody);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ code: WEB_CODES.notFound, message: `no route ${req.method} ${req.url.split('?')[0]}` } satisfies ErrorBody);
  });
}

/**
 * Cross-site request guard for state-changing requests. A browser sends `Origin`
 * with every cross-origin POST/DELETE; a page elsewhere on the plant network must
 * not be able to replay or delete dead letters through a technician's browser.
 * Clients without `Origin` (curl, the CLI) are not browsers and pass. The
 * websocket upgrade is checked too: browsers do not apply same-origin rules to
 * websockets, so any page could otherwise read the live feed.
 */
export function installOriginGuard(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    const upgrade = req.headers.upgrade?.toLowerCase() === 'websocket';
    if (!upgrade && (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS')) return;
    const origin = req.headers.origin;
    if (origin === undefined) return;
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host !== req.headers.host) {
      return reply.code(403).send({ code: WEB_CODES.forbiddenOrigin, message: `requests from ${origin} are not allowed; use the gateway's own status page` } satisfies ErrorBody);
    }
  });
}
