// The dead-letter table: list, detail view (raw payload as text or hex, or the
// event JSON), Replay (only where an event exists) and Delete (after a confirm).
import { $, api, el, kv, setText, value } from './dom.js';
import { bytes, clock, num, when } from './format.js';

const DL_PAGE = 200;

let dlKnownCount = -1;
let dlItems = [];
let dlNextAfter;

function message(text, kind) {
  const m = $('dl-message');
  m.hidden = !text;
  m.textContent = text || '';
  m.dataset.kind = kind || 'info';
}

async function loadDeadLetters(more) {
  try {
    const page = await api('GET', `api/dead-letters?limit=${DL_PAGE}${more && dlNextAfter ? `&after=${dlNextAfter}` : ''}`);
    dlItems = more ? dlItems.concat(page.items) : page.items;
    dlNextAfter = page.nextAfter;
    dlKnownCount = page.count;
    renderDeadLetters(page.count);
  } catch (err) {
    message(`Could not load dead letters: ${err.message}`, 'bad');
  }
}

function eventLabel(d) {
  if (!d.event) return d.rawBytes !== undefined ? `raw payload, ${bytes(d.rawBytes)}` : '—';
  const parts = [d.event.id, d.event.subject, d.event.type].filter((x) => typeof x === 'string');
  return parts.join(' · ') || 'event';
}

function renderDeadLetters(count) {
  setText('dl-count', count ? `(${num(count)}${dlItems.length < count ? `, showing ${num(dlItems.length)}` : ''})` : '');
  $('dl-empty').hidden = dlItems.length > 0;
  $('dead-letters').hidden = dlItems.length === 0;
  $('dl-more').hidden = !dlNextAfter;
  $('dead-letters').tBodies[0].replaceChildren(
    ...dlItems.map((d) =>
      el('tr', { 'data-dlid': d.dlid },
        el('td', { class: 'num', text: d.dlid }),
        el('td', { class: 'when' }, el('span', { text: clock(d.at).slice(0, 10) }), el('span', { text: clock(d.at).slice(11) })),
        el('td', {}, el('span', { class: 'block', text: d.connector }), el('span', { class: 'block mono small', text: d.code })),
        el('td', { class: 'reason', text: d.reason }),
        el('td', { class: 'mono small event', text: eventLabel(d) }),
        el('td', { class: 'actions' },
          el('button', { class: 'btn', type: 'button', onclick: () => void showDetail(d.dlid) }, 'View'),
          d.event ? el('button', { class: 'btn primary', type: 'button', 'data-action': 'replay', onclick: (e) => void replay(d, e.currentTarget) }, 'Replay') : null,
          el('button', { class: 'btn danger', type: 'button', 'data-action': 'delete', onclick: (e) => void remove(d, e.currentTarget) }, 'Delete'),
        ),
      ),
    ),
  );
}

function dropRow(dlid) {
  dlItems = dlItems.filter((x) => x.dlid !== dlid);
  dlKnownCount = Math.max(0, dlKnownCount - 1);
  renderDeadLetters(dlKnownCount);
}

async function replay(d, button) {
  button.disabled = true;
  try {
    const out = await api('POST', `api/dead-letters/${d.dlid}/replay`);
    dropRow(d.dlid);
    message(`Dead letter ${d.dlid} replayed: queued again as sequence ${out.sequence} for partition ${out.partition}.`, 'good');
  } catch (err) {
    button.disabled = false;
    message(`Replay of ${d.dlid} refused: ${err.message}`, 'bad');
  }
}

async function remove(d, button) {
  if (!window.confirm(`Delete dead letter ${d.dlid} (${d.code}) for good? Its data will be lost.`)) return;
  button.disabled = true;
  try {
    await api('DELETE', `api/dead-letters/${d.dlid}`);
    dropRow(d.dlid);
    message(`Dead letter ${d.dlid} deleted.`, 'info');
  } catch (err) {
    button.disabled = false;
    message(`Delete of ${d.dlid} failed: ${err.message}`, 'bad');
  }
}

function decodeRaw(b64) {
  const bin = atob(b64);
  const buf = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(buf), note: `${bytes(buf.length)} as received, shown as UTF-8 text.` };
  } catch {
    const lines = [];
    for (let i = 0; i < Math.min(buf.length, 4096); i += 16) {
      const row = Array.from(buf.subarray(i, i + 16));
      lines.push(`${i.toString(16).padStart(6, '0')}  ${row.map((x) => x.toString(16).padStart(2, '0')).join(' ').padEnd(48)}  ${row.map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('')}`);
    }
    return { text: lines.join('\n'), note: `${bytes(buf.length)} as received; not valid UTF-8 text, shown as hex${buf.length > 4096 ? ' (first 4 KiB)' : ''}.` };
  }
}

async function showDetail(dlid) {
  let d;
  try {
    d = await api('GET', `api/dead-letters/${dlid}`);
  } catch (err) {
    message(`Could not open dead letter ${dlid}: ${err.message}`, 'bad');
    return;
  }
  setText('dl-detail-title', `Dead letter ${d.dlid}`);
  kv($('dl-detail-kv'), [
    ['Time', when(d.at)],
    ['Connector', d.connector],
    ['Code', d.code],
    ['Reason', d.reason],
    d.partition ? ['Partition', d.partition] : null,
    d.context ? ['Context', value(d.context, 0)] : null,
  ]);
  let payload = { text: '(nothing was kept)', note: '' };
  if (d.raw !== undefined) payload = decodeRaw(d.raw);
  else if (d.event) payload = { text: JSON.stringify(d.event, null, 2), note: 'The event as it was refused.' };
  setText('dl-detail-payload-title', d.raw !== undefined ? 'Raw payload' : 'Event');
  setText('dl-detail-note', payload.note);
  setText('dl-detail-payload', payload.text);
  const dialog = $('dl-detail');
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
}

/** Reloads the table when the gateway's dead-letter count differs from what is shown. */
export function syncDeadLetters(count) {
  if (count === dlKnownCount) return;
  dlKnownCount = count;
  void loadDeadLetters();
}

export function reloadDeadLetters() {
  if (dlKnownCount !== -1) void loadDeadLetters();
}

$('dl-more').addEventListener('click', () => void loadDeadLetters(true));
