/**
 * Walks one transaction set into line items with their header context. The same
 * walk serves 944, 945 and 947; sets.ts says which segment begins the document and
 * which one is a line item.
 *
 *  - Header (before the detail): the beginning segment (W17/W06/W15), N1 loops
 *    (N1 + N2/N3/N4), N9 references, G62 dates, W27 carrier.
 *  - Detail: LX opens a group (both 944 layouts: W07 directly in the detail, or
 *    wrapped in LX loops). MAN before any item of a group applies to the group's
 *    items (945: a MAN opens a pack, the W12s after it are in that pack); after an
 *    item, MAN and N9 belong to that item. G69 describes the item.
 *  - Summary (W14/W03/W76) ends the detail.
 */
import { el, type Segment } from './segments.js';

export interface Party {
  name?: string;
  idQualifier?: string;
  id?: string;
  address?: { street?: string; city?: string; state?: string; postalCode?: string; country?: string };
}

export interface Header {
  begin?: Segment;
  parties: Record<string, Party>;
  references: Record<string, string>;
  dates: Record<string, { date: string; time?: string }>;
  carrier?: { scac?: string; routing?: string };
}

export interface Marks {
  sscc: string[];
  serials: string[];
  marks: { qualifier: string; value: string }[];
  lots: string[];
  references: Record<string, string>;
}

export interface Item {
  segment: Segment;
  /** LX01 of the enclosing LX loop, else the item's ordinal in the set. */
  lineNumber: string;
  description?: string;
  own: Marks;
  group: Marks;
}

export interface WalkSpec {
  begin: string;
  item: string;
  /** 945: a MAN opens a new pack instead of attaching to the item before it. */
  manOpensPack: boolean;
}

const SUMMARY = new Set(['W14', 'W03', 'W76']);

export function walk(tx: Segment[], spec: WalkSpec): { header: Header; items: Item[] } {
  const header: Header = { parties: {}, references: {}, dates: {} };
  const items: Item[] = [];
  let inDetail = false;
  let party: Party | undefined;
  let lx: string | undefined;
  let group = emptyMarks();
  let item: Item | undefined;

  for (const s of tx.slice(1, -1)) {
    if (s.tag === 'LX' || s.tag === spec.item || (s.tag === 'MAN' && !inDetail && spec.manOpensPack)) inDetail = true;
    if (SUMMARY.has(s.tag)) {
      inDetail = false;
      item = undefined;
      continue;
    }
    if (!inDetail) {
      switch (s.tag) {
        case spec.begin:
          header.begin = s;
          break;
        case 'N1':
          party = { ...(el(s, 2) ? { name: el(s, 2) } : {}), ...(el(s, 3) ? { idQualifier: el(s, 3), id: el(s, 4) } : {}) };
          header.parties[el(s, 1)] = party;
          break;
        case 'N3':
          if (party) party.address = { ...party.address, street: [el(s, 1), el(s, 2)].filter(Boolean).join(', ') };
          break;
        case 'N4':
          if (party) party.address = { ...party.address, city: el(s, 1), state: el(s, 2), postalCode: el(s, 3), country: el(s, 4) };
          break;
        case 'N9':
          header.references[el(s, 1)] = el(s, 2);
          break;
        case 'G62':
          header.dates[el(s, 1)] = { date: el(s, 2), ...(el(s, 4) ? { time: el(s, 4) } : {}) };
          break;
        case 'W27':
          header.carrier = { scac: el(s, 2), routing: el(s, 3) };
          break;
      }
      continue;
    }
    switch (s.tag) {
      case 'LX':
        lx = el(s, 1);
        group = emptyMarks();
        item = undefined;
        break;
      case spec.item:
        item = { segment: s, lineNumber: lx ?? String(items.length + 1), own: emptyMarks(), group };
        items.push(item);
        break;
      case 'MAN':
        if (spec.manOpensPack) {
          if (item) group = emptyMarks();
          item = undefined;
          addMan(group, s);
        } else addMan(item ? item.own : group, s);
        break;
      case 'N9':
        addN9(item ? item.own : group, s);
        break;
      case 'G69':
        if (item) item.description = el(s, 1);
        break;
    }
  }
  return { header, items };
}

function emptyMarks(): Marks {
  return { sscc: [], serials: [], marks: [], lots: [], references: {} };
}

/** MAN*GM = SSCC-18 (GS1); MAN*SN / MAN*SM = serial numbers; others are kept as marks. */
function addMan(m: Marks, s: Segment): void {
  const q = el(s, 1);
  for (const v of [el(s, 2), el(s, 3)].filter(Boolean)) {
    if (q === 'GM') m.sscc.push(v.replace(/^00(?=\d{18}$)/, ''));
    else if (q === 'SN' || q === 'SM') m.serials.push(v);
    else m.marks.push({ qualifier: q, value: v });
  }
}

/** N9*LT = lot number; N9*SE / N9*SN = serial number; others are references by qualifier. */
function addN9(m: Marks, s: Segment): void {
  const q = el(s, 1);
  const v = el(s, 2) || el(s, 3);
  if (!v) return;
  if (q === 'LT') m.lots.push(v);
  else if (q === 'SE' || q === 'SN') m.serials.push(v);
  else m.references[q] = v;
}
