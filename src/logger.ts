/** Structured JSON logs (pino) to stdout for journald; every line carries a component. */
import { pino, type Logger } from 'pino';

const REDACT = [
  'password',
  '*.password',
  '*.*.password',
  'bearerToken',
  '*.bearerToken',
  '*.*.bearerToken',
  'passphrase',
  '*.passphrase',
  '*.*.passphrase',
  'headers.authorization',
  '*.headers.authorization',
  'authorization',
];

export function createLogger(level = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, base: { app: 'plantgate' }, redact: { paths: REDACT, censor: '[redacted]' }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

export type { Logger };
