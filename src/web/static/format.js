// Formatting for the status page: numbers, sizes, durations and local times.

export const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
export function bytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}
export function duration(sec) {
  sec = Math.max(0, Math.round(sec));
  const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}
const pad = (n) => String(n).padStart(2, '0');
export function clock(iso) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
}
export function ago(iso) {
  const ms = Date.now() - new Date(iso).getTime();
  if (Number.isNaN(ms)) return '';
  return ms >= 0 ? `${duration(ms / 1000)} ago` : `in ${duration(-ms / 1000)}`;
}
export const when = (iso) => (iso ? `${clock(iso)} (${ago(iso)})` : 'never');
export const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;
export const errText = (e) => (e ? `${e.code}${e.status ? ` (HTTP ${e.status})` : ''}: ${e.message}` : '');
