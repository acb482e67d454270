/**
 * A stand-in for the gateway behind the web server: canned status, an in-memory
 * dead-letter list with the real contract's errors, and an uplink event emitter.
 * The web server's far side is only GatewayControl, so this is all it can see.
 */
import { EventEmitter } from 'node:events';
import type { TestContext } from 'node:test';
import type { DeadLetter } from '../../src/buffer/types.js';
import { PlantgateError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import type { DeadLetterControl, GatewayControl, GatewayStatus } from '../../src/status.js';
import type { UplinkEvents, UplinkListener } from '../../src/uplink/types.js';
import { startWebServer, type WebServer } from '../../src/web/server.js';

export class FakeUplink {
  private readonly emitter = new EventEmitter();
  on<K extends keyof UplinkEvents>(event: K, listener: UplinkListener<K>): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void);
    return this;
  }
  off<K extends keyof UplinkEvents>(event: K, listener: UplinkListener<K>): this {
    this.emitter.off(event, listener as (...args: unknown[]) => void);
    return this;
  }
  emit<K extends keyof UplinkEvents>(event: K, ...args: UplinkEvents[K]): void {
    this.emitter.emit(event, ...args);
  }
  listeners(): number {
    return this.emitter.eventNames().reduce((n, e) => n + this.emitter.listenerCount(e), 0);
  }
}

export class FakeDeadLetters implements DeadLetterControl {
  readonly items = new Map<number, DeadLetter>();
  readonly replayed: number[] = [];
  private nextSeq = 1000;

  constructor(entries: DeadLetter[] = []) {
    for (const e of entries) this.items.set(e.dlid, e);
  }
  list(opts: { limit?: number; afterDlid?: number } = {}): DeadLetter[] {
    return [...this.items.values()]
      .sort((a, b) => a.dlid - b.dlid)
      .filter((d) => d.dlid > (opts.afterDlid ?? 0))
      .slice(0, opts.limit ?? 100);
  }
  get(dlid: number): DeadLetter | undefined {
    return this.items.get(dlid);
  }
  count(): number {
    return this.items.size;
  }
  async replay(dlid: number): Promise<{ sequence: number; partition: string }> {
    const d = this.require(dlid);
    if (!d.event || !d.partition) throw new PlantgateError('PG_ERR_DLQ_NOT_REPLAYABLE', `dead letter ${dlid} holds raw bytes, not an event`);
    this.items.delete(dlid);
    this.replayed.push(dlid);
    return { sequence: ++this.nextSeq, partition: d.partition };
  }
  async remove(dlid: number): Promise<void> {
    this.require(dlid);
    this.items.delete(dlid);
  }
  private require(dlid: number): DeadLetter {
    const d = this.items.get(dlid);
    if (!d) throw new PlantgateError('PG_ERR_DLQ_NOT_FOUND', `no dead letter ${dlid}`);
    return d;
  }
}

export function sampleStatus(): GatewayStatus {
  return {
    gatewayId: 'gw-test-01',
    site: 'plant-a',
    version: '0.1.0',
    node: 'v20.0.0',
    startedAt: new Date(Date.now() - 3_725_000).toISOString(),
    uptimeSeconds: 3725,
    ready: true,
    buffer: {
      storeId: 'abc123',
      lastSequence: 5000,
      pendingEvents: 4321,
      storeBytes: 12_582_912,
      freeDiskBytes: 48_318_382_080,
      deadLetters: 0,
      accepting: true,
      held: [{ connector: 'wms-receipts', file: 'receipts-0815.csv', partitions: ['plant-a/wms'] }],
      counters: { committed: 5000, duplicates: 3, dropped: 0, refused: 0, commitErrors: 0, delivered: 679, deadLettered: 2 },
    },
    uplink: {
      state: 'running',
      lastSuccessAt: new Date(Date.now() - 4000).toISOString(),
      counters: { requests: 120, batchesDelivered: 110, eventsDelivered: 679, eventsRejected: 1, retries: 7, splits: 0 },
      partitions: [
        { partition: 'plant-a/line1', unsent: 4000, inFlight: { batchId: 'abc123-4001-4100-100', events: 100, attempts: 1, since: new Date(Date.now() - 1500).toISOString() } },
        {
          partition: 'plant-a/line2',
          unsent: 221,
          nextRetryAt: new Date(Date.now() + 8000).toISOString(),
          lastError: { code: 'PG_ERR_UPLINK_TRANSIENT', message: 'ERP answered 503 Service Unavailable', at: new Date(Date.now() - 2000).toISOString(), status: 503 },
        },
      ],
    },
    sources: [
      {
        name: 'press-line1',
        kind: 'opcua',
        state: 'running',
        counters: { 'changes.received': 15234, 'changes.committed': 15230, pendingChanges: 4, errors: 0 },
        details: { servers: [{ state: 'connected', endpointUrl: 'opc.tcp://10.1.2.3:4840', groups: { cycle: { fired: 120 } } }] },
      },
      {
        name: 'mes-broker',
        kind: 'mqtt-broker',
        state: 'degraded',
        lastError: { code: 'PG_ERR_MQTT_PAYLOAD', message: 'payload on plant/line2/count is not JSON', at: new Date(Date.now() - 60_000).toISOString() },
        counters: { received: 900, committed: 880, duplicates: 2, deadLettered: 1, clients: 3 },
        details: { listening: '0.0.0.0:1883', mappings: [{ topic: 'plant/+/count', type: 'production.completion' }] },
      },
    ],
  };
}

export function sampleDeadLetters(): DeadLetter[] {
  return [
    {
      dlid: 17,
      at: '2026-11-26T09:58:00.000Z',
      connector: 'mes-broker',
      code: 'PG_ERR_MQTT_PAYLOAD',
      reason: 'payload is not JSON: Unexpected token < at position 0',
      raw: Buffer.from('<count>12</count>').toString('base64'),
      context: { topic: 'plant/line2/count', clientId: 'plc-7' },
    },
    {
      dlid: 42,
      at: '2026-11-26T10:01:00.000Z',
      connector: 'uplink',
      code: 'PG_ERR_UPLINK_REJECTED',
      reason: 'ERP refused: material M-100 unknown in plant A',
      partition: 'plant-a/line1',
      event: { specversion: '1.0', id: 'ev-42', subject: 'order/4711', type: 'production.completion', data: { material: 'M-100', qty: 5 } },
    },
  ];
}

export interface FakeGateway {
  control: GatewayControl & { resumed: number };
  status: GatewayStatus;
  deadLetters: FakeDeadLetters;
  uplink: FakeUplink;
}

/** Status is a live object: tests mutate it and the next status() shows the change. */
export function fakeGateway(entries: DeadLetter[] = sampleDeadLetters()): FakeGateway {
  const status = sampleStatus();
  const deadLetters = new FakeDeadLetters(entries);
  const uplink = new FakeUplink();
  const control = {
    resumed: 0,
    status: () => ({ ...structuredClone(status), buffer: { ...structuredClone(status.buffer), deadLetters: deadLetters.count() } }),
    deadLetters,
    resumeUplink() {
      control.resumed++;
    },
    // Pick<Uplink, 'on'> returns Uplink for chaining; the web server never chains.
    uplink: uplink as unknown as GatewayControl['uplink'],
  };
  return { control, status, deadLetters, uplink };
}

export async function startTestServer(t: Pick<TestContext, 'after'>, control: GatewayControl): Promise<WebServer> {
  const server = await startWebServer({ config: { host: '127.0.0.1', port: 0 }, control, logger: createLogger('silent') });
  t.after(() => server.close());
  return server;
}
