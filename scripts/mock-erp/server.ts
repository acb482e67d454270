/**
 * A mock of the ERP integration API's receiving side (DESIGN.md, uplink contract),
 * for tests, the demo and the drain bench. It checks what the real ERP team will
 * check, and counts every contract violation instead of hiding it:
 *  - POST /events: content type, a JSON array of events of ONE partition in
 *    sequence order, an Idempotency-Key;
 *  - each event id is recorded once: a known id in a NEW batch is a duplicate;
 *  - a known Idempotency-Key is a retry: 409, nothing recorded again;
 *  - sequence strictly increasing per partitionkey across batches.
 * Faults (POST /_faults or setFaults()) make it fail the way real servers do.
 * Per event it does one Set insert and one order check, so it outruns the gateway.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';
import type { Logger } from 'pino';

const gunzip = promisify(gunzipCb);

export interface MockFaults {
  /** ok; down: destroy the socket without answering; status: answer `status`; lose-response: accept, then destroy the socket. */
  mode?: 'ok' | 'down' | 'status' | 'lose-response';
  status?: number;
  retryAfter?: string;
  /** How many requests to /events this fault applies to; then the next fault of the list, or ok. Unset: until changed. */
  count?: number;
  /** Answer this much later (slow server). */
  delayMs?: number;
  /** Regex over each event's JSON: batches containing a match get 422 naming the offending ids. */
  rejectPattern?: string;
  /** With rejectPattern: answer 207 per event instead of 422. */
  partial?: boolean;
  /** 401 unless `Authorization: Bearer <requireToken>`. */
  requireToken?: string;
  /** 413 when the (uncompressed) body is larger. */
  maxBodyBytes?: number;
}

export interface MockRequest {
  at: string;
  status: number;
  key?: string;
  events: number;
  partition?: string;
  gzip: boolean;
}

export interface MockReport {
  accepted: number;
  duplicates: number;
  retriesSeen: number;
  orderViolations: number;
  /** First 20 order violations. */
  orderViolationDetails: { partition: string; id: string; sequence: number; lastSequence: number }[];
  /** Requests that broke the wire contract (content type, shape, mixed partitions, unordered batch, no key). */
  contractViolations: number;
  contractViolationDetails: string[];
  /** Batches accepted (fully or in part). */
  batches: number;
  partitions: Record<string, { count: number; lastSequence: number }>;
  ids?: string[];
  requests: number;
  lastRequests: MockRequest[];
}

export interface MockErp {
  /** The events endpoint: `http://host:port/events` (what uplink.url points at). */
  url: string;
  baseUrl: string;
  port: number;
  report(opts?: { ids?: boolean }): MockReport;
  /** One fault, or a list applied in turn (each for its `count` requests). */
  setFaults(faults: MockFaults | MockFaults[]): void;
  reset(): void;
  close(): Promise<void>;
}

type Ev = { id?: unknown; sequence?: unknown; partitionkey?: unknown };

const CONTENT_TYPE = 'application/cloudevents-batch+json';
const KEEP_LAST = 50;
const KEEP_DETAILS = 20;

export async function startMockErp(opts: { host?: string; port?: number; logger?: Logger } = {}): Promise<MockErp> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.logger?.child({ component: 'mock-erp' });

  let ids = new Set<string>();
  let keys = new Set<string>();
  let parts = new Map<string, { count: number; lastSequence: number }>();
  let queue: MockFaults[] = [];
  let faultsLeft = Infinity;
  const r = blankCounters();

  function blankCounters() {
    return { accepted: 0, duplicates: 0, retriesSeen: 0, orderViolations: 0, contractViolations: 0, batches: 0, requests: 0, orderDetails: [] as MockReport['orderViolationDetails'], contractDetails: [] as string[], last: [] as MockRequest[] };
  }

  function note(entry: MockRequest): void {
    r.last.push(entry);
    if (r.last.length > KEEP_LAST) r.last.shift();
  }

  function violation(detail: string): void {
    r.contractViolations++;
    if (r.contractDetails.length < KEEP_DETAILS) r.contractDetails.push(detail);
  }

  /** The fault for this request, taking its share of a counted one. */
  function takeFault(): { f: MockFaults; reject?: RegExp } {
    const f = queue[0];
    if (!f) return { f: {} };
    if (--faultsLeft <= 0) {
      queue.shift();
      faultsLeft = queue[0]?.count ?? Infinity;
    }
    return { f, ...(f.rejectPattern ? { reject: new RegExp(f.rejectPattern) } : {}) };
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  async function readBody(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  async function postEvents(req: IncomingMessage, res: ServerResponse): Promise<void> {
    r.requests++;
    const key = header(req, 'idempotency-key');
    const gz = header(req, 'content-encoding') === 'gzip';
    const record = (status: number, events = 0, partition?: string) =>
      note({ at: new Date().toISOString(), status, events, gzip: gz, ...(key ? { key } : {}), ...(partition ? { partition } : {}) });
    const { f: faults, reject } = takeFault();
    const mode = faults.mode ?? 'ok';
    if (mode === 'down') {
      record(0);
      req.socket.destroy();
      return;
    }
    const raw = await readBody(req);
    if (faults.delayMs) await new Promise((ok) => setTimeout(ok, faults.delayMs));
    if (faults.requireToken !== undefined && header(req, 'authorization') !== `Bearer ${faults.requireToken}`) {
      record(401);
      return send(res, 401, { error: 'invalid credentials' });
    }
    if (mode === 'status') {
      const status = faults.status ?? 503;
      record(status);
      return send(res, status, { error: `fault injected: ${status}` }, faults.retryAfter !== undefined ? { 'retry-after': faults.retryAfter } : {});
    }
    const type = header(req, 'content-type')?.split(';')[0]?.trim();
    if (type !== CONTENT_TYPE) {
      violation(`content-type ${type ?? '(none)'}`);
      record(415);
      return send(res, 415, { error: `content-type must be ${CONTENT_TYPE}` });
    }
    if (!key) {
      violation('no Idempotency-Key');
      record(400);
      return send(res, 400, { error: 'Idempotency-Key required' });
    }
    if (keys.has(key)) {
      r.retriesSeen++;
      record(409);
      return send(res, 409, { error: 'batch already accepted', key });
    }
    let events: Ev[];
    try {
      const plain = gz ? await gunzip(raw) : raw;
      if (faults.maxBodyBytes !== undefined && plain.length > faults.maxBodyBytes) {
        record(413);
        return send(res, 413, { error: `body of ${plain.length} bytes exceeds ${faults.maxBodyBytes}` });
      }
      events = JSON.parse(plain.toString('utf8')) as Ev[];
    } catch (err) {
      violation(`unreadable body: ${(err as Error).message}`);
      record(400);
      return send(res, 400, { error: 'body is not JSON' });
    }
    if (!Array.isArray(events) || events.length === 0) {
      violation('body is not a non-empty JSON array');
      record(400);
      return send(res, 400, { error: 'body must be a non-empty JSON array of events' });
    }
    const partition = String(events[0]!.partitionkey);
    let prev = -Infinity;
    for (const ev of events) {
      const seq = Number(ev.sequence);
      if (String(ev.partitionkey) !== partition || typeof ev.id !== 'string' || !(seq > prev)) {
        violation(`batch ${key}: events must share one partitionkey, carry an id and be in sequence order`);
        record(400, events.length, partition);
        return send(res, 400, { error: 'a batch holds events of one partition, in sequence order' });
      }
      prev = seq;
    }

    let refused: Set<string> | undefined;
    if (reject) {
      for (const ev of events) if (reject.test(JSON.stringify(ev))) (refused ??= new Set()).add(ev.id as string);
      if (refused && !faults.partial) {
        record(422, events.length, partition);
        return send(res, 422, { error: 'rejected', ids: [...refused], reason: `event(s) ${[...refused].join(', ')} match rejectPattern ${reject}` });
      }
    }

    keys.add(key);
    r.batches++;
    let part = parts.get(partition);
    if (!part) parts.set(partition, (part = { count: 0, lastSequence: -Infinity }));
    for (const ev of events) {
      const id = ev.id as string;
      if (refused?.has(id)) continue;
      const seq = Number(ev.sequence);
      if (ids.has(id)) {
        r.duplicates++;
        continue;
      }
      ids.add(id);
      r.accepted++;
      part.count++;
      if (seq <= part.lastSequence) {
        r.orderViolations++;
        if (r.orderDetails.length < KEEP_DETAILS) r.orderDetails.push({ partition, id, sequence: seq, lastSequence: part.lastSequence });
      } else part.lastSequence = seq;
    }
    if (mode === 'lose-response') {
      record(0, events.length, partition);
      req.socket.destroy();
      return;
    }
    if (refused) {
      record(207, events.length, partition);
      const results = events.map((ev) =>
        refused!.has(ev.id as string) ? { id: ev.id, status: 422, error: `matches rejectPattern ${reject}` } : { id: ev.id, status: 201 },
      );
      return send(res, 207, { results });
    }
    record(200, events.length, partition);
    send(res, 200, { accepted: events.length });
  }

  function report(o: { ids?: boolean } = {}): MockReport {
    return {
      accepted: r.accepted,
      duplicates: r.duplicates,
      retriesSeen: r.retriesSeen,
      orderViolations: r.orderViolations,
      orderViolationDetails: [...r.orderDetails],
      contractViolations: r.contractViolations,
      contractViolationDetails: [...r.contractDetails],
      batches: r.batches,
      partitions: Object.fromEntries([...parts].map(([k, v]) => [k, { ...v }])),
      ...(o.ids ? { ids: [...ids] } : {}),
      requests: r.requests,
      lastRequests: r.last.map((e) => ({ ...e })),
    };
  }

  function setFaults(f: MockFaults | MockFaults[]): void {
    const list = (Array.isArray(f) ? f : [f]).map((x) => ({ ...x }));
    for (const x of list) if (x.rejectPattern) new RegExp(x.rejectPattern); // throws now, not per request
    queue = list;
    faultsLeft = queue[0]?.count ?? Infinity;
    log?.info({ faults: list }, 'faults set');
  }

  function reset(): void {
    ids = new Set();
    keys = new Set();
    parts = new Map();
    Object.assign(r, blankCounters());
    setFaults({});
  }

  const server = createServer({ noDelay: true, keepAliveTimeout: 60_000 }, (req, res) => {
    const url = req.url ?? '/';
    const route = `${req.method} ${url.split('?')[0]}`;
    const done = (p: Promise<void>) =>
      p.catch((err: Error) => {
        log?.error({ err }, 'mock ERP request failed');
        if (!res.headersSent && !req.socket.destroyed) send(res, 500, { error: err.message });
      });
    switch (route) {
      case 'POST /events':
        return void done(postEvents(req, res));
      case 'GET /_report':
        return send(res, 200, report({ ids: /[?&]ids=1\b/.test(url) }));
      case 'POST /_faults':
        return void done(
          readBody(req).then((b) => {
            setFaults(b.length ? (JSON.parse(b.toString('utf8')) as MockFaults | MockFaults[]) : {});
            send(res, 200, queue);
          }),
        );
      case 'POST /_reset':
        return void done(readBody(req).then(() => (reset(), send(res, 200, { reset: true }))));
      default:
        send(res, 404, { error: `no route ${route}` });
    }
  });
  server.headersTimeout = 61_000;

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log?.info({ url: `${baseUrl}/events` }, 'mock ERP listening');

  return {
    url: `${baseUrl}/events`,
    baseUrl,
    port,
    report,
    setFaults,
    reset,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
