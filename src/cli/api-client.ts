/** The CLI's way to a running daemon: its local JSON API (web.host:web.port from the same config). */
import type { Config } from '../config/schema.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function apiBase(config: Config): string {
  const host = config.web.host === '0.0.0.0' || config.web.host === '::' ? '127.0.0.1' : config.web.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.web.port}`;
}

export async function api<T>(config: Config, method: string, path: string): Promise<T> {
  const url = `${apiBase(config)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { method, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new ApiError(0, 'PG_ERR_CLI_USAGE', `cannot reach the plantgate daemon at ${apiBase(config)} (${(err as Error).cause ? String((err as { cause: Error }).cause.message) : (err as Error).message}); is it running with this config, and is web.enabled true?`);
  }
  const text = await res.text();
  const body = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const e = body as { code?: string; message?: string } | undefined;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? text);
  }
  return body as T;
}
