import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fakeGateway, startTestServer } from './fake-control.js';

/** The value of one sample line, e.g. `plantgate_buffer_pending_events 4321`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('web: /metrics', () => {
  it('exposes the gateway figures read from status() at scrape time', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();

    const expected: Record<string, number> = {
      plantgate_buffer_pending_events: 4321,
      plantgate_buffer_bytes: 12_582_912,
      plantgate_buffer_free_disk_bytes: 48_318_382_080,
      plantgate_buffer_accepting: 1,
      plantgate_buffer_held_files: 1,
      plantgate_dead_letters: 2,
      plantgate_events_committed_total: 5000,
      plantgate_events_duplicates_total: 3,
      plantgate_events_dropped_total: 0,
      plantgate_events_refused_total: 0,
      plantgate_uplink_events_delivered_total: 679,
      plantgate_uplink_events_rejected_total: 1,
      plantgate_uplink_requests_total: 120,
      plantgate_uplink_retries_total: 7,
      plantgate_uplink_paused: 0,
      plantgate_ready: 1,
      'plantgate_source_up{source="press-line1",kind="opcua"}': 1,
      'plantgate_source_up{source="mes-broker",kind="mqtt-broker"}': 0,
      'plantgate_source_counter{source="mes-broker",kind="mqtt-broker",counter="clients"}': 3,
      'plantgate_source_counter{source="press-line1",kind="opcua",counter="changes.received"}': 15234,
      'plantgate_uplink_partition_unsent_events{partition="plant-a/line2"}': 221,
    };
    for (const [series, value] of Object.entries(expected)) assert.equal(sample(text, series), value, series);
    assert.match(text, /# TYPE plantgate_events_committed_total counter/);
    assert.match(text, /# TYPE plantgate_buffer_pending_events gauge/);
    assert.match(text, /^process_cpu_user_seconds_total /m, 'default process metrics');
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
  });

  it('follows the status on every scrape, and drops series that went away', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    await fetch(`${server.url}/metrics`);
    gw.status.buffer.pendingEvents = 7;
    gw.status.buffer.accepting = false;
    gw.status.uplink.state = 'paused';
    gw.status.uplink.counters.eventsDelivered = 700;
    gw.status.sources = gw.status.sources.slice(0, 1);
    gw.status.uplink.partitions = [];
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(sample(text, 'plantgate_buffer_pending_events'), 7);
    assert.equal(sample(text, 'plantgate_buffer_accepting'), 0);
    assert.equal(sample(text, 'plantgate_uplink_paused'), 1);
    assert.equal(sample(text, 'plantgate_uplink_events_delivered_total'), 700);
    assert.doesNotMatch(text, /source="mes-broker"/);
    assert.doesNotMatch(text, /plantgate_uplink_partition_unsent_events\{/);
  });

  it('keeps a registry per server: two servers in one process each report their own gateway', async (t) => {
    const a = fakeGateway();
    const b = fakeGateway();
    b.status.buffer.pendingEvents = 1;
    const [sa, sb] = await Promise.all([startTestServer(t, a.control), startTestServer(t, b.control)]);
    const [ta, tb] = await Promise.all([fetch(`${sa.url}/metrics`).then((r) => r.text()), fetch(`${sb.url}/metrics`).then((r) => r.text())]);
    assert.equal(sample(ta, 'plantgate_buffer_pending_events'), 4321);
    assert.equal(sample(tb, 'plantgate_buffer_pending_events'), 1);
  });
});
