/**
 * The whole daemon: several real MQTT publishers (mqtt.js and mosquitto_pub) →
 * embedded broker → LMDB → uplink → the mock ERP over HTTP. Every event arrives
 * exactly once, in order per partition.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { startMockErp } from '../../scripts/mock-erp/server.js';
import { freePort, waitFor } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { gatewayYaml, startDaemon, writeConfig } from './daemon.js';

const run = promisify(execFile);

describe('daemon end to end', () => {
  it('delivers events from several publishers exactly once, in order per partition', async (t) => {
    const dir = tempDir(t);
    const erp = await startMockErp({ port: 0 });
    t.after(() => erp.close());
    const mqttPort = await freePort();
    const daemon = await startDaemon(t, writeConfig(dir, gatewayYaml(dir, mqttPort, erp.url)));

    const perClient = 300;
    const clients = await Promise.all([1, 2, 3].map((n) => mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: `press-${n}` })));
    t.after(() => Promise.all(clients.map((c) => c.endAsync(true))));
    await Promise.all(
      clients.map(async (c, n) => {
        for (let i = 0; i < perClient; i += 50) {
          await Promise.all(
            Array.from({ length: 50 }, (_, k) =>
              c.publishAsync(`plant/plant9/line${n % 2}/completion`, JSON.stringify({ eventId: `p${n}-${i + k}`, workOrder: `WO-${n}`, qty: 1 }), { qos: 1 }),
            ),
          );
        }
      }),
    );
    // States without an id from mosquitto_pub: the gateway gives them ids.
    for (let i = 0; i < 5; i++) {
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqttPort), '-q', '1', '-t', 'plant/plant9/line7/state', '-m', JSON.stringify({ state: i % 2 ? 'RUN' : 'IDLE' })]);
    }
    const total = 3 * perClient + 5;
    await waitFor(() => erp.report().accepted >= total, `${total} events at the ERP`, 30_000, 50);
    const report = erp.report({ ids: true });
    assert.equal(report.accepted, total);
    assert.equal(report.duplicates, 0);
    assert.equal(report.orderViolations, 0, JSON.stringify(report.orderViolationDetails));
    assert.equal(report.contractViolations, 0, JSON.stringify(report.contractViolationDetails));
    assert.deepEqual(Object.keys(report.partitions).sort(), ['plant9/line0', 'plant9/line1', 'plant9/line7']);
    assert.equal(report.partitions['plant9/line7']!.count, 5);
    assert.equal(new Set(report.ids).size, total);

    assert.equal(await daemon.kill('SIGTERM'), 0, 'a clean exit on SIGTERM');
    assert.ok(daemon.logs.some((l) => l['msg'] === 'plantgate stopped'));
  });
});
