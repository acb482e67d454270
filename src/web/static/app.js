// plantgate status page: renders the gateway status pushed over /api/live and
// keeps the feed alive. Plain browser JavaScript modules, no build step, no
// external resources; the dead-letter table lives in dead-letters.js.
import { ADVICE, assess } from './assess.js';
import { reloadDeadLetters, syncDeadLetters } from './dead-letters.js';
import { $, api, el, kv, setText, value } from './dom.js';
import { ago, bytes, clock, duration, errText, num, when } from './format.js';

/** Reconnect delays after the live feed drops (ms). */
const RECONNECT_MS = [500, 1000, 2000, 5000];
/** No status for this long on an open socket means the gateway hangs: treat as lost. */
const SILENCE_MS = 5000;
/** Window over which in/out rates are measured. */
const RATE_WINDOW_MS = 60000;

let status;
let lastMessageAt = 0;
let socket;
let attempt = 0;
let samples = [];
const activity = [];
/** Sources whose Details the technician opened: cards are rebuilt every second and must stay open. */
const openDetails = new Set();

function rate(key) {
  if (samples.length < 2) return undefined;
  const a = samples[0], b = samples[samples.length - 1];
  const dt = (b.t - a.t) / 60000;
  return dt > 0 ? Math.max(0, (b[key] - a[key]) / dt) : undefined;
}
const perMin = (r) => (r === undefined ? 'measuring…' : `${r >= 10 ? Math.round(r) : r.toFixed(1)}/min`);

function render(s) {
  status = s;
  const now = Date.now();
  samples.push({ t: now, in: s.buffer.counters.committed, out: s.uplink.counters.eventsDelivered });
  samples = samples.filter((x) => now - x.t <= RATE_WINDOW_MS);

  setText('gw-id', s.gatewayId);
  setText('gw-meta', `site ${s.site} · v${s.version} · up ${duration(s.uptimeSeconds)} · ${s.node}`);
  document.title = `plantgate ${s.gatewayId}`;

  const { level, items } = assess(s);
  const badge = $('overall');
  badge.dataset.level = level;
  badge.textContent = level === 'ok' ? 'OK' : level.toUpperCase();
  $('attention').hidden = items.length === 0;
  $('attention-list').replaceChildren(
    ...items.map((i) => el('li', { class: i.level }, el('span', { class: 'what', text: i.text }), i.advice ? el('span', { class: 'advice', text: i.advice }) : null)),
  );

  renderFlow(s);
  renderBuffer(s.buffer);
  renderUplink(s.uplink);
  renderPartitions(s.uplink.partitions);
  renderSources(s.sources);
  setText('updated', clock(new Date().toISOString()));
  syncDeadLetters(s.buffer.deadLetters);
}

function renderFlow(s) {
  const running = s.sources.filter((x) => x.state === 'running').length;
  setText('flow-sources-main', `${running} of ${s.sources.length} running`);
  setText('flow-sources-sub', `in: ${perMin(rate('in'))}`);
  $('flow-sources').dataset.level = s.sources.some((x) => x.state === 'error') ? 'alarm' : running < s.sources.length ? 'degraded' : 'ok';
  setText('pending', num(s.buffer.pendingEvents));
  setText('flow-buffer-sub', s.buffer.accepting ? `accepting · ${bytes(s.buffer.freeDiskBytes)} free` : `FULL · ${s.buffer.fullReason || ''}`);
  $('flow-buffer').dataset.level = s.buffer.accepting ? 'ok' : 'alarm';
  const u = s.uplink;
  setText('flow-uplink-main', u.alarm ? 'ALARM' : u.state);
  setText('flow-uplink-sub', `out: ${perMin(rate('out'))} · last delivery ${u.lastSuccessAt ? ago(u.lastSuccessAt) : 'never'}`);
  $('flow-uplink').dataset.level = u.alarm || u.state === 'stopped' ? 'alarm' : u.state !== 'running' || u.partitions.some((p) => p.nextRetryAt) ? 'degraded' : 'ok';
}

function renderBuffer(b) {
  kv($('buffer-kv'), [
    ['Pending events', num(b.pendingEvents), 'big'],
    ['Intake', b.accepting ? 'accepting' : `FULL — ${b.fullReason || 'at a capacity limit'}`, b.accepting ? 'good' : 'bad'],
    ['Store size', bytes(b.storeBytes)],
    ['Free disk', bytes(b.freeDiskBytes)],
    ['Dead letters', num(b.deadLetters), b.deadLetters ? 'warn' : ''],
    // A large file is committed while read; its partitions send nothing until it is read to the end.
    ...(b.held || []).map((h) => [`Held: file being read (${h.connector})`, `${h.file} · ${h.partitions.join(', ')} wait until it is read to the end`]),
    ['Committed', num(b.counters.committed)],
    ['Duplicates ignored', num(b.counters.duplicates)],
    ['Refused while full', num(b.counters.refused), b.counters.refused ? 'warn' : ''],
    ['Dropped while full', num(b.counters.dropped), b.counters.dropped ? 'warn' : ''],
    b.counters.commitErrors ? ['Commit errors', num(b.counters.commitErrors), 'bad'] : null,
  ]);
}

function renderUplink(u) {
  const alarm = $('uplink-alarm');
  alarm.hidden = !u.alarm;
  if (u.alarm) {
    alarm.replaceChildren(
      el('strong', { text: `${u.alarm.code} since ${clock(u.alarm.since)}` }),
      el('div', { text: u.alarm.message }),
      ADVICE[u.alarm.code] ? el('div', { class: 'advice', text: ADVICE[u.alarm.code] }) : null,
    );
  }
  $('resume').hidden = !(u.state === 'paused' || u.alarm);
  const c = u.counters;
  kv($('uplink-kv'), [
    ['State', u.state, u.state === 'running' ? 'good' : u.state === 'stopped' ? 'bad' : 'warn'],
    ['Last delivery', when(u.lastSuccessAt)],
    ['Last error', u.lastError ? `${errText(u.lastError)} — ${when(u.lastError.at)}` : 'none', u.lastError ? 'warn' : ''],
    ['Events delivered', num(c.eventsDelivered)],
    ['Events refused', num(c.eventsRejected), c.eventsRejected ? 'warn' : ''],
    ['Requests / retries', `${num(c.requests)} / ${num(c.retries)}`],
    ['Recent activity', activity.length ? el('ul', { class: 'activity' }, activity.map((a) => el('li', { class: a.cls, text: a.text }))) : 'none yet'],
  ]);
}

function renderPartitions(parts) {
  setText('partitions-count', parts.length ? `(${parts.length})` : '');
  $('partitions-empty').hidden = parts.length > 0;
  $('partitions').hidden = parts.length === 0;
  $('partitions').tBodies[0].replaceChildren(
    ...parts.map((p) =>
      el('tr', {},
        el('td', { class: 'mono nowrap', text: p.partition }),
        el('td', { class: 'num', text: num(p.unsent) }),
        el('td', { text: p.inFlight ? `${num(p.inFlight.events)} events, since ${ago(p.inFlight.since)}` : '—', title: p.inFlight ? p.inFlight.batchId : undefined }),
        el('td', { class: 'num', text: p.inFlight ? num(p.inFlight.attempts) : '—' }),
        el('td', { text: p.nextRetryAt ? `${clock(p.nextRetryAt)} (${ago(p.nextRetryAt)})` : '—' }),
        el('td', { class: p.lastError ? 'bad wrap' : '', text: p.lastError ? `${errText(p.lastError)} (${ago(p.lastError.at)})` : '—' }),
      ),
    ),
  );
}

function renderSources(sources) {
  $('sources-empty').hidden = sources.length > 0;
  $('sources').replaceChildren(
    ...sources.map((src) => {
      const counters = el('div', { class: 'counters' },
        Object.entries(src.counters).map(([k, v]) => el('div', { class: 'tile' }, el('span', { class: 'label', text: k }), el('span', { class: 'value', text: num(v) }))),
      );
      return el('article', { class: 'card source', 'data-state': src.state },
        el('header', {}, el('h3', { text: src.name }), el('span', { class: 'kind', text: src.kind }), el('span', { class: `pill ${src.state}`, text: src.state })),
        src.lastError ? el('div', { class: 'error-box', text: `${errText(src.lastError)} — ${when(src.lastError.at)}` }) : null,
        counters,
        src.details !== undefined
          ? el('details', { open: openDetails.has(src.name), ontoggle: (e) => (e.currentTarget.open ? openDetails.add(src.name) : openDetails.delete(src.name)) },
              el('summary', { text: 'Details' }), value(src.details, 0))
          : null,
      );
    }),
  );
}

function note(cls, text) {
  activity.unshift({ cls, text: `${clock(new Date().toISOString()).slice(11)} ${text}` });
  activity.length = Math.min(activity.length, 6);
}

function onMessage(msg) {
  lastMessageAt = Date.now();
  switch (msg.type) {
    case 'status':
      render(msg.status);
      return;
    case 'delivered':
      note('good', `delivered ${msg.events} event(s) · ${msg.partition}`);
      break;
    case 'rejected':
      note('bad', `refused seq ${msg.seq} · ${msg.partition}: ${msg.reason}`);
      reloadDeadLetters();
      break;
    case 'retry':
      note('warn', `retry #${msg.attempts} in ${duration(msg.delayMs / 1000)} · ${msg.partition}: ${msg.code}`);
      break;
    case 'state':
      note('info', `uplink ${msg.state}`);
      break;
    case 'alarm':
      note(msg.alarm ? 'bad' : 'good', msg.alarm ? `alarm ${msg.alarm.code}` : 'alarm cleared');
      break;
    default:
      return;
  }
  if (status) renderUplink(status.uplink);
}

function setConnected(up) {
  const conn = $('conn');
  conn.dataset.state = up ? 'live' : 'lost';
  conn.textContent = up ? 'live' : 'offline';
  $('lost').hidden = up || !status;
  $('main').classList.toggle('stale', !up);
  if (!up) {
    setText('lost-since', lastMessageAt ? clock(new Date(lastMessageAt).toISOString()) : 'start-up');
    const badge = $('overall');
    badge.dataset.level = 'unknown';
    badge.textContent = 'NO CONNECTION';
  }
}

function connect() {
  const url = new URL('api/live', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url);
  socket = ws;
  ws.onopen = () => {
    attempt = 0;
    lastMessageAt = Date.now();
    setConnected(true);
    reloadDeadLetters(); // what changed while we were away
  };
  ws.onmessage = (e) => {
    try {
      onMessage(JSON.parse(e.data));
    } catch (err) {
      console.error('bad live message', err);
    }
  };
  ws.onclose = () => {
    if (socket === ws) lost();
  };
}

function lost() {
  socket = undefined;
  setConnected(false);
  setTimeout(connect, RECONNECT_MS[Math.min(attempt++, RECONNECT_MS.length - 1)]);
}

// A gateway that hangs keeps the socket open but stops talking. Its close
// handshake would hang too, so the page gives up on it at once.
setInterval(() => {
  if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessageAt > SILENCE_MS) {
    const stale = socket;
    lost();
    stale.close();
  }
}, 1000);

$('resume').addEventListener('click', async () => {
  try {
    const out = await api('POST', 'api/uplink/resume');
    note('info', `resume requested; uplink ${out.uplink}`);
  } catch (err) {
    note('bad', `resume failed: ${err.message}`);
  }
  if (status) renderUplink(status.uplink);
});

connect();
