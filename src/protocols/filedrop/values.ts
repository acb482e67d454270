/**
 * Text → typed values for mapped fields: numbers with decimal comma and thousands
 * separators, dates in plant formats (dd.mm.yyyy), booleans in the usual spellings.
 * Each parser returns undefined for "not this type"; the caller says why to the technician.
 */

export interface NumberStyle {
  decimalSeparator: '.' | ',';
  thousandsSeparator: string;
}

const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function parseNumber(v: unknown, style: NumberStyle): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  let s = v.trim();
  if (s === '') return undefined;
  // SAP and many WMS exports print negatives with a trailing minus: "12,5-".
  let negative = false;
  if (s.endsWith('-') && s.length > 1) {
    negative = true;
    s = s.slice(0, -1);
  }
  if (style.thousandsSeparator) s = s.split(style.thousandsSeparator).join('');
  if (style.decimalSeparator === ',') {
    if (s.includes('.')) return undefined; // a dot in a decimal-comma file is a mistake, not a separator
    s = s.replace(',', '.');
  }
  if (!PLAIN_NUMBER.test(s)) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? (negative ? -n : n) : undefined;
}

export function parseBoolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'y', 'x', 'ja', 'j', 'oui'].includes(s)) return true;
  if (['false', '0', 'no', 'n', 'nein', 'non', ''].includes(s)) return false;
  return undefined;
}

/**
 * Date formats: lower case are date parts (yyyy, yy, mm, dd), upper case time
 * parts (HH, MM, SS); any other character must match itself. `iso` accepts ISO 8601.
 */
export interface DateParser {
  (v: unknown): string | undefined;
}

const TOKENS: Record<string, { re: string; part: 'y' | 'y2' | 'mo' | 'd' | 'h' | 'mi' | 's' }> = {
  yyyy: { re: '(\\d{4})', part: 'y' },
  yy: { re: '(\\d{2})', part: 'y2' },
  mm: { re: '(\\d{1,2})', part: 'mo' },
  dd: { re: '(\\d{1,2})', part: 'd' },
  HH: { re: '(\\d{1,2})', part: 'h' },
  MM: { re: '(\\d{2})', part: 'mi' },
  SS: { re: '(\\d{2})', part: 's' },
};

export function dateParser(format: string, utcOffset: string): DateParser {
  if (format === 'iso') {
    return (v) => {
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
      if (typeof v !== 'string' || v.trim() === '') return undefined;
      const s = v.trim();
      if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return undefined;
      // A date or local time without a zone is read in the configured zone.
      const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(s);
      const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?/.exec(s);
      if (!hasZone && m) return build([+m[1]!, +m[2]!, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)], utcOffset);
      const t = Date.parse(s);
      return Number.isNaN(t) ? undefined : new Date(t).toISOString();
    };
  }
  const parts: (typeof TOKENS)[string]['part'][] = [];
  let re = '^';
  for (let i = 0; i < format.length; ) {
    const tok = ['yyyy', 'yy', 'mm', 'dd', 'HH', 'MM', 'SS'].find((t) => format.startsWith(t, i));
    if (tok) {
      re += TOKENS[tok]!.re;
      parts.push(TOKENS[tok]!.part);
      i += tok.length;
    } else {
      re += format[i]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      i++;
    }
  }
  const regex = new RegExp(`${re}$`);
  // WMS files repeat the same few dates on thousands of lines: remember recent results.
  const cache = new Map<string, string | undefined>();
  return (v) => {
    if (typeof v !== 'string') return undefined;
    const hit = cache.get(v);
    if (hit !== undefined || cache.has(v)) return hit;
    if (cache.size >= 4096) cache.clear();
    const iso = parseWith(regex, parts, v, utcOffset);
    cache.set(v, iso);
    return iso;
  };
}

function parseWith(regex: RegExp, parts: (typeof TOKENS)[string]['part'][], v: string, utcOffset: string): string | undefined {
  {
    const m = regex.exec(v.trim());
    if (!m) return undefined;
    const f = { y: 1970, mo: 1, d: 1, h: 0, mi: 0, s: 0 };
    parts.forEach((p, i) => {
      const n = Number(m[i + 1]);
      if (p === 'y2') f.y = 2000 + n;
      else f[p] = n;
    });
    return build([f.y, f.mo, f.d, f.h, f.mi, f.s], utcOffset);
  }
}

function build([y, mo, d, h, mi, s]: number[], utcOffset: string): string | undefined {
  if (mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || s! > 59) return undefined;
  let t: number;
  if (utcOffset === 'local') {
    const date = new Date(y!, mo! - 1, d!, h, mi, s);
    if (date.getDate() !== d) return undefined; // 31.02. rolls over: not a date
    t = date.getTime();
  } else {
    t = Date.UTC(y!, mo! - 1, d!, h, mi, s);
    if (new Date(t).getUTCDate() !== d) return undefined;
    if (utcOffset !== 'Z') {
      const sign = utcOffset.startsWith('-') ? -1 : 1;
      const [oh, om] = utcOffset.slice(1).split(':').map(Number);
      t -= sign * (oh! * 60 + om!) * 60_000;
    }
  }
  return new Date(t).toISOString();
}
