// plantgate status page. Plain browser JavaScript, no build step, no external
// resources. Everything shown comes from the gateway's status (pushed over
// /api/live) and the dead-letter API. Values from the plant (payloads, reasons,
// topic names) are always set as text, never as HTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  /** Reconnect delays after the live feed drops (ms). */
  const RECONNECT_MS = [500, 1000, 2000, 5000];
  /** No status for this long on an open socket means the gateway hangs: treat as lost. */
  const SILENCE_MS = 5000;
  /** Events waiting this long without a delivery make the gateway DEGRADED. */
  const STUCK_MS = 120000;
  /** Window over which in/out rates are measured. */
  const RATE_WINDOW_MS = 60000;
  const DL_PAGE = 200;

  let status;
  let lastMessageAt = 0;
  let socket;
  let attempt = 0;
  let samples = [];
  let dlKnownCount = -1;
  let dlItems = [];
  let dlNextAfter;
  const activity = [];
  /** Sources whose Details the technician opened: cards are rebuilt every second and must stay open. */
  const openDetails = new Set();

  // ---- small DOM helpers -------------------------------------------------

  function el(tag, props, ...children) {
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
  function kv(dl, rows) {
    dl.replaceChildren(...rows.filter(Boolean).flatMap(([k, v, cls]) => [el('dt', { text: k }), el('dd', { class: cls }, v)]));
  }
  function setText(id, text) {
    $(id).textContent = text;
  }

  // ---- formatting --------------------------------------------------------

  const num = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
  function bytes(n) {
    if (typeof n !== 'number') return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
  }
  function duration(sec) {
    sec = Math.max(0, Math.round(sec));
    const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }
  const pad = (n) => String(n).padStart(2, '0');
  function clock(iso) {
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return String(iso);
    return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`;
  }
  function ago(iso) {
    const ms = Date.now() - new Date(iso).getTime();
    if (Number.isNaN(ms)) return '';
    return ms >= 0 ? `${duration(ms / 1000)} ago` : `in ${duration(-ms / 1000)}`;
  }
  const when = (iso) => (iso ? `${clock(iso)} (${ago(iso)})` : 'never');
  const ISO_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;
  const errText = (e) => (e ? `${e.code}${e.status ? ` (HTTP ${e.status})` : ''}: ${e.message}` : '');

  // ---- what needs attention ----------------------------------------------

  const ADVICE = {
    PG_ERR_UPLINK_AUTH: 'Correct the ERP credentials in the gateway configuration (uplink section), restart plantgate, then press “Resume uplink”. Data is kept in the buffer meanwhile.',
    PG_ERR_UPLINK_TLS: 'Check the ERP address and the CA certificate configured for the uplink; the ERP\'s certificate was not accepted. Data is kept in the buffer meanwhile.',
  };

  /** Returns the overall level and what a technician should look at, worst first. */
  function assess(s) {
    const items = [];
    const add = (level, text, advice) => items.push({ level, text, advice });
    const u = s.uplink;
    if (u.alarm) add('alarm', `Uplink alarm — ${u.alarm.code}: ${u.alarm.message}`, ADVICE[u.alarm.code]);
    if (!s.buffer.accepting) add('alarm', `Buffer full: ${s.buffer.fullReason || 'at a capacity limit'}. Sources hold back or refuse new data.`, 'Restore the ERP connection so the backlog drains, or free disk space.');
    if (u.state === 'stopped') add('alarm', 'Uplink stopped: nothing is sent to the ERP.');
    for (const src of s.sources) {
      if (src.state === 'error') add('alarm', `Source ${src.name} (${src.kind}) failed${src.lastError ? ` — ${errText(src.lastError)}` : ''}`);
      else if (src.state !== 'running') add('degraded', `Source ${src.name} (${src.kind}) is ${src.state}${src.lastError ? ` — ${errText(src.lastError)}` : ''}`);
    }
    if (!s.ready) add('degraded', 'Gateway not ready yet (still starting, or a part did not start).');
    if (u.state === 'paused' && !u.alarm) add('degraded', 'Uplink paused.', 'Press “Resume uplink” once the cause is fixed.');
    if (u.state === 'disabled') add('degraded', 'Uplink disabled in the configuration: events are kept, not sent.');
    const retrying = u.partitions.filter((p) => p.nextRetryAt || p.lastError);
    if (retrying.length && !u.alarm) add('degraded', `ERP not accepting for ${retrying.length} partition(s)${u.lastError ? ` — last error ${errText(u.lastError)}` : ''}. Retrying.`);
    const lastOk = u.lastSuccessAt ? new Date(u.lastSuccessAt).getTime() : new Date(s.startedAt).getTime();
    if (s.buffer.pendingEvents > 0 && Date.now() - lastOk > STUCK_MS && u.state === 'running') {
      add('degraded', `${num(s.buffer.pendingEvents)} events waiting and nothing delivered for ${duration((Date.now() - lastOk) / 1000)}.`);
    }
    if (s.buffer.deadLetters > 0) add('degraded', `${num(s.buffer.deadLetters)} dead letter(s) to review (below).`);
    const level = items.some((i) => i.level === 'alarm') ? 'alarm' : items.length ? 'degraded' : 'ok';
    items.sort((a, b) => (a.level === b.level ? 0 : a.level === 'alarm' ? -1 : 1));
    return { level, items };
  }

  // ---- rendering ---------------------------------------------------------

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
    if (s.buffer.deadLetters !== dlKnownCount) {
      dlKnownCount = s.buffer.deadLetters;
      void loadDeadLetters();
    }
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

  /** Kind-specific details are arbitrary JSON: shown as nested key/value lists. */
  function value(v, depth) {
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

  // ---- dead letters ------------------------------------------------------

  async function api(method, path) {
    const res = await fetch(path, { method, headers: { accept: 'application/json' } });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw Object.assign(new Error(body.message || `HTTP ${res.status}`), { code: body.code, status: res.status });
    return body;
  }

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

  // ---- live feed ---------------------------------------------------------

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
        void loadDeadLetters();
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
      if (dlKnownCount !== -1) void loadDeadLetters();
    };
    ws.onmessage = (e) => {
      try {
        onMessage(JSON.parse(e.data));
      } catch (err) {
        console.error('bad live message', err);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      setConnected(false);
      setTimeout(connect, RECONNECT_MS[Math.min(attempt++, RECONNECT_MS.length - 1)]);
    };
  }

  // A gateway that hangs keeps the socket open but stops talking.
  setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessageAt > SILENCE_MS) socket.close();
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
  $('dl-more').addEventListener('click', () => void loadDeadLetters(true));

  connect();
})();
