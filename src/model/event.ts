/**
 * The Event envelope (DESIGN.md): CloudEvents 1.0 attributes plus the sequence,
 * partitioning and correlation extensions. The wire format is the envelope itself.
 */

export const SPEC_VERSION = '1.0';

/** Canonical business types; sources may also use others named in config. */
export const EVENT_TYPES = [
  'production.completion',
  'inventory.movement',
  'inventory.adjustment',
  'machine.state',
  'quality.result',
  'shipment.confirmation',
  'goods.receipt',
] as const;

export interface PlantEvent {
  specversion: typeof SPEC_VERSION;
  /** Globally unique and stable across retries and restarts. */
  id: string;
  /** `/plantgate/{gatewayId}/{connector}` */
  source: string;
  type: string;
  /** Source timestamp, ISO 8601. */
  time: string;
  subject?: string;
  /** Gateway-wide, strictly increasing, assigned at commit (decimal string). */
  sequence: string;
  /** Ordering scope; default site/line. */
  partitionkey: string;
  correlationid: string;
  /** When the gateway committed the event (ISO 8601); `time` stays the source's. */
  receivedtime: string;
  datacontenttype: 'application/json';
  data: Record<string, unknown>;
}

/**
 * What a source hands the buffer. The buffer adds sequence, receipt time and,
 * where the source has no stable id, a gateway-unique id.
 */
export interface EventDraft {
  id?: string;
  type: string;
  time: string;
  subject?: string;
  partitionkey: string;
  correlationid?: string;
  data: Record<string, unknown>;
}

export function sourceUri(gatewayId: string, connector: string): string {
  return `/plantgate/${gatewayId}/${connector}`;
}
