/**
 * The whole daemon with a WMS inbox and MQTT publishing into the same partition: a
 * large file reaches the ERP only once it is read to the end, a large file with a bad
 * last record never does, and MQTT events committed while a file is held wait behind
 * it, so the ERP still sees the partition in sequence order.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { startMockErp } from '../../scripts/mock-erp/server.js';
import { KEEP_DRAFTS_MAX } from '../../src/protocols/filedrop/ingest.js';
import { freePort, waitFor } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';
import { gatewayYaml, startDaemon, writeConfig } from './daemon.js';

const RECORDS = KEEP_DRAFTS_MAX * 3;

function receipts(prefix: string, badAt?: number): string {
  const lines = ['ReceiptNo,SSCC,Qty'];
  for (let i = 1; i <= RECORDS; i++) lines.push(`${prefix}-${i},${String(i).padStart(18, '0')},${i === badAt ? 'lots' : i % 9}`);
  return lines.join('\n');
}

describe('daemon end to end: WMS files held while read', () => {
  it('sends a large file only once read whole, never a rejected one, and keeps the partition in order around it', async (t) => {
    const dir = tempDir(t);
    const inbox = join(dir, 'inbox');
    mkdirSync(inbox, { recursive: true });
    const erp = await startMockErp({ port: 0 });
    t.after(() => erp.close());
    const mqttPort = await freePort();
    const filedrop = `  filedrop:
    - name: wms
      path: ${inbox}
      pollMs: 20
      completion: { mode: rename }
      format: { kind: csv }
      mapping:
        type: goods.receipt
        partitionKey: plant9/line1
        subjectField: receipt
        fields: { receipt: ReceiptNo, sscc: SSCC, quantity: { from: Qty, as: number } }
`;
    const daemon = await startDaemon(t, writeConfig(dir, gatewayYaml(dir, mqttPort, erp.url, filedrop)));
    const drop = (name: string, content: string) => {
      writeFileSync(join(inbox, `.${name}.tmp`), content);
      renameSync(join(inbox, `.${name}.tmp`), join(inbox, name));
    };

    // MQTT events into the same partition the whole time, before, during and after both files.
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'press-1' });
    t.after(() => client.endAsync(true));
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      const deadline = Date.now() + 30_000;
      while (publishing && Date.now() < deadline) {
        await Promise.all(Array.from({ length: 10 }, () => client.publishAsync('plant/plant9/line1/completion', JSON.stringify({ eventId: `m-${published++}`, workOrder: 'WO-1' }), { qos: 1 })));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const bad = receipts('BAD', RECORDS);
    const good = receipts('R');
    drop('bad.csv', bad);
    await waitFor(() => daemon.logs.some((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('file rejected')), 'the bad file rejected', 20_000);
    drop('good.csv', good);
    await waitFor(() => daemon.logs.some((l) => l['msg'] === 'file archived'), 'the good file archived', 20_000);
    publishing = false;
    await publisher;

    const stream = (content: string) => `fd:wms:${createHash('sha256').update(content).digest('hex').slice(0, 32)}:`;
    await waitFor(() => erp.report().accepted >= RECORDS + published, `${RECORDS} file events and ${published} MQTT events at the ERP`, 30_000, 50);
    const report = erp.report({ ids: true });
    assert.equal(report.duplicates, 0);
    assert.equal(report.orderViolations, 0, `the partition in sequence order: ${JSON.stringify(report.orderViolationDetails)}`);
    assert.equal(report.ids!.filter((id) => id.startsWith(stream(good))).length, RECORDS, 'the good file, whole');
    assert.equal(report.ids!.filter((id) => id.startsWith(stream(bad))).length, 0, 'nothing of the rejected file');
    assert.equal(report.ids!.filter((id) => id.startsWith('m-')).length, published, 'every MQTT event');
    assert.equal(report.accepted, RECORDS + published);
    assert.equal(await daemon.kill('SIGTERM'), 0);
  });
});
