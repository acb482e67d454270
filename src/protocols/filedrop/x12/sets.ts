/**
 * The 944/945/947 → Event mapping (documented as a table in ../README.md). One
 * Event per line item; each carries its document's header context.
 */
import type { Transaction } from './envelope.js';
import { el, segName, type Segment } from './segments.js';
import type { Header, Item, Marks, WalkSpec } from './walk.js';
import type { RecordProblem } from '../records.js';

export interface SetSpec {
  type: string;
  walk: WalkSpec;
  /** Header fields from the beginning segment and the header context. */
  header(h: Header, date: DateFn): Record<string, unknown>;
  /** Item fields from the item segment; a string is a problem (not a number...). */
  item(s: Segment): Record<string, unknown> | string;
  subject(fields: Record<string, unknown>): string | undefined;
  time(fields: Record<string, unknown>): string | undefined;
}

export type DateFn = (date: string, time?: string) => string | undefined;

const num = (s: Segment, n: number, what: string, required: boolean): number | string | undefined => {
  const v = el(s, n);
  if (v === '') return required ? `${s.tag}${pad(n)} (${what}) is empty` : undefined;
  const x = Number(v);
  return Number.isFinite(x) && /^[+-]?(\d+\.?\d*|\.\d+)$/.test(v) ? x : `${s.tag}${pad(n)} (${what}) = '${v}' is not a number`;
};
const pad = (n: number) => String(n).padStart(2, '0');
const opt = (v: string) => (v === '' ? undefined : v);

function productIds(s: Segment, pairs: [number, number][]): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const [q, v] of pairs) if (el(s, v)) ids[el(s, q) || 'ID'] = el(s, v);
  return ids;
}

function items(fields: Record<string, [Segment, number, string, boolean] | string | undefined>): Record<string, unknown> | string {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(fields)) {
    if (spec === undefined) continue;
    if (typeof spec === 'string') {
      out[k] = spec;
      continue;
    }
    const v = num(...spec);
    if (typeof v === 'string') return v;
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function headerCommon(h: Header, date: DateFn): Record<string, unknown> {
  const dates: Record<string, string> = {};
  for (const [q, d] of Object.entries(h.dates)) {
    const iso = date(d.date, d.time);
    if (iso) dates[q] = iso;
  }
  return {
    ...(h.parties['WH'] ? { warehouse: h.parties['WH'] } : {}),
    ...(h.parties['DE'] ? { depositor: h.parties['DE'] } : {}),
    parties: h.parties,
    references: h.references,
    dates,
    ...(h.carrier ? { carrier: h.carrier } : {}),
  };
}

const ITEM_PIDS_944: [number, number][] = [[4, 5], [6, 7], [10, 11]];
const ITEM_PIDS_945: [number, number][] = [[7, 8], [17, 18]];
const ITEM_PIDS_947: [number, number][] = [[5, 6], [7, 8], [17, 18]];

export const SETS: Record<string, SetSpec> = {
  '944': {
    type: 'goods.receipt',
    walk: { begin: 'W17', item: 'W07', manOpensPack: false },
    header: (h, date) => {
      const b = h.begin;
      return {
        ...(b ? { reportingCode: opt(el(b, 1)), receiptDate: date(el(b, 2)), warehouseReceiptNumber: opt(el(b, 3)), depositorOrderNumber: opt(el(b, 4)), shipmentId: opt(el(b, 5)) } : {}),
        ...headerCommon(h, date),
      };
    },
    item: (s) => items({ quantity: [s, 1, 'quantity received', true], unit: opt(el(s, 2)), upc: opt(el(s, 3)), lot: opt(el(s, 8)) }),
    subject: (f) => str(f['warehouseReceiptNumber'] ?? f['depositorOrderNumber'] ?? f['shipmentId']),
    time: (f) => str(f['receiptDate'] ?? firstDate(f)),
  },
  '945': {
    type: 'shipment.confirmation',
    walk: { begin: 'W06', item: 'W12', manOpensPack: true },
    header: (h, date) => {
      const b = h.begin;
      return {
        ...(b ? { reportingCode: opt(el(b, 1)), depositorOrderNumber: opt(el(b, 2)), shipmentDate: date(el(b, 3)), shipmentId: opt(el(b, 4)), agentShipmentId: opt(el(b, 5)), purchaseOrderNumber: opt(el(b, 6)), masterReference: opt(el(b, 7)) } : {}),
        ...headerCommon(h, date),
      };
    },
    item: (s) =>
      items({
        status: opt(el(s, 1)),
        quantityOrdered: [s, 2, 'quantity ordered', false],
        quantity: [s, 3, 'number of units shipped', true],
        quantityDifference: [s, 4, 'quantity difference', false],
        unit: opt(el(s, 5)),
        upc: opt(el(s, 6)),
        lot: opt(el(s, 9)),
        weight: [s, 10, 'weight', false],
        weightUnit: opt(el(s, 12)),
      }),
    subject: (f) => str(f['shipmentId'] ?? f['depositorOrderNumber']),
    // G62*11 = shipped on this date; else the W06 date.
    time: (f) => str((f['dates'] as Record<string, string>)['11'] ?? f['shipmentDate'] ?? firstDate(f)),
  },
  '947': {
    type: 'inventory.adjustment',
    walk: { begin: 'W15', item: 'W19', manOpensPack: false },
    header: (h, date) => {
      const b = h.begin;
      return {
        ...(b ? { adjustmentDate: date(el(b, 1)), adjustmentNumber: opt(el(b, 2)), depositorAdjustmentNumber: opt(el(b, 3)) } : {}),
        ...headerCommon(h, date),
      };
    },
    item: (s) =>
      items({
        reasonCode: opt(el(s, 1)),
        quantity: [s, 2, 'credit/debit quantity', true],
        unit: opt(el(s, 3)),
        upc: opt(el(s, 4)),
        lot: opt(el(s, 9)),
        weight: [s, 10, 'weight', false],
        weightUnit: opt(el(s, 12)),
        inventoryTransactionType: opt(el(s, 16)),
      }),
    subject: (f) => str(f['adjustmentNumber'] ?? f['depositorAdjustmentNumber']),
    time: (f) => str(f['adjustmentDate'] ?? firstDate(f)),
  },
};

const PIDS: Record<string, [number, number][]> = { '944': ITEM_PIDS_944, '945': ITEM_PIDS_945, '947': ITEM_PIDS_947 };

/** One line item → canonical fields, or the problem that makes it a bad record. */
export function itemFields(tx: Transaction, spec: SetSpec, headerFields: Record<string, unknown>, it: Item): { fields: Record<string, unknown> } | { problem: RecordProblem } {
  const own = spec.item(it.segment);
  if (typeof own === 'string') return { problem: { segment: segName(it.segment), line: it.segment.line, reason: own, raw: it.segment.raw } };
  const pids = productIds(it.segment, PIDS[tx.set]!);
  const m = merge(it.group, it.own);
  const lot = (own['lot'] as string | undefined) ?? m.lots[0];
  const fields = {
    transactionSet: tx.set,
    ...strip(headerFields),
    lineNumber: it.lineNumber,
    ...strip(own),
    ...(lot ? { lot } : {}),
    productIds: pids,
    ...(Object.values(pids)[0] ? { sku: Object.values(pids)[0] } : {}),
    ...(it.description ? { description: it.description } : {}),
    serials: m.serials,
    sscc: m.sscc,
    ...(m.marks.length ? { marks: m.marks } : {}),
    ...(Object.keys(m.references).length ? { lineReferences: m.references } : {}),
    x12: {
      interchange: tx.interchange.control,
      sender: tx.interchange.sender,
      receiver: tx.interchange.receiver,
      group: tx.group.control,
      version: tx.group.version,
      transaction: tx.control,
      segment: it.segment.ordinal,
    },
  };
  return { fields };
}

function merge(a: Marks, b: Marks): Marks {
  return {
    sscc: [...a.sscc, ...b.sscc],
    serials: [...a.serials, ...b.serials],
    marks: [...a.marks, ...b.marks],
    lots: [...b.lots, ...a.lots],
    references: { ...a.references, ...b.references },
  };
}

function strip(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function firstDate(f: Record<string, unknown>): string | undefined {
  return Object.values((f['dates'] as Record<string, string>) ?? {})[0];
}
