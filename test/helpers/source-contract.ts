/**
 * The shared contract every source passes (DESIGN.md, STYLE.md §5):
 *  - it acknowledges to its peer only after the buffer committed the event;
 *  - while commits are refused (buffer full), it acknowledges nothing and loses nothing;
 *  - it stops cleanly and commits nothing after stop() resolved;
 *  - a new instance over the same buffer resumes without duplicates.
 *
 * A source's test file supplies a harness that drives the real peer (an MQTT
 * publisher, an OPC UA server, a folder) and calls `sourceContractSuite`.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { openBuffer, type BufferStore } from '../../src/buffer/store.js';
import { parseConfig } from '../../src/config/load.js';
import { PlantgateError } from '../../src/errors.js';
import type { CommitItem, CommitOptions, IngestSink, Source, SourceContext } from '../../src/protocols/source.js';
import { tempDir } from './tmp.js';
import { waitFor } from './net.js';

export interface ContractPeer {
  /** Builds the source under test (not started) for this context. */
  createSource(ctx: SourceContext): Source;
  /** Makes the peer emit `count` new events (publish, raise triggers, drop files); resolves when they are sent. */
  produce(count: number): Promise<void>;
  /** How many of the produced events the peer has seen acknowledged (PUBACKs, handshakes, records of archived files). */
  acknowledged(): number;
  close(): Promise<void>;
}

export interface ContractHarness {
  kind: string;
  /** Starts the real peer for one test; `dataDir` is the gateway data dir of that test. */
  startPeer(t: TestContext, dataDir: string): Promise<ContractPeer>;
  /** How long to wait for events to flow (sources that poll may need more). */
  timeoutMs?: number;
}

/** A sink in front of the real buffer that can be shut, as a full buffer would be. */
export class GatedSink implements IngestSink {
  open = true;
  commitCalls = 0;
  constructor(private readonly inner: IngestSink) {}
  async commit(items: CommitItem[], options?: CommitOptions) {
    this.commitCalls++;
    if (!this.open) throw new PlantgateError('PG_ERR_BUFFER_FULL', 'buffer full (test gate closed)');
    return this.inner.commit(items, options);
  }
  committedRanges(stream: string) {
    return this.inner.committedRanges(stream);
  }
  deadLetter(entry: Parameters<IngestSink['deadLetter']>[0]) {
    return this.inner.deadLetter(entry);
  }
  accepting() {
    return this.open;
  }
}

export async function contractBuffer(t: TestContext, dataDir: string): Promise<BufferStore> {
  const { config } = parseConfig('');
  const buffer = await openBuffer({ dataDir, config: config.buffer, gatewayId: 'test-gw', logger: createLogger('silent') });
  t.after(() => buffer.close());
  return buffer;
}

function context(buffer: BufferStore, sink: IngestSink, dataDir: string, connector = 'contract'): SourceContext {
  return { gatewayId: 'test-gw', site: 'site1', connector, sink, logger: createLogger('silent'), dataDir };
}

export function sourceContractSuite(harness: ContractHarness): void {
  const timeoutMs = harness.timeoutMs ?? 10_000;

  describe(`source contract: ${harness.kind}`, () => {
    it('acknowledges only after the buffer committed, and nothing while commits are refused', async (t) => {
      const dataDir = tempDir(t);
      const buffer = await contractBuffer(t, dataDir);
      const peer = await harness.startPeer(t, dataDir);
      t.after(() => peer.close());
      const sink = new GatedSink(buffer.sinkFor('contract'));
      sink.open = false;
      const source = peer.createSource(context(buffer, sink, dataDir));
      await source.start();
      t.after(() => source.stop());

      await peer.produce(3);
      await waitFor(() => sink.commitCalls > 0, 'the source to try a commit', timeoutMs);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(peer.acknowledged(), 0, 'nothing may be acknowledged while the buffer refuses commits');
      assert.equal(buffer.stats().pendingEvents, 0);

      sink.open = true;
      await waitFor(() => peer.acknowledged() >= 3, 'acknowledgements once commits are accepted', timeoutMs);
      assert.equal(buffer.stats().pendingEvents, 3, 'each acknowledged event is in the buffer exactly once');
    });

    it('stops cleanly and commits nothing after stop()', async (t) => {
      const dataDir = tempDir(t);
      const buffer = await contractBuffer(t, dataDir);
      const peer = await harness.startPeer(t, dataDir);
      t.after(() => peer.close());
      const sink = new GatedSink(buffer.sinkFor('contract'));
      const source = peer.createSource(context(buffer, sink, dataDir));
      await source.start();
      await peer.produce(2);
      await waitFor(() => peer.acknowledged() >= 2, 'two acknowledgements', timeoutMs);
      await source.stop();
      assert.equal(source.status().state, 'stopped');
      const calls = sink.commitCalls;
      await peer.produce(2).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(sink.commitCalls, calls, 'no commit after stop()');
      assert.equal(buffer.stats().pendingEvents, 2);
    });

    it('resumes after a restart without duplicates', async (t) => {
      const dataDir = tempDir(t);
      const buffer = await contractBuffer(t, dataDir);
      const peer = await harness.startPeer(t, dataDir);
      t.after(() => peer.close());
      const first = peer.createSource(context(buffer, buffer.sinkFor('contract'), dataDir));
      await first.start();
      await peer.produce(4);
      await waitFor(() => peer.acknowledged() >= 4, 'four acknowledgements', timeoutMs);
      await first.stop();

      const second = peer.createSource(context(buffer, buffer.sinkFor('contract'), dataDir));
      await second.start();
      t.after(() => second.stop());
      await peer.produce(4);
      await waitFor(() => peer.acknowledged() >= 8, 'eight acknowledgements', timeoutMs);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(buffer.stats().pendingEvents, 8, 'each event stored once across the restart');
    });
  });
}
