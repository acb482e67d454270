/** Data changes from a real node-opcua server (child process) arrive as Events with value, type, status and timestamps. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSource } from '../../../src/protocols/opcua/index.js';
import { waitFor } from '../../helpers/net.js';
import { contractBuffer } from '../../helpers/source-contract.js';
import { tempDir } from '../../helpers/tmp.js';
import { RecordingSink, context, opcuaConfig, sharedSim } from './helpers.js';

const sim = sharedSim({ nodesets: true });

test('data changes become events with value, OPC UA type, status code and timestamps; bad status kept and flagged', async (t) => {
  const server = await sim();
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const sink = new RecordingSink(buffer.sinkFor('plc1'));
  const cfg = opcuaConfig({
    endpointUrl: server.endpointUrl,
    line: 'press-line',
    publishingIntervalMs: 50,
    items: [
      { nodeId: server.id('Machine.PartCount'), name: 'partCount', type: 'machine.counter', subject: '{line}/{name}', samplingIntervalMs: 50 },
      { nodeId: server.id('Machine.State'), name: 'state', type: 'machine.state', samplingIntervalMs: 50 },
      { nodeId: server.id('Machine.Temperature'), name: 'temperature', type: 'machine.telemetry', deadband: { type: 'absolute', value: 0.1 } },
      { nodeId: server.id('Machine.BadSensor'), name: 'bad', type: 'machine.telemetry', samplingIntervalMs: 50 },
      // From the Machinery nodeset, by browse path: DI and Machinery namespaces are 2 and 4 after IA (3).
      { browsePath: '/Objects/4:Machines/1:Press1/2:Identification/2:SerialNumber', name: 'serial', type: 'machine.identification' },
    ],
  });
  const source = createSource(cfg, context(sink, dataDir));
  t.after(() => source.stop());
  await source.start();
  assert.equal(source.status().state, 'running');

  const byName = (n: string) => sink.committed.filter((c) => c.item.draft.data['name'] === n).map((c) => c.item.draft);
  await waitFor(() => byName('partCount').length >= 5 && byName('state').length >= 2 && byName('bad').length >= 4 && byName('serial').length >= 1, 'data changes', 10_000);

  const pc = byName('partCount').at(-1)!;
  assert.equal(pc.type, 'machine.counter');
  assert.equal(pc.subject, 'press-line/partCount');
  assert.equal(pc.partitionkey, 'site1/press-line');
  assert.equal(pc.data['dataType'], 'UInt32');
  assert.equal(typeof pc.data['value'], 'number');
  assert.equal(pc.data['statusCode'], 'Good');
  assert.equal(pc.data['quality'], 'good');
  assert.equal(pc.data['nodeId'], server.id('Machine.PartCount'));
  assert.match(String(pc.data['sourceTimestamp']), /^\d{4}-\d\d-\d\dT/);
  assert.match(String(pc.data['serverTimestamp']), /^\d{4}-\d\d-\d\dT/);
  assert.equal(pc.time, pc.data['sourceTimestamp'], 'time is the source timestamp');
  assert.match(pc.id!, /^[0-9a-f]{20}-\d+\.\d+$/, 'id: hash of server and node, then the source timestamp');
  const values = byName('partCount').map((d) => d.data['value'] as number);
  assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]!), `counter values increase in order: ${values.join(',')}`);

  assert.equal(byName('state').at(-1)!.data['dataType'], 'String');
  assert.equal(byName('serial')[0]!.data['value'], 'PRESS-0042');

  const bad = byName('bad');
  const qualities = new Set(bad.map((d) => d.data['quality']));
  assert.ok(qualities.has('bad') && qualities.has('uncertain'), `bad and uncertain values are kept: ${[...qualities].join(',')}`);
  assert.ok(bad.some((d) => d.data['statusCode'] === 'BadSensorFailure'));
  assert.ok(bad.some((d) => d.data['statusCode'] === 'UncertainLastUsableValue'));

  const st = source.status();
  assert.ok((st.counters['changes.committed'] ?? 0) >= 10);
  assert.ok((st.counters['changes.badQuality'] ?? 0) >= 4);
  const details = st.details as { servers: { state: string; endpointUrl: string; sessions: number }[] };
  assert.equal(details.servers[0]!.state, 'connected');
  assert.equal(details.servers[0]!.endpointUrl, server.endpointUrl);
  assert.equal(buffer.stats().pendingEvents, sink.fresh().length, 'every committed change is in the buffer once');
});

test('a wrong NodeId or browse path is reported with PG_ERR_OPCUA_NODE and the path', async (t) => {
  const server = await sim();
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const cfg = opcuaConfig({ endpointUrl: server.endpointUrl, reconnectMinDelayMs: 5000, items: [{ browsePath: '/Objects/1:Nope/1:Missing', name: 'x' }] });
  const source = createSource(cfg, context(buffer.sinkFor('plc1'), dataDir));
  t.after(() => source.stop());
  await source.start();
  const st = source.status();
  assert.equal(st.state, 'degraded');
  assert.equal(st.lastError?.code, 'PG_ERR_OPCUA_NODE');
  assert.match(st.lastError!.message, /\/Objects\/1:Nope\/1:Missing/);
});
