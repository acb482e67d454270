/**
 * Trigger groups against the simulated PLC cell: exactly one event and one
 * handshake per trigger, across a server kill and restart.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSource } from '../../../src/protocols/opcua/index.js';
import { waitFor } from '../../helpers/net.js';
import { GatedSink, contractBuffer } from '../../helpers/source-contract.js';
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

test('failure handshake: written while the buffer refuses the event, no success handshake meanwhile; once accepted, one event and the handshake', async (t) => {
  const sim = await cell();
  const acksBefore = sim.acks;
  const failuresBefore = sim.failureWrites.length;
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const gate = new GatedSink(buffer.sinkFor('plc1'));
  const sink = new RecordingSink(gate);
  const cfg = cellConfig(sim, 'bool');
  const group = cfg.triggerGroups[0]!;
  cfg.triggerGroups[0] = { ...group, handshake: { ...group.handshake, failureNodeId: sim.id('Cell.Failure'), failureValue: true } };
  gate.open = false;
  const source = createSource(cfg, context(sink, dataDir));
  t.after(() => source.stop());
  await source.start();
  sim.produce(1, 'bool');

  await waitFor(() => sim.failureWrites.length > failuresBefore, 'the failure handshake', 10_000);
  assert.deepEqual(sim.failureWrites.slice(failuresBefore), [true], 'failureValue written to the failure node');
  // Keep refusing through several retries (the group's commit retry backs off up to 200 ms).
  const calls = gate.commitCalls;
  await waitFor(() => gate.commitCalls >= calls + 4, 'more refused commit attempts', 10_000);
  assert.equal(sim.acks, acksBefore, 'no success handshake while the buffer refuses');
  let st = source.status();
  assert.equal(st.counters['triggers.handshakes'], 0);
  assert.equal(st.counters['triggers.failureHandshakes'], 1, 'written once for the trigger, not on every retry');
  assert.ok((st.counters['triggers.refusals'] ?? 0) >= 4);
  assert.equal(st.lastError?.code, 'PG_ERR_BUFFER_FULL');
  assert.equal(buffer.stats().pendingEvents, 0);
  assert.equal(sim.failureWrites.length, failuresBefore + 1);

  gate.open = true;
  await waitFor(() => sim.acks > acksBefore, 'the handshake once commits are accepted', 10_000);
  // A few recheck periods (250 ms) more: the raised trigger must not produce a second event.
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(sim.acks, acksBefore + 1);
  assert.equal(buffer.stats().pendingEvents, 1, 'the event committed once');
  assert.equal(sink.fresh().length, 1);
  assert.equal(sink.committed.length, 1, 'not even offered again as a duplicate');
  st = source.status();
  assert.equal(st.counters['triggers.events'], 1);
  assert.equal(st.counters['triggers.duplicates'], 0);
  assert.equal(st.counters['triggers.handshakes'], 1);
});
