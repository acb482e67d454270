import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logger.js';
import { MqttBrokerSource } from '../../../src/protocols/mqtt-broker/broker.js';
import type { MqttBrokerConfigType } from '../../../src/protocols/mqtt-broker/config.js';
import type { CommitItem, IngestSink, SourceContext } from '../../../src/protocols/source.js';
import type { BufferStore } from '../../../src/buffer/store.js';
import { contractBuffer, sourceContractSuite } from '../../helpers/source-contract.js';
import { freePort, waitFor } from '../../helpers/net.js';
import { tempDir } from '../../helpers/tmp.js';

const run = promisify(execFile);

function brokerConfig(port: number, extra = ''): MqttBrokerConfigType {
  const yaml = `
sources:
  mqttBroker:
    - name: mes
      port: ${port}
      maxPayloadBytes: 2048
      ignoreTopics: ['chat/#']
      mappings:
        - topic: plant/{site}/{line}/completion
          type: production.completion
          idField: eventId
          subjectField: workOrder
          timeField: ts
        - topic: plant/{site}/{line}/state
          type: machine.state
${extra}`;
  return parseConfig(yaml).config.sources.mqttBroker[0]!;
}

function ctx(sink: IngestSink, dataDir: string): SourceContext {
  return { gatewayId: 'gw1', site: 'plant1', connector: 'mes', sink, logger: createLogger('silent'), dataDir };
}

async function connect(t: TestContext, port: number, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 100, ...opts });
  t.after(() => client.endAsync(true));
  return client;
}

async function startBroker(t: TestContext, wrap?: (s: IngestSink) => IngestSink): Promise<{ buffer: BufferStore; port: number; source: MqttBrokerSource }> {
  const dir = tempDir(t);
  const buffer = await contractBuffer(t, dir);
  const port = await freePort();
  const sink = buffer.sinkFor('mes');
  const source = new MqttBrokerSource(brokerConfig(port), ctx(wrap ? wrap(sink) : sink, dir));
  await source.start();
  t.after(() => source.stop());
  return { buffer, port, source };
}

function pendingEvents(buffer: BufferStore, partition: string): Record<string, unknown>[] {
  return buffer.outbox.nextBatch(partition, { maxEvents: 1000, maxBytes: 1e7 }).then((b) => (b ? buffer.outbox.events(b) : [])) as never;
}

describe('embedded MQTT broker', () => {
  it('sends PUBACK only after the event is committed', async (t) => {
    const order: string[] = [];
    const { buffer, port } = await startBroker(t, (sink) => ({
      ...sink,
      commit: async (items: CommitItem[]) => {
        const out = await sink.commit(items);
        order.push(`committed ${items[0]!.draft.id}`);
        return out;
      },
    }));
    const client = await connect(t, port);
    await Promise.all(
      [1, 2, 3].map(async (i) => {
        await client.publishAsync('plant/p1/l1/completion', JSON.stringify({ eventId: `wo-${i}`, workOrder: `WO${i}`, ts: '2026-11-26T08:00:00Z', qty: i }), { qos: 1 });
        order.push(`puback wo-${i}`);
      }),
    );
    for (const i of [1, 2, 3]) assert.ok(order.indexOf(`committed wo-${i}`) < order.indexOf(`puback wo-${i}`), order.join(', '));
    const events = await pendingEvents(buffer, 'p1/l1');
    assert.deepEqual(events.map((e) => e['id']).sort(), ['wo-1', 'wo-2', 'wo-3']);
    const e = events.find((x) => x['id'] === 'wo-2')!;
    assert.equal(e['subject'], 'WO2');
    assert.equal(e['time'], '2026-11-26T08:00:00.000Z');
    assert.equal(e['type'], 'production.completion');
    assert.equal(e['source'], '/plantgate/test-gw/mes');
  });

  it('stores a resend of the same event id once (publisher lost the PUBACK)', async (t) => {
    const { buffer, port } = await startBroker(t);
    const client = await connect(t, port);
    const msg = JSON.stringify({ eventId: 'dup-1', workOrder: 'WO1' });
    await client.publishAsync('plant/p1/l1/completion', msg, { qos: 1 });
    await client.publishAsync('plant/p1/l1/completion', msg, { qos: 1, dup: true } as mqtt.IClientPublishOptions);
    assert.equal(buffer.stats().pendingEvents, 1);
    assert.equal(buffer.stats().counters.duplicates, 1);
  });

  it('gives messages without an id a gateway id, and commits QoS 0 too', async (t) => {
    const { buffer, port, source } = await startBroker(t);
    const client = await connect(t, port);
    await client.publishAsync('plant/p1/l2/state', JSON.stringify({ state: 'RUNNING' }), { qos: 1 });
    client.publish('plant/p1/l2/state', JSON.stringify({ state: 'IDLE' }), { qos: 0 });
    await waitFor(() => buffer.stats().pendingEvents === 2, 'two events committed');
    const events = await pendingEvents(buffer, 'p1/l2');
    assert.deepEqual(events.map((e) => (e['data'] as { state: string }).state), ['RUNNING', 'IDLE']);
    assert.match(String(events[0]!['id']), /^test-gw-/);
    assert.notEqual(events[0]!['id'], events[1]!['id']);
    assert.equal(source.status().counters['committed'], 2);
  });

  it('dead-letters malformed JSON, unmapped topics and oversized payloads, acknowledges and counts them', async (t) => {
    const { buffer, port, source } = await startBroker(t);
    const client = await connect(t, port);
    await client.publishAsync('plant/p1/l1/completion', '{"eventId": "x", broken', { qos: 1 });
    await client.publishAsync('plant/p1/l1/unknown', '{"a":1}', { qos: 1 });
    await client.publishAsync('plant/p1/l1/completion', JSON.stringify({ eventId: 'big', blob: 'x'.repeat(5000) }), { qos: 1 });
    await client.publishAsync('plant/p1/l1/completion', JSON.stringify({ eventId: 'bad-time', ts: 'yesterday' }), { qos: 1 });
    await client.publishAsync('plant/p1/l1/completion', '[1,2]', { qos: 1 });
    const dls = buffer.deadLetters.list();
    assert.deepEqual(dls.map((d) => d.code), ['PG_ERR_MQTT_PAYLOAD', 'PG_ERR_MQTT_UNMAPPED', 'PG_ERR_MQTT_TOO_LARGE', 'PG_ERR_MQTT_MAPPING', 'PG_ERR_MQTT_PAYLOAD']);
    assert.equal(Buffer.from(dls[0]!.raw!, 'base64').toString(), '{"eventId": "x", broken');
    assert.match(dls[0]!.reason, /not valid JSON/);
    assert.match(dls[1]!.reason, /no mapping .* matches topic 'plant\/p1\/l1\/unknown'/);
    assert.match(dls[2]!.reason, /exceeds sources.mqttBroker.maxPayloadBytes \(2048\)/);
    assert.match(dls[3]!.reason, /'ts' is "yesterday", not a timestamp/);
    assert.deepEqual(dls[1]!.context, { topic: 'plant/p1/l1/unknown', clientId: client.options.clientId, qos: 1, bytes: 7 });
    assert.equal(buffer.stats().pendingEvents, 0);
    const c = source.status().counters;
    assert.equal(c['deadLettered'], 5);
    assert.equal(c['unmapped'], 1);
  });

  it('still routes messages to other subscribers, including ignored topics', async (t) => {
    const { buffer, port } = await startBroker(t);
    const sub = await connect(t, port);
    const got: string[] = [];
    sub.on('message', (topic) => got.push(topic));
    await sub.subscribeAsync(['plant/#', 'chat/#'], { qos: 1 });
    const pub = await connect(t, port);
    await pub.publishAsync('plant/p1/l1/completion', JSON.stringify({ eventId: 'r1' }), { qos: 1 });
    await pub.publishAsync('chat/hello', 'hi', { qos: 1 });
    await waitFor(() => got.length === 2, 'both messages routed');
    assert.deepEqual(got.sort(), ['chat/hello', 'plant/p1/l1/completion']);
    assert.equal(buffer.stats().pendingEvents, 1);
    assert.equal(buffer.deadLetters.count(), 0, 'ignored topics are not dead-lettered');
  });

  it('accepts messages from mosquitto_pub', async (t) => {
    const { buffer, port } = await startBroker(t);
    for (let i = 0; i < 3; i++) {
      await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', 'plant/p2/l1/completion', '-m', JSON.stringify({ eventId: `mp-${i}`, workOrder: 'WO9' })]);
    }
    assert.equal(buffer.stats().pendingEvents, 3);
  });

  it('holds PUBACKs while the buffer is full and acknowledges as it drains, losing nothing', async (t) => {
    const dir = tempDir(t);
    const { openBuffer } = await import('../../../src/buffer/store.js');
    const buffer = await openBuffer({ dataDir: dir, config: { ...parseConfig('').config.buffer, maxEvents: 10 }, gatewayId: 'gw1', logger: createLogger('silent') });
    t.after(() => buffer.close());
    const port = await freePort();
    const source = new MqttBrokerSource(brokerConfig(port), ctx(buffer.sinkFor('mes'), dir));
    await source.start();
    t.after(() => source.stop());
    const client = await connect(t, port);
    let acked = 0;
    const sends = Array.from({ length: 25 }, (_, i) =>
      client.publishAsync('plant/p1/l1/completion', JSON.stringify({ eventId: `f-${i}` }), { qos: 1 }).then(() => acked++),
    );
    await waitFor(() => buffer.stats().pendingEvents >= 10, 'buffer at its limit');
    buffer.refresh();
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(buffer.stats().accepting, false);
    const ackedWhileFull = acked;
    assert.ok(ackedWhileFull <= 10, `no PUBACK beyond the limit while full (got ${ackedWhileFull})`);
    assert.equal(source.status().state, 'degraded', JSON.stringify(source.status()) + JSON.stringify(buffer.stats()));
    // Drain as the uplink would, until everything is in.
    const drainFrom = Date.now();
    const delivered = new Set<string>();
    const times: number[] = [];
    await waitFor(async () => {
      const batch = await buffer.outbox.nextBatch('p1/l1', { maxEvents: 5, maxBytes: 1e6 });
      if (batch) {
        for (const e of buffer.outbox.events(batch)) {
          delivered.add(String(e['id']));
          times.push(Date.parse(String(e['time'])));
        }
        await buffer.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
        buffer.refresh();
      }
      return acked === 25 && buffer.stats().pendingEvents === 0;
    }, 'all 25 acknowledged and drained', 15_000, 50);
    await Promise.all(sends);
    assert.equal(delivered.size, 25);
    // Without a time field an event's time is its arrival, also when its commit was held and retried.
    assert.ok(times.every((ms) => ms < drainFrom), `times ${times.map((ms) => ms - drainFrom).join(', ')} ms after the drain began`);
  });
});

sourceContractSuite({
  kind: 'mqttBroker',
  async startPeer(t, _dataDir) {
    const port = await freePort();
    let produced = 0;
    let acked = 0;
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 100, clean: false, clientId: `contract-${port}` });
    t.after(() => client.end(true));
    return {
      createSource: (c) => new MqttBrokerSource(brokerConfig(port), c),
      async produce(n) {
        for (let i = 0; i < n; i++) {
          const id = `c-${produced++}`;
          client.publish('plant/p1/l1/completion', JSON.stringify({ eventId: id }), { qos: 1 }, (err) => {
            if (!err) acked++;
          });
        }
      },
      acknowledged: () => acked,
      close: async () => void client.end(true),
    };
  },
});
