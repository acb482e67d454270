// DOM helpers. Plant data (payloads, reasons, topics) only ever becomes text
// nodes or attribute values here, never HTML.
import { ago, clock, ISO_RE, num } from './format.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) node.append(c instanceof Node ? c : String(c));
  return node;
}
export function kv(dl, rows) {
  dl.replaceChildren(...rows.filter(Boolean).flatMap(([k, v, cls]) => [el('dt', { text: k }), el('dd', { class: cls }, v)]));
}
export function setText(id, text) {
  $(id).textContent = text;
}

/** Kind-specific details are arbitrary JSON: shown as nested key/value lists. */
export function value(v, depth) {
  if (v === null || v === undefined) return el('span', { class: 'muted', text: '—' });
  if (typeof v === 'string') return el('span', { text: ISO_RE.test(v) ? `${clock(v)} (${ago(v)})` : v });
  if (typeof v !== 'object') return el('span', { text: typeof v === 'number' ? num(v) : String(v) });
  if (depth > 3) return el('code', { text: JSON.stringify(v) });
  if (Array.isArray(v)) {
    if (v.length === 0) return el('span', { class: 'muted', text: 'none' });
    const shown = v.slice(0, 20).map((x) => el('li', {}, value(x, depth + 1)));
    if (v.length > 20) shown.push(el('li', { class: 'muted', text: `… ${v.length - 20} more` }));
    return el('ul', { class: 'plain' }, shown);
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return el('span', { class: 'muted', text: '—' });
  const dl = el('dl', { class: 'kv nested' });
  kv(dl, entries.map(([k, x]) => [k, value(x, depth + 1)]));
  return dl;
}

/** Calls the JSON API; rejects with the gateway's `{ code, message }` on an error status. */
export async function api(method, path) {
  const res = await fetch(path, { method, headers: { accept: 'application/json' } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body.message || `HTTP ${res.status}`), { code: body.code, status: res.status });
  return body;
}
