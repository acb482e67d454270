/**
 * The HTTP sink: one POST per sealed batch to the ERP (DESIGN.md, uplink contract),
 * over an undici Pool with keep-alive and optional mTLS. It never retries by
 * itself (undici's retry is off): the sender decides, from the verdict, whether
 * the SAME sealed bytes go out again under the same Idempotency-Key.
 *
 * It answers with a SendResult, never throws for network trouble: a response
 * (status, Retry-After, the first MAX_BODY_BYTES of the body for reasons) or an
 * error (timeout, connection, TLS, aborted by stop()).
 */
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { Pool, type Dispatcher } from 'undici';
import type { UplinkConfig } from '../config/schema.js';
import { PlantgateError, type ErrorCode } from '../errors.js';

const gzip = promisify(gzipCb);

export const CONTENT_TYPE = 'application/cloudevents-batch+json';
/** How much of a response body is kept (for dead-letter reasons and logs). */
export const MAX_BODY_BYTES = 64 * 1024;
/** Idle keep-alive sockets live this long (ms); the ERP's own hint wins when shorter. */
const KEEP_ALIVE_MS = 30_000;

export type SendResult =
  | { kind: 'response'; status: number; retryAfter?: string; body: Buffer }
  | { kind: 'error'; code: ErrorCode; message: string; timeout: boolean; aborted: boolean };

export interface HttpSink {
  /** POSTs one batch body. `signal` aborts it (shutdown); the timeout covers headers and body. */
  send(body: Buffer, batchId: string, signal?: AbortSignal): Promise<SendResult>;
  /** Waits for requests in flight, then closes the sockets. */
  close(): Promise<void>;
  /** Aborts requests in flight and closes the sockets. */
  destroy(): Promise<void>;
}

/** Node's TLS verification codes: a certificate problem, not a network blip. */
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|DEPTH_ZERO|HOSTNAME/;

export function createHttpSink(config: UplinkConfig): HttpSink {
  const url = new URL(config.url);
  const path = `${url.pathname}${url.search}`;
  const pool = new Pool(url.origin, {
    connections: config.concurrency,
    pipelining: 1,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: KEEP_ALIVE_MS,
    // Our own timer covers the whole exchange; these are only the outer bounds.
    headersTimeout: config.requestTimeoutMs,
    bodyTimeout: config.requestTimeoutMs,
    connect: tlsOptions(config),
  });

  // Built once: every request carries the same headers but the key (and length).
  const fixed: string[] = ['content-type', CONTENT_TYPE];
  for (const [k, v] of Object.entries(config.headers ?? {})) fixed.push(k, v);
  if (config.bearerToken) fixed.push('authorization', `Bearer ${config.bearerToken}`);
  if (config.gzip) fixed.push('content-encoding', 'gzip');

  async function send(raw: Buffer, batchId: string, signal?: AbortSignal): Promise<SendResult> {
    const body = config.gzip ? await gzip(raw) : raw;
    return new Promise<SendResult>((resolve) => {
      let controller: Dispatcher.DispatchController | undefined;
      /** Why we stopped the exchange (timeout or shutdown), once we did. */
      let stoppedBy: 'timeout' | 'shutdown' | undefined;
      let status = 0;
      let retryAfter: string | undefined;
      let chunks: Buffer[] = [];
      let size = 0;
      const stop = (why: 'timeout' | 'shutdown', message: string): void => {
        if (stoppedBy) return;
        stoppedBy = why;
        controller?.abort(new Error(message));
      };
      const timer = setTimeout(() => stop('timeout', `no complete answer within ${config.requestTimeoutMs} ms`), config.requestTimeoutMs);
      const onAbort = (): void => stop('shutdown', 'aborted by uplink shutdown');
      const finish = (result: SendResult): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const failed = (err: unknown): void => {
        const timedOut = stoppedBy === 'timeout';
        const aborted = stoppedBy === 'shutdown';
        finish({ kind: 'error', ...describe(err, url.origin, timedOut, aborted), timeout: timedOut, aborted });
      };
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      // dispatch() rather than request(): no response stream, no AbortSignal chain; about a
      // quarter less CPU per request, which counts when small batches go out hundreds a second.
      try {
        pool.dispatch(
          { path, method: 'POST', headers: [...fixed, 'idempotency-key', batchId], body },
          {
            onRequestStart(c) {
              controller = c;
              // Undici may start a request again (a pipelined predecessor failed): begin afresh.
              chunks = [];
              size = 0;
              if (stoppedBy) c.abort(new Error(stoppedBy === 'timeout' ? 'timed out' : 'aborted by uplink shutdown'));
            },
            onResponseStart(_c, statusCode, headers) {
              status = statusCode;
              const ra = headers['retry-after'];
              retryAfter = ra === undefined ? undefined : String(ra);
            },
            onResponseData(_c, chunk) {
              // Keep the first MAX_BODY_BYTES for reasons; the rest is read and dropped so the socket stays reusable.
              if (size >= MAX_BODY_BYTES) return;
              const part = size + chunk.length > MAX_BODY_BYTES ? chunk.subarray(0, MAX_BODY_BYTES - size) : chunk;
              chunks.push(part);
              size += part.length;
            },
            onResponseEnd() {
              const kept = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
              finish({ kind: 'response', status, body: kept, ...(retryAfter !== undefined ? { retryAfter } : {}) });
            },
            onResponseError(_c, err) {
              failed(err);
            },
          },
        );
      } catch (err) {
        failed(err);
      }
    });
  }

  return {
    send,
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}

function describe(err: unknown, origin: string, timedOut: boolean, aborted: boolean): { code: ErrorCode; message: string } {
  if (timedOut) return { code: 'PG_ERR_UPLINK_TRANSIENT', message: `request to ${origin} timed out` };
  if (aborted) return { code: 'PG_ERR_UPLINK_TRANSIENT', message: 'request aborted by uplink shutdown' };
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e?.code ?? e?.cause?.code ?? '';
  const message = `${code ? `${code}: ` : ''}${e?.message ?? String(err)} (${origin})`;
  return { code: TLS_CODES.test(code) ? 'PG_ERR_UPLINK_TLS' : 'PG_ERR_UPLINK_TRANSIENT', message };
}

function tlsOptions(config: UplinkConfig): Record<string, unknown> {
  const tls = config.tls;
  if (!tls) return {};
  const read = (file: string | undefined, what: string): Buffer | undefined => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw new PlantgateError('PG_ERR_UPLINK_TLS', `cannot read the uplink ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { file });
    }
  };
  const out: Record<string, unknown> = { rejectUnauthorized: tls.rejectUnauthorized };
  const cert = read(tls.certFile, 'client certificate');
  const key = read(tls.keyFile, 'client key');
  const ca = read(tls.caFile, 'CA bundle');
  if (cert) out['cert'] = cert;
  if (key) out['key'] = key;
  if (ca) out['ca'] = ca;
  if (tls.passphrase) out['passphrase'] = tls.passphrase;
  return out;
}
