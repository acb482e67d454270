/**
 * Every error plantgate raises on purpose has a stable code (PG_ERR_<AREA>_<WHAT>)
 * and a message a technician can act on. docs/errors.md lists them with how to fix.
 */

export type ErrorCode =
  | 'PG_ERR_CONFIG_INVALID'
  | 'PG_ERR_CONFIG_READ'
  | 'PG_ERR_BUFFER_FULL'
  | 'PG_ERR_BUFFER_COMMIT'
  | 'PG_ERR_BUFFER_CLOSED'
  | 'PG_ERR_BUFFER_SCHEMA'
  | 'PG_ERR_BUFFER_LOCKED'
  | 'PG_ERR_MQTT_PAYLOAD'
  | 'PG_ERR_MQTT_UNMAPPED'
  | 'PG_ERR_MQTT_TOO_LARGE'
  | 'PG_ERR_MQTT_MAPPING'
  | 'PG_ERR_MQTT_LISTEN'
  | 'PG_ERR_UPLINK_AUTH'
  | 'PG_ERR_UPLINK_REJECTED'
  | 'PG_ERR_UPLINK_TRANSIENT'
  | 'PG_ERR_UPLINK_TLS'
  | 'PG_ERR_OPCUA_CONNECT'
  | 'PG_ERR_OPCUA_CERT_UNTRUSTED'
  | 'PG_ERR_OPCUA_NODE'
  | 'PG_ERR_OPCUA_HANDSHAKE'
  | 'PG_ERR_FILE_PARSE'
  | 'PG_ERR_FILE_IO'
  | 'PG_ERR_FILE_MAPPING'
  | 'PG_ERR_DLQ_NOT_FOUND'
  | 'PG_ERR_DLQ_NOT_REPLAYABLE'
  | 'PG_ERR_SOURCE_START'
  | 'PG_ERR_WEB_LISTEN'
  | 'PG_ERR_WEB_BAD_REQUEST'
  | 'PG_ERR_WEB_NOT_FOUND'
  | 'PG_ERR_WEB_FORBIDDEN_ORIGIN'
  | 'PG_ERR_WEB_INTERNAL'
  | 'PG_ERR_CLI_USAGE';

export class PlantgateError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlantgateError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isPlantgateError(err: unknown, code?: ErrorCode): err is PlantgateError {
  return err instanceof PlantgateError && (code === undefined || err.code === code);
}

/** A short, loggable description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof PlantgateError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ? `${(err as NodeJS.ErrnoException).code}: ${err.message}` : err.message;
  return String(err);
}
