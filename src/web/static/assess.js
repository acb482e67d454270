// Turns a gateway status into the overall state (OK / DEGRADED / ALARM) and the
// list of what a technician should look at, with what to do where we know it.
import { duration, errText, num } from './format.js';

/** Events waiting this long without a delivery make the gateway DEGRADED. */
const STUCK_MS = 120000;

export const ADVICE = {
  PG_ERR_UPLINK_AUTH: 'Correct the ERP credentials in the gateway configuration (uplink section), restart plantgate, then press “Resume uplink”. Data is kept in the buffer meanwhile.',
  PG_ERR_UPLINK_TLS: 'Check the ERP address and the CA certificate configured for the uplink; the ERP\'s certificate was not accepted. Data is kept in the buffer meanwhile.',
};

/** Returns the overall level and what a technician should look at, worst first. */
export function assess(s) {
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
