/** `plantgate status`: a running daemon's state, readable in a terminal (or --json). */
import type { Config } from '../config/schema.js';
import type { GatewayStatus } from '../status.js';
import { api } from './api-client.js';

export async function statusCommand(config: Config, json: boolean, out = (l: string) => process.stdout.write(`${l}\n`)): Promise<number> {
  const s = await api<GatewayStatus>(config, 'GET', '/api/status');
  if (json) {
    out(JSON.stringify(s, null, 2));
    return 0;
  }
  const b = s.buffer;
  const u = s.uplink;
  out(`plantgate ${s.version} · gateway ${s.gatewayId} (site ${s.site}) · up ${s.uptimeSeconds}s · ${s.ready ? 'ready' : 'NOT READY'}`);
  out(`buffer   ${b.pendingEvents} pending · ${(b.storeBytes / 1048576).toFixed(1)} MiB · ${(b.freeDiskBytes / 1073741824).toFixed(1)} GiB free · ${b.accepting ? 'accepting' : `FULL: ${b.fullReason}`}`);
  out(`         committed ${b.counters.committed} · duplicates ${b.counters.duplicates} · dropped ${b.counters.dropped} · dead letters ${b.deadLetters}`);
  out(`uplink   ${u.state}${u.alarm ? ` · ALARM ${u.alarm.code}: ${u.alarm.message}` : ''} · delivered ${u.counters.eventsDelivered} · rejected ${u.counters.eventsRejected} · retries ${u.counters.retries}`);
  if (u.lastError) out(`         last error ${u.lastError.at}: ${u.lastError.code} ${u.lastError.message}`);
  for (const p of u.partitions) out(`         ${p.partition}: ${p.unsent} unsent${p.inFlight ? ` · in flight ${p.inFlight.batchId} (${p.inFlight.events} events, attempt ${p.inFlight.attempts})` : ''}${p.nextRetryAt ? ` · retry at ${p.nextRetryAt}` : ''}`);
  for (const src of s.sources) {
    const counters = Object.entries(src.counters).map(([k, v]) => `${k} ${v}`).join(' · ');
    out(`source   ${src.name} (${src.kind}) ${src.state}${counters ? ` · ${counters}` : ''}`);
    if (src.lastError) out(`         last error ${src.lastError.at}: ${src.lastError.code} ${src.lastError.message}`);
  }
  return s.ready && !u.alarm ? 0 : 1;
}
