/**
 * OPC UA DataValues → EventDraft fields. Values with bad or uncertain status are
 * kept and flagged (`quality`), never dropped: a technician decides what a Bad
 * sensor reading means, not the gateway.
 *
 * Ids are a hash of what identifies the observation at the source, so the same
 * change delivered twice (initial value after a reconnect, a replay after a
 * crash) is the same event and the buffer stores it once.
 */
import { createHash } from 'node:crypto';
import { DataType, type DataValue, type Variant } from 'node-opcua';
import { renderTemplate } from '../../model/template.js';

export type Quality = 'good' | 'uncertain' | 'bad';

export interface ValueData {
  value: unknown;
  dataType: string;
  arrayType?: string;
  statusCode: string;
  statusCodeValue: number;
  quality: Quality;
  sourceTimestamp: string | null;
  serverTimestamp: string | null;
}

/** A stable event id: 32 hex digits of SHA-256 over the identifying parts. */
export function stableId(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

export function qualityOf(statusValue: number): Quality {
  // Part 4 §7.39: the two top bits of a StatusCode are its severity.
  const severity = statusValue >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/** JSON-safe value: Int64 as [hi, lo] becomes a decimal string, byte strings base64, structures their JSON. */
export function jsonValue(v: unknown, dataType: DataType): unknown {
  if (v === null || v === undefined) return null;
  if ((dataType === DataType.Int64 || dataType === DataType.UInt64) && Array.isArray(v) && v.length === 2 && typeof v[0] === 'number') {
    const big = (BigInt(v[0] >>> 0) << 32n) | BigInt((v[1] as number) >>> 0);
    return (dataType === DataType.Int64 ? BigInt.asIntN(64, big) : big).toString();
  }
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>);
  if (Array.isArray(v)) return v.map((x) => jsonValue(x, dataType));
  if (typeof v === 'object') {
    const o = v as { toJSON?: () => unknown; toString?: () => string };
    if (typeof o.toJSON === 'function') return o.toJSON();
    return String(v);
  }
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

export function valueData(dv: DataValue): ValueData {
  const variant: Variant | undefined = dv.value;
  const dataType = variant?.dataType ?? DataType.Null;
  const statusCodeValue = dv.statusCode?.value ?? 0;
  return {
    value: jsonValue(variant?.value, dataType),
    dataType: DataType[dataType] ?? String(dataType),
    ...(variant && variant.arrayType ? { arrayType: String(variant.arrayType === 1 ? 'Array' : variant.arrayType === 2 ? 'Matrix' : 'Scalar') } : {}),
    statusCode: dv.statusCode?.name ?? 'Good',
    statusCodeValue,
    quality: qualityOf(statusCodeValue),
    sourceTimestamp: dv.sourceTimestamp ? dv.sourceTimestamp.toISOString() : null,
    serverTimestamp: dv.serverTimestamp ? dv.serverTimestamp.toISOString() : null,
  };
}

/** The identity of one observation: source timestamp with its picoseconds, else the server timestamp. */
export function observationKey(dv: DataValue): string | undefined {
  if (dv.sourceTimestamp) return `${dv.sourceTimestamp.getTime()}.${dv.sourcePicoseconds ?? 0}`;
  if (dv.serverTimestamp) return `srv:${dv.serverTimestamp.getTime()}.${dv.serverPicoseconds ?? 0}`;
  return undefined;
}

export interface TemplateContext {
  site: string;
  line: string;
  connector: string;
}

/** Renders a template; an unresolved placeholder leaves its name visible rather than an empty segment. */
export function render(template: string, payload: Record<string, unknown>, context: TemplateContext): string {
  const { value, missing } = renderTemplate(template, { payload, context: { ...context } });
  if (missing.length === 0) return value;
  return template.replace(/\{([A-Za-z0-9_.-]+)\}/g, (m, name: string) => (missing.includes(name) ? `unknown-${name}` : renderTemplate(m, { payload, context: { ...context } }).value));
}
