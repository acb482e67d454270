/**
 * The web API over the real buffer: dead letters committed to LMDB by a source
 * and by an ERP rejection, listed, fetched, replayed and deleted through HTTP.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openBuffer } from '../../src/buffer/store.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import type { GatewayControl } from '../../src/status.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeUplink, sampleStatus, startTestServer } from './fake-control.js';

const defaults = parseConfig('').config.buffer;

describe('web: over the real buffer', () => {
  it('lists, shows, replays and deletes dead letters stored in LMDB', async (t) => {
    const buffer = await openBuffer({ dataDir: tempDir(t), config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
    t.after(() => buffer.close());

    // A source's dead letter: raw bytes only, not replayable.
    await buffer.sinkFor('x').deadLetter({ code: 'PG_ERR_MQTT_PAYLOAD', reason: 'payload is not JSON', raw: Buffer.from('not json {'), context: { topic: 'plant/l1/count' } });
    // An ERP rejection: the event itself, replayable.
    await buffer.sinkFor('mes').commit([{ draft: { id: 'ev-1', type: 'production.completion', time: '2026-11-26T10:00:00.000Z', partitionkey: 'site1/line1', data: { qty: 5 } } }]);
    const batch = await buffer.outbox.nextBatch('site1/line1', { maxEvents: 10, maxBytes: 1e6 });
    assert.ok(batch);
    await buffer.outbox.settle(batch, { delivered: [], rejected: [{ seq: batch.seqs[0]!, code: 'PG_ERR_UPLINK_REJECTED', reason: 'unknown material' }], retry: [] });
    assert.equal(buffer.stats().pendingEvents, 0);

    const control: GatewayControl = {
      status: () => ({ ...sampleStatus(), buffer: buffer.stats() }),
      deadLetters: buffer.deadLetters,
      resumeUplink: () => undefined,
      uplink: new FakeUplink() as unknown as GatewayControl['uplink'],
    };
    const server = await startTestServer(t, control);

    const page = (await (await fetch(`${server.url}/api/dead-letters`)).json()) as { count: number; items: { dlid: number; code: string; rawBytes?: number; event?: { id: string } }[] };
    assert.equal(page.count, 2);
    assert.deepEqual(page.items.map((d) => d.code), ['PG_ERR_MQTT_PAYLOAD', 'PG_ERR_UPLINK_REJECTED']);
    const [raw, refused] = page.items as [(typeof page.items)[0], (typeof page.items)[0]];
    assert.equal(raw.rawBytes, 'not json {'.length);
    assert.equal(refused.event?.id, 'ev-1');

    const one = (await (await fetch(`${server.url}/api/dead-letters/${raw.dlid}`)).json()) as { raw: string; context: unknown };
    assert.equal(Buffer.from(one.raw, 'base64').toString(), 'not json {');
    assert.deepEqual(one.context, { topic: 'plant/l1/count' });

    const notReplayable = await fetch(`${server.url}/api/dead-letters/${raw.dlid}/replay`, { method: 'POST' });
    assert.equal(notReplayable.status, 409);
    assert.equal(((await notReplayable.json()) as { code: string }).code, 'PG_ERR_DLQ_NOT_REPLAYABLE');

    const replay = await fetch(`${server.url}/api/dead-letters/${refused.dlid}/replay`, { method: 'POST' });
    assert.equal(replay.status, 200);
    const out = (await replay.json()) as { sequence: number; partition: string };
    assert.equal(out.partition, 'site1/line1');
    assert.ok(out.sequence > refused.dlid, 'replayed under a new, later sequence');
    assert.equal(buffer.stats().pendingEvents, 1, 'the event is back in the outbox');

    const status = (await (await fetch(`${server.url}/api/status`)).json()) as { buffer: { pendingEvents: number; deadLetters: number } };
    assert.equal(status.buffer.pendingEvents, 1);
    assert.equal(status.buffer.deadLetters, 1);

    const del = await fetch(`${server.url}/api/dead-letters/${raw.dlid}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(buffer.deadLetters.count(), 0);
    const gone = await fetch(`${server.url}/api/dead-letters/${raw.dlid}`);
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { code: string }).code, 'PG_ERR_DLQ_NOT_FOUND');

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^plantgate_buffer_pending_events 1$/m);
    assert.match(metrics, /^plantgate_dead_letters 0$/m);
  });
});
