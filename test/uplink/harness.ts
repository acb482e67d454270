/**
 * One uplink test's world: a real LMDB buffer in a temp dir, the real mock ERP on
 * a free loopback port, and an uplink between them with fast retry timings.
 * Everything is closed in t.after, in reverse order of creation.
 */
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { openBuffer, type BufferStore } from '../../src/buffer/store.js';
import { parseConfig } from '../../src/config/load.js';
import type { UplinkConfig } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { createUplink, type Uplink } from '../../src/uplink/uplink.js';
import { startMockErp, type MockErp } from '../../scripts/mock-erp/server.js';
import { freePort, waitFor } from '../helpers/net.js';
import { tempDir } from '../helpers/tmp.js';

export interface World {
  buffer: BufferStore;
  erp: MockErp;
  uplink: Uplink;
  config: UplinkConfig;
  /** Every log line the uplink wrote, as text. */
  logs: () => string;
  /** Commits `n` events to the buffer; ids `${prefix}-${i}`, spread round robin over `partitions`. */
  fill(n: number, o?: { prefix?: string; partitions?: string[]; data?: (i: number) => Record<string, unknown> }): Promise<void>;
  /** Waits until the mock accepted `n` events (10 s by default). */
  accepted(n: number, timeoutMs?: number): Promise<void>;
}

export type Overrides = Partial<Omit<UplinkConfig, 'retry'>> & { retry?: Partial<UplinkConfig['retry']> };

export async function world(t: TestContext, overrides: Overrides = {}, o: { start?: boolean } = {}): Promise<World> {
  const dir = tempDir(undefined);
  const { config } = parseConfig('');
  const captured: string[] = [];
  const sinkStream = new Writable({
    write(chunk, _enc, cb) {
      captured.push(String(chunk));
      cb();
    },
  });
  const logger: Logger = process.env['TEST_LOG'] ? createLogger(process.env['TEST_LOG']) : pino({ level: 'debug' }, sinkStream);
  const buffer = await openBuffer({ dataDir: dir, config: config.buffer, gatewayId: 'test-gw', logger: createLogger('silent') });
  const erp = await startMockErp({ port: await freePort() });
  const uplinkConfig: UplinkConfig = {
    ...config.uplink,
    url: erp.url,
    lingerMs: 0,
    concurrency: 2,
    requestTimeoutMs: 5000,
    ...overrides,
    retry: { ...config.uplink.retry, minDelayMs: 10, maxDelayMs: 100, authRetryMs: 60_000, ...overrides.retry },
  };
  const uplink = createUplink({ config: uplinkConfig, outbox: buffer.outbox, logger });
  t.after(async () => {
    await uplink.stop(500);
    await erp.close();
    await buffer.close();
    rmSync(dir, { recursive: true, force: true });
  });
  if (o.start !== false) uplink.start();

  const sink = buffer.sinkFor('test');
  return {
    buffer,
    erp,
    uplink,
    config: uplinkConfig,
    logs: () => captured.join(''),
    async fill(n, f = {}) {
      const partitions = f.partitions ?? ['site1/line1'];
      const prefix = f.prefix ?? 'e';
      for (let start = 0; start < n; start += 1000) {
        const items = [];
        for (let i = start; i < Math.min(n, start + 1000); i++) {
          items.push({
            draft: { id: `${prefix}-${i}`, type: 'production.completion', time: new Date().toISOString(), partitionkey: partitions[i % partitions.length]!, data: f.data ? f.data(i) : { n: i } },
          });
        }
        await sink.commit(items);
      }
    },
    async accepted(n, timeoutMs = 10_000) {
      await waitFor(() => erp.report().accepted >= n, `the ERP to accept ${n} events`, timeoutMs);
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
