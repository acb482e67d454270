/**
 * The operations surface of a running daemon: /readyz, /metrics and the CLI
 * (status, dlq, export) against its API.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { startMockErp } from '../../scripts/mock-erp/server.js';
import { freePort, waitFor } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { gatewayYaml, startDaemon, writeConfig } from './daemon.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/main.js', import.meta.url).pathname;

describe('operations', () => {
  it('answers readyz and metrics, and the CLI shows status and handles dead letters', async (t) => {
    const dir = tempDir(t);
    const erp = await startMockErp({ port: 0 });
    t.after(() => erp.close());
    erp.setFaults({ rejectPattern: 'WO-BAD' });
    const [mqttPort, webPort] = [await freePort(), await freePort()];
    const yaml = gatewayYaml(dir, mqttPort, erp.url).replace('web: { enabled: false }', `web: { host: 127.0.0.1, port: ${webPort} }`);
    const config = writeConfig(dir, yaml);
    const daemon = await startDaemon(t, config);
    const base = `http://127.0.0.1:${webPort}`;

    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`);
    t.after(() => client.endAsync(true));
    await client.publishAsync('plant/p/l1/completion', JSON.stringify({ eventId: 'ok-1', workOrder: 'WO-1' }), { qos: 1 });
    await client.publishAsync('plant/p/l1/completion', JSON.stringify({ eventId: 'bad-1', workOrder: 'WO-BAD' }), { qos: 1 });
    await client.publishAsync('plant/p/l1/completion', 'not json at all', { qos: 1 });
    await waitFor(async () => {
      const s = (await (await fetch(`${base}/api/status`)).json()) as { buffer: { deadLetters: number; pendingEvents: number } };
      return s.buffer.deadLetters === 2 && s.buffer.pendingEvents === 0;
    }, 'one ERP rejection and one malformed payload dead-lettered', 15_000);
    assert.equal(erp.report().accepted, 1);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /plantgate_dead_letters 2/);
    assert.match(metrics, /plantgate_uplink_events_delivered_total 1/);

    const status = await run(process.execPath, [MAIN, 'status', '--config', config]);
    assert.match(status.stdout, /gateway e2e-gw \(site plant9\)/);
    assert.match(status.stdout, /dead letters 2/);
    assert.match(status.stdout, /source {3}mes \(mqttBroker\) running/);

    const list = await run(process.execPath, [MAIN, 'dlq', 'list', '--config', config]);
    assert.match(list.stdout, /2 dead letter\(s\)/);
    assert.match(list.stdout, /PG_ERR_MQTT_PAYLOAD/);
    assert.match(list.stdout, /PG_ERR_UPLINK_REJECTED\tevent bad-1/);
    const rejectedId = /^(\d+)\t.*PG_ERR_UPLINK_REJECTED/m.exec(list.stdout)![1]!;
    const rawId = /^(\d+)\t.*PG_ERR_MQTT_PAYLOAD/m.exec(list.stdout)![1]!;

    const shown = await run(process.execPath, [MAIN, 'dlq', 'show', rawId, '--config', config]);
    assert.match(shown.stdout, /"rawText": "not json at all"/);

    const exported = join(dir, 'dlq.jsonl');
    await run(process.execPath, [MAIN, 'export', '--out', exported, '--config', config]);
    const lines = readFileSync(exported, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { raw?: string; reason: string });
    assert.equal(lines.length, 2);
    assert.equal(Buffer.from(lines.find((l) => l.raw)!.raw!, 'base64').toString(), 'not json at all');

    // The ERP accepts it now: replay sends it again with the same id.
    erp.setFaults({});
    const replay = await run(process.execPath, [MAIN, 'dlq', 'replay', rejectedId, '--config', config]);
    assert.match(replay.stdout, /committed again as sequence \d+ in partition p\/l1/);
    await waitFor(() => erp.report().accepted === 2, 'the replayed event at the ERP');
    const notReplayable = await run(process.execPath, [MAIN, 'dlq', 'replay', rawId, '--config', config]).catch((e: { code: number; stderr: string }) => e);
    assert.equal((notReplayable as { code: number }).code, 1);
    assert.match((notReplayable as { stderr: string }).stderr, /PG_ERR_DLQ_NOT_REPLAYABLE/);
    await run(process.execPath, [MAIN, 'dlq', 'delete', rawId, '--config', config]);
    const after = await run(process.execPath, [MAIN, 'dlq', 'list', '--config', config]);
    assert.match(after.stdout, /^0 dead letter\(s\)/);

    assert.equal(await daemon.kill('SIGTERM'), 0);
    const down = await run(process.execPath, [MAIN, 'status', '--config', config]).catch((e: { code: number; stderr: string }) => e);
    assert.match((down as { stderr: string }).stderr, /cannot reach the plantgate daemon/);
  });
});

describe('one gateway per data dir and port', () => {
  it('refuses a second daemon on the same data dir, saying why', async (t) => {
    const dir = tempDir(t);
    const [mqttPort, mqttPort2] = [await freePort(), await freePort()];
    const first = await startDaemon(t, writeConfig(dir, gatewayYaml(dir, mqttPort, 'http://127.0.0.1:9/events')));
    const secondDir = tempDir(t);
    const second = writeConfig(secondDir, gatewayYaml(dir, mqttPort2, 'http://127.0.0.1:9/events'));
    const res = await run(process.execPath, [MAIN, 'run', '--config', second]).catch((e: { code: number; stdout: string }) => e);
    assert.equal((res as { code: number }).code, 1);
    assert.match((res as { stdout: string }).stdout, /PG_ERR_BUFFER_LOCKED.*in use by another plantgate \(pid \d+\)/);
    assert.equal(await first.kill('SIGTERM'), 0);
  });
});
