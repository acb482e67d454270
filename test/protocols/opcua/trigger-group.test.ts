/**
 * Trigger groups against the simulated PLC cell: exactly one event and one
 * handshake per trigger, across a server kill and restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSource } from '../../../src/protocols/opcua/index.js';
import { waitFor } from '../../helpers/net.js';
import { contractBuffer } from '../../helpers/source-contract.js';
import { tempDir } from '../../helpers/tmp.js';
import { RecordingSink, cellConfig, context, sharedSim, startSim } from './helpers.js';

const cell = sharedSim();


for (const mode of ['bool', 'counter'] as const) {
  test(`trigger group (${mode}): N triggers → exactly N events and N handshakes, fields read in one Read`, async (t) => {
    const sim = await cell();
    const acksBefore = sim.acks;
    const dataDir = tempDir(t);
    const buffer = await contractBuffer(t, dataDir);
    const sink = new RecordingSink(buffer.sinkFor('plc1'));
    const source = createSource(cellConfig(sim, mode), context(sink, dataDir));
    t.after(() => source.stop());
    await source.start();
    const N = 12;
    sim.produce(N, mode);
    await waitFor(() => sim.acks - acksBefore >= N, `${N} handshakes`, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sim.acks - acksBefore, N);
    assert.equal(sink.fresh().length, N, 'one event per trigger');
    assert.equal(buffer.stats().pendingEvents, N);
    assert.equal(new Set(sink.fresh().map((c) => c.outcome.id)).size, N, 'distinct ids');
    // The cell's part count runs on across the tests of this file: compare with the first event's.
    const first = sink.fresh()[0]!.item.draft.data['partCount'] as number;
    const serials = sink.fresh().map((c) => c.item.draft.data['serial']);
    assert.deepEqual(serials, Array.from({ length: N }, (_, i) => `SN-${String(first + i).padStart(6, '0')}`), 'each event carries its own cycle data, in order');
    const ev = sink.fresh()[9]!.item.draft;
    assert.equal(ev.type, 'production.completion');
    assert.equal(ev.data['partCount'], first + 9);
    assert.equal(ev.subject, `WO-${1000 + Math.floor((first + 9) / 10)}`);
    assert.equal(ev.data['group'], 'completion');
    assert.equal((ev.data['fields'] as Record<string, { dataType: string }>)['scrap']!.dataType, 'Int16');
    const st = source.status();
    assert.equal(st.counters['triggers.events'], N);
    assert.equal(st.counters['triggers.handshakes'], N);
  });
}

test('server killed and restarted mid-run: session and subscriptions come back, no trigger lost, none doubled', async (t) => {
  const sim = await startSim(t);
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const sink = new RecordingSink(buffer.sinkFor('plc1'));
  const source = createSource(cellConfig(sim, 'counter', { items: [{ nodeId: sim.id('Machine.PartCount'), name: 'pc', samplingIntervalMs: 50 }] }), context(sink, dataDir));
  t.after(() => source.stop());
  await source.start();
  sim.produce(3);
  await waitFor(() => sim.acks >= 3, 'three handshakes', 10_000);

  await sim.kill();
  await waitFor(() => (source.status().details as { servers: { state: string }[] }).servers[0]!.state !== 'connected', 'the loss to be noticed', 10_000);
  // The PLC restarts with its retained counter and raises new triggers before plantgate is back.
  await sim.start(3);
  sim.produce(4);
  await waitFor(() => sim.acks >= 7, 'seven handshakes after the restart', 20_000);
  const changesBefore = sink.committed.filter((c) => c.item.draft.data['name'] === 'pc').length;
  await waitFor(() => sink.committed.filter((c) => c.item.draft.data['name'] === 'pc').length > changesBefore + 3, 'data changes again', 10_000);

  const groupEvents = sink.fresh().filter((c) => c.item.draft.type === 'production.completion');
  assert.equal(groupEvents.length, 7, 'seven triggers, seven events');
  const st = source.status();
  const server = (st.details as { servers: { state: string; reconnects: number; sessions: number }[] }).servers[0]!;
  assert.equal(server.state, 'connected');
  assert.ok(server.reconnects >= 1);
  assert.equal(server.sessions, 2, 'one new session, not a pile of them');
  // No duplicated monitored items: each sample of the counter arrives once per session.
  const pcValues = sink.committed.filter((c) => c.item.draft.data['name'] === 'pc' && !c.outcome.duplicate).map((c) => c.item.draft.data['sourceTimestamp']);
  assert.equal(new Set(pcValues).size, pcValues.length, 'no data change committed twice');
  const dupOfPc = sink.committed.filter((c) => c.item.draft.data['name'] === 'pc' && c.outcome.duplicate).length;
  assert.ok(dupOfPc <= 1, `at most the initial value is re-delivered (${dupOfPc})`);
});
