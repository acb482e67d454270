/** What the operations surface (web page, JSON API, CLI) sees of a running gateway. */
import type { BufferStats, DeadLetter } from './buffer/types.js';
import type { SourceStatus } from './protocols/source.js';
import type { Uplink, UplinkStatus } from './uplink/uplink.js';

export interface GatewayStatus {
  gatewayId: string;
  site: string;
  version: string;
  node: string;
  /** ISO 8601 */
  startedAt: string;
  uptimeSeconds: number;
  /** Buffer open, uplink started and every source started. */
  ready: boolean;
  buffer: BufferStats;
  uplink: UplinkStatus;
  sources: SourceStatus[];
}

export interface DeadLetterControl {
  list(opts?: { limit?: number; afterDlid?: number }): DeadLetter[];
  get(dlid: number): DeadLetter | undefined;
  count(): number;
  /** Commits the refused event again (new sequence, same id); throws PG_ERR_DLQ_NOT_REPLAYABLE for raw payloads. */
  replay(dlid: number): Promise<{ sequence: number; partition: string }>;
  remove(dlid: number): Promise<void>;
}

export interface GatewayControl {
  status(): GatewayStatus;
  deadLetters: DeadLetterControl;
  /** Clears an uplink pause after 401/403 once credentials are fixed. */
  resumeUplink(): void;
  /** The uplink's typed events, for the live feed. */
  uplink: Pick<Uplink, 'on' | 'off'>;
}
