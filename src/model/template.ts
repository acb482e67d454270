/**
 * Field paths and `{name}` templates used by source mappings.
 * A template placeholder resolves from, in order: named captures (topic levels,
 * file columns), the payload (dotted path), then the gateway context (site).
 */

export function getPath(obj: unknown, path: string): unknown {
  if (!path.includes('.')) return obj !== null && typeof obj === 'object' ? (obj as Record<string, unknown>)[path] : undefined;
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export interface TemplateScope {
  captures?: Record<string, string>;
  payload?: unknown;
  context?: Record<string, string>;
}

const PLACEHOLDER = /\{([A-Za-z0-9_.-]+)\}/g;

/** Literal text at even indexes, placeholder names at odd ones. */
type CompiledTemplate = string[];
const compiled = new Map<string, CompiledTemplate>();

function compile(template: string): CompiledTemplate {
  let parts = compiled.get(template);
  if (!parts) {
    // split() with a capture group keeps the names at the odd indexes.
    parts = template.split(PLACEHOLDER);
    compiled.set(template, parts);
  }
  return parts;
}

/** Shared by every render that misses nothing (the hot path allocates no array). */
const NONE_MISSING: readonly string[] = Object.freeze([]);

/** Renders a template; returns undefined names in `missing` instead of throwing. */
export function renderTemplate(template: string, scope: TemplateScope): { value: string; missing: readonly string[] } {
  const parts = compile(template);
  let missing: string[] | undefined;
  let value = parts[0]!;
  for (let i = 1; i < parts.length; i += 2) {
    const name = parts[i]!;
    const v = scope.captures?.[name] ?? scalar(getPath(scope.payload, name)) ?? scope.context?.[name];
    if (v === undefined || v === '') (missing ??= []).push(name);
    else value += v;
    value += parts[i + 1]!;
  }
  return { value, missing: missing ?? NONE_MISSING };
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return undefined;
}

/** Already in the form toISOString() writes: kept as it is (the common case, and a hot path). */
const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Normalises a source timestamp (ISO string, epoch ms or seconds, Date) to ISO 8601; undefined if unusable. */
export function toIsoTime(v: unknown): string | undefined {
  if (typeof v === 'string' && CANONICAL_ISO.test(v) && !Number.isNaN(Date.parse(v))) return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
  if (typeof v === 'number' && Number.isFinite(v)) return new Date(v < 1e11 ? v * 1000 : v).toISOString();
  if (typeof v === 'string' && v.length > 0) {
    if (/^\d+(\.\d+)?$/.test(v)) return toIsoTime(Number(v));
    const t = Date.parse(v);
    return Number.isNaN(t) ? undefined : new Date(t).toISOString();
  }
  return undefined;
}
