/**
 * Prometheus text at /metrics. Every value is read from one GatewayStatus taken
 * at scrape time, so a scrape is a consistent snapshot and nothing is counted
 * twice: the gateway's own counters are the source of truth, prom-client only
 * formats them. Each server has its own registry (tests start several in one
 * process, and the global registry would refuse the second registration).
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { GatewayControl, GatewayStatus } from '../status.js';

export interface Metrics {
  contentType: string;
  /** Takes one status snapshot and renders every metric from it. */
  scrape(): Promise<string>;
  close(): void;
}

type Read = (s: GatewayStatus) => number;

export function createMetrics(control: GatewayControl): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Set just before registry.metrics(); every collect() below reads it synchronously.
  let snapshot: GatewayStatus | undefined;

  const gauge = (name: string, help: string, read: Read): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (snapshot) this.set(read(snapshot));
      },
    });
  };
  // The gateway keeps monotonic totals; a Counter is reset and set to them so the
  // exposition says `counter` (rate() works) without a second count here.
  const counter = (name: string, help: string, read: Read): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        if (!snapshot) return;
        this.reset();
        this.inc(Math.max(0, read(snapshot)));
      },
    });
  };
  const bool = (v: boolean): number => (v ? 1 : 0);

  gauge('plantgate_ready', 'Buffer open, uplink started and every source started (1) or not (0)', (s) => bool(s.ready));
  gauge('plantgate_uptime_seconds', 'Seconds since the gateway started', (s) => s.uptimeSeconds);
  gauge('plantgate_buffer_pending_events', 'Events committed and not yet delivered or dead-lettered', (s) => s.buffer.pendingEvents);
  gauge('plantgate_buffer_bytes', 'Bytes the buffer store occupies', (s) => s.buffer.storeBytes);
  gauge('plantgate_buffer_free_disk_bytes', 'Free bytes on the disk that holds the buffer', (s) => s.buffer.freeDiskBytes);
  gauge('plantgate_buffer_accepting', 'The buffer takes new events (1) or is at a capacity limit (0)', (s) => bool(s.buffer.accepting));
  gauge('plantgate_buffer_held_files', 'Files being read whose events are held: their partitions send nothing until the file is read to the end', (s) => s.buffer.held.length);
  gauge('plantgate_dead_letters', 'Dead letters waiting for a technician', (s) => s.buffer.deadLetters);
  counter('plantgate_events_committed_total', 'Events committed to the buffer', (s) => s.buffer.counters.committed);
  counter('plantgate_events_duplicates_total', 'Events recognised as already committed', (s) => s.buffer.counters.duplicates);
  counter('plantgate_events_dropped_total', 'Events dropped while the buffer was full (dropWhenFullTypes)', (s) => s.buffer.counters.dropped);
  counter('plantgate_events_refused_total', 'Commits refused while the buffer was full', (s) => s.buffer.counters.refused);
  counter('plantgate_events_commit_errors_total', 'Commits that failed', (s) => s.buffer.counters.commitErrors);
  counter('plantgate_events_dead_lettered_total', 'Dead letters written', (s) => s.buffer.counters.deadLettered);
  counter('plantgate_uplink_events_delivered_total', 'Events the ERP accepted', (s) => s.uplink.counters.eventsDelivered);
  counter('plantgate_uplink_events_rejected_total', 'Events the ERP refused permanently', (s) => s.uplink.counters.eventsRejected);
  counter('plantgate_uplink_batches_delivered_total', 'Batches the ERP accepted', (s) => s.uplink.counters.batchesDelivered);
  counter('plantgate_uplink_requests_total', 'Requests sent to the ERP', (s) => s.uplink.counters.requests);
  counter('plantgate_uplink_retries_total', 'Batches scheduled to be sent again', (s) => s.uplink.counters.retries);
  counter('plantgate_uplink_splits_total', 'Batches split to isolate a refused event or fit a size limit', (s) => s.uplink.counters.splits);
  gauge('plantgate_uplink_paused', 'The uplink is paused, e.g. credentials refused (1) or not (0)', (s) => bool(s.uplink.state === 'paused'));
  gauge('plantgate_uplink_alarm', 'The uplink has an alarm a technician must act on (1) or not (0)', (s) => bool(s.uplink.alarm !== undefined));
  gauge('plantgate_uplink_last_success_timestamp_seconds', 'When the ERP last accepted a batch (0: never)', (s) =>
    s.uplink.lastSuccessAt ? Date.parse(s.uplink.lastSuccessAt) / 1000 : 0,
  );

  new Gauge({
    name: 'plantgate_uplink_partition_unsent_events',
    help: 'Events of a partition not yet sealed into a batch',
    labelNames: ['partition'],
    registers: [registry],
    collect() {
      this.reset(); // a partition that drained disappears instead of keeping its last value
      for (const p of snapshot?.uplink.partitions ?? []) this.set({ partition: p.partition }, p.unsent);
    },
  });
  new Gauge({
    name: 'plantgate_source_up',
    help: 'The source is running (1) or starting, degraded, stopped or failed (0)',
    labelNames: ['source', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshot?.sources ?? []) this.set({ source: s.name, kind: s.kind }, bool(s.state === 'running'));
    },
  });
  // Source counters mix totals (records committed) and levels (clients connected,
  // files pending), and differ per kind: one gauge labelled by counter name keeps
  // them all without a metric per kind.
  new Gauge({
    name: 'plantgate_source_counter',
    help: 'A source counter by name (see the source kind for their meaning)',
    labelNames: ['source', 'kind', 'counter'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of snapshot?.sources ?? []) {
        for (const [name, value] of Object.entries(s.counters)) {
          if (Number.isFinite(value)) this.set({ source: s.name, kind: s.kind, counter: name }, value);
        }
      }
    },
  });

  return {
    contentType: registry.contentType,
    async scrape() {
      snapshot = control.status();
      try {
        return await registry.metrics();
      } finally {
        snapshot = undefined;
      }
    },
    close() {
      registry.clear();
    },
  };
}
