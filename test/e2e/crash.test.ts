/**
 * Crash safety: the daemon is SIGKILLed at random moments while publishers send,
 * and restarted each time on the same data. Every event whose PUBACK a publisher
 * received reaches the ERP; no event is accepted in two different batches; order
 * per partition holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startMockErp } from '../../scripts/mock-erp/server.js';
import { freePort, waitFor } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { gatewayYaml, startDaemon, writeConfig, type Daemon } from './daemon.js';

const KILLS = 4;
const EVENTS = 4000;
const WINDOW = 40;

describe('crash safety', () => {
  it('loses and duplicates nothing across repeated SIGKILLs during a publish run', async (t) => {
    const dir = tempDir(t);
    const erp = await startMockErp({ port: 0 });
    t.after(() => erp.close());
    const mqttPort = await freePort();
    const config = writeConfig(dir, gatewayYaml(dir, mqttPort, erp.url));
    let daemon: Daemon = await startDaemon(t, config);

    // A persistent session: mqtt.js resends unacknowledged messages (DUP) after each reconnect.
    const publisher = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'crash-publisher', clean: false, reconnectPeriod: 100, connectTimeout: 2000 });
    t.after(() => publisher.end(true));
    const acked = new Set<string>();
    let sent = 0;
    const publishing = (async () => {
      const deadline = Date.now() + 90_000;
      while (sent < EVENTS && Date.now() < deadline) {
        const batch = Array.from({ length: Math.min(WINDOW, EVENTS - sent) }, (_, k) => sent + k);
        sent += batch.length;
        await Promise.all(
          batch.map(
            (i) =>
              new Promise<void>((resolve) => {
                const id = `ev-${i}`;
                publisher.publish(`plant/p/line${i % 3}/completion`, JSON.stringify({ eventId: id, workOrder: `WO${i % 7}` }), { qos: 1 }, (err) => {
                  if (!err) acked.add(id);
                  resolve();
                });
              }),
          ),
        );
      }
    })();

    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 900));
      await daemon.kill('SIGKILL');
      daemon = await startDaemon(t, config);
    }
    await publishing;
    assert.equal(acked.size, EVENTS, 'every publish was acknowledged in the end');
    await waitFor(() => erp.report().accepted >= acked.size, 'all acknowledged events at the ERP', 45_000, 100);

    const report = erp.report({ ids: true });
    const atErp = new Set(report.ids);
    const missing = [...acked].filter((id) => !atErp.has(id));
    assert.deepEqual(missing, [], 'every acknowledged event reached the ERP');
    assert.equal(report.duplicates, 0, 'no event accepted in two different batches');
    assert.equal(report.orderViolations, 0, JSON.stringify(report.orderViolationDetails));
    assert.equal(report.accepted, EVENTS);
    assert.equal(await daemon.kill('SIGTERM'), 0);
  });
});
