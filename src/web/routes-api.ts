/**
 * The JSON API behind the status page and the CLI. Handlers only translate HTTP
 * to GatewayControl calls; errors are PlantgateErrors mapped in http-errors.ts.
 * Parameters are checked by fastify's JSON schema (ajv coerces query strings and
 * path params to integers), so handlers see valid numbers only.
 */
import type { FastifyInstance } from 'fastify';
import type { DeadLetter } from '../buffer/types.js';
import type { GatewayControl } from '../status.js';

/** Dead letters per page unless the client asks otherwise, and the most it may ask for. */
const DLQ_PAGE_DEFAULT = 100;
const DLQ_PAGE_MAX = 1000;

const dlidParams = {
  type: 'object',
  properties: { dlid: { type: 'integer', minimum: 1 } },
  required: ['dlid'],
} as const;

export interface DeadLetterSummary extends Omit<DeadLetter, 'raw'> {
  /** Size of the raw payload in bytes; fetch the dead letter itself for the bytes. */
  rawBytes?: number;
}

export interface DeadLetterPage {
  /** All dead letters, not just this page. */
  count: number;
  items: DeadLetterSummary[];
  /** Pass as `after` for the next page; absent on the last page. */
  nextAfter?: number;
}

/**
 * A page of 1000 entries each holding a raw MQTT payload could run to hundreds
 * of megabytes; the list carries each payload's size and the detail route the bytes.
 */
function summarize(d: DeadLetter): DeadLetterSummary {
  const { raw, ...rest } = d;
  return raw === undefined ? rest : { ...rest, rawBytes: Buffer.byteLength(raw, 'base64') };
}

export function apiRoutes(app: FastifyInstance, control: GatewayControl): void {
  app.get('/api/status', async () => control.status());

  app.get<{ Querystring: { limit?: number; after?: number } }>(
    '/api/dead-letters',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: DLQ_PAGE_MAX, default: DLQ_PAGE_DEFAULT },
            after: { type: 'integer', minimum: 0 },
          },
        },
      },
    },
    async (req): Promise<DeadLetterPage> => {
      const limit = req.query.limit ?? DLQ_PAGE_DEFAULT;
      // Ascending dlid: the order things went wrong, stable while entries come and go.
      const items = control.deadLetters.list({ limit, ...(req.query.after !== undefined ? { afterDlid: req.query.after } : {}) });
      const page: DeadLetterPage = { count: control.deadLetters.count(), items: items.map(summarize) };
      if (items.length === limit) page.nextAfter = items[items.length - 1]!.dlid;
      return page;
    },
  );

  app.get<{ Params: { dlid: number } }>('/api/dead-letters/:dlid', { schema: { params: dlidParams } }, async (req, reply) => {
    const entry = control.deadLetters.get(req.params.dlid);
    if (!entry) return reply.code(404).send({ code: 'PG_ERR_DLQ_NOT_FOUND', message: `no dead letter ${req.params.dlid}; it may have been replayed or deleted` });
    return entry;
  });

  app.post<{ Params: { dlid: number } }>('/api/dead-letters/:dlid/replay', { schema: { params: dlidParams } }, async (req) => {
    const out = await control.deadLetters.replay(req.params.dlid);
    return { dlid: req.params.dlid, replayed: true, ...out };
  });

  app.delete<{ Params: { dlid: number } }>('/api/dead-letters/:dlid', { schema: { params: dlidParams } }, async (req) => {
    await control.deadLetters.remove(req.params.dlid);
    return { dlid: req.params.dlid, deleted: true };
  });

  app.post('/api/uplink/resume', async () => {
    control.resumeUplink();
    return { resumed: true, uplink: control.status().uplink.state };
  });
}
