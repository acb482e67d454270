/**
 * `npm run demo`: the mock ERP, the gateway on its embedded default config and a
 * simulated MES publishing to it, so a new user sees events flow within a minute.
 * One work order (WO-4711-REJ) is refused by the mock ERP, so the status page also
 * shows a dead letter with the ERP's reason. Ctrl-C stops everything.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { loadConfig } from '../src/config/load.js';
import { startMockErp } from './mock-erp/server.js';

const CONFIG = fileURLToPath(new URL('../../config/gateway.yaml', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const { config } = loadConfig(CONFIG);
const erpPort = Number(new URL(config.uplink.url).port);
const broker = config.sources.mqttBroker[0]!;

const erp = await startMockErp({ host: '127.0.0.1', port: erpPort });
erp.setFaults({ rejectPattern: 'WO-4711-REJ' });
console.log(`mock ERP       ${erp.url}  (report: ${erp.baseUrl}/_report)`);

const gateway = spawn(process.execPath, [MAIN, 'run', '--config', CONFIG], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve, reject) => {
  let buf = '';
  gateway.stdout!.on('data', (c: Buffer) => {
    buf += c.toString();
    if (buf.includes('"plantgate started"')) resolve();
  });
  gateway.once('exit', (code) => reject(new Error(`gateway exited with ${code}; run 'npm start' to see why`)));
});
console.log(`gateway        MQTT ${broker.host}:${broker.port} → ${config.uplink.url}`);
console.log(`status page    http://${config.web.host}:${config.web.port}/`);

const mes = await mqtt.connectAsync(`mqtt://${broker.host}:${broker.port}`, { clientId: 'demo-mes' });
const lines = ['line1', 'line2', 'line3'];
let published = 0;
const tick = setInterval(() => {
  const n = published++;
  const line = lines[n % lines.length]!;
  const now = new Date().toISOString();
  const workOrder = n % 40 === 7 ? 'WO-4711-REJ' : `WO-${4700 + (n % 9)}`;
  void mes.publishAsync(`plant/${config.gateway.site}/${line}/completion`, JSON.stringify({ eventId: `demo-${Date.now()}-${n}`, workOrder, material: 'GEAR-12', quantity: 1 + (n % 5), unit: 'PCE', timestamp: now }), { qos: 1 });
  if (n % 3 === 0) void mes.publishAsync(`plant/${config.gateway.site}/${line}/press-0${1 + (n % 2)}/state`, JSON.stringify({ state: n % 6 === 0 ? 'RUNNING' : 'IDLE', timestamp: now }), { qos: 1 });
  if (n % 5 === 0) void mes.publishAsync(`plant/${config.gateway.site}/${line}/quality`, JSON.stringify({ eventId: `q-${Date.now()}-${n}`, serial: `SN${100000 + n}`, result: n % 10 === 0 ? 'FAIL' : 'PASS', timestamp: now }), { qos: 1 });
}, 200);
const report = setInterval(() => {
  const r = erp.report();
  console.log(`published ${published} completions · ERP accepted ${r.accepted} events in ${r.batches} batches · duplicates ${r.duplicates} · order violations ${r.orderViolations}`);
}, 3000);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(tick);
  clearInterval(report);
  await mes.endAsync();
  gateway.kill('SIGTERM');
  await new Promise((r) => gateway.once('exit', r));
  await erp.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
