/** Shared pieces of the OPC UA tests: configs through the real schema, a recording sink, a trusted server. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logger.js';
import type { OpcuaConfigType } from '../../../src/protocols/opcua/config.js';
import { pkiRoot, thumbprintOf } from '../../../src/protocols/opcua/pki.js';
import type { CommitItem, CommitOptions, CommitOutcome, IngestSink, SourceContext } from '../../../src/protocols/source.js';
import { SimServer, type SimOptions } from '../../fixtures/opcua/sim-process.js';
import { tempDir } from '../../helpers/tmp.js';

/** A connector config validated by the gateway schema (defaults applied, unknown keys rejected). */
export function opcuaConfig(c: Record<string, unknown>): OpcuaConfigType {
  const { config } = parseConfig(JSON.stringify({ sources: { opcua: [{ name: 'plc1', securityMode: 'None', securityPolicy: 'None', ...c }] } }));
  return (config.sources as unknown as { opcua: OpcuaConfigType[] }).opcua[0]!;
}

export class RecordingSink implements IngestSink {
  readonly committed: { item: CommitItem; outcome: CommitOutcome }[] = [];
  constructor(private readonly inner: IngestSink) {}
  async commit(items: CommitItem[], options?: CommitOptions) {
    const out = await this.inner.commit(items, options);
    out.forEach((outcome, i) => this.committed.push({ item: items[i]!, outcome }));
    return out;
  }
  deadLetter(e: Parameters<IngestSink['deadLetter']>[0]) {
    return this.inner.deadLetter(e);
  }
  accepting() {
    return this.inner.accepting();
  }
  committedRanges(stream: string) {
    return this.inner.committedRanges(stream);
  }
  fresh() {
    return this.committed.filter((c) => !c.outcome.duplicate);
  }
}

export function context(sink: IngestSink, dataDir: string, connector = 'plc1'): SourceContext {
  return { gatewayId: 'test-gw', site: 'site1', connector, sink, logger: createLogger('silent'), dataDir };
}

/** Starts a sim with its PKI in a temp dir; killed when the test ends. */
export async function startSim(t: TestContext, opts: Partial<SimOptions> = {}): Promise<SimServer> {
  const sim = new SimServer({ pki: tempDir(t, 'pg-opcua-sim-'), ...opts });
  t.after(() => sim.close());
  await sim.start();
  return sim;
}

/** One sim for all tests of a file (starting node-opcua costs seconds); killed after the file's tests. */
export function sharedSim(opts: Partial<SimOptions> = {}): () => Promise<SimServer> {
  let sim: Promise<SimServer> | undefined;
  let pki: string | undefined;
  after(async () => {
    await (await sim?.catch(() => undefined))?.close();
    if (pki) rmSync(pki, { recursive: true, force: true });
  });
  return () =>
    (sim ??= (async () => {
      pki = tempDir(undefined, 'pg-opcua-sim-');
      const s = new SimServer({ pki, ...opts });
      await s.start();
      return s;
    })());
}

/** What an operator does by hand: put the server's certificate into trusted/certs. */
export function trustServerCertificate(dataDir: string, sim: SimServer): void {
  const dir = join(pkiRoot(dataDir), 'trusted', 'certs');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `sim[${thumbprintOf(sim.certificate!)}].der`), sim.certificate!);
}

/** The simulated PLC cell as a trigger group: boolean trigger with reset, or counter with echo handshake. */
export function cellConfig(sim: SimServer, mode: 'bool' | 'counter', extra: Record<string, unknown> = {}) {
  const fields = { partCount: sim.id('Cell.PartCount'), workOrder: sim.id('Cell.WorkOrder'), serial: sim.id('Cell.Serial'), scrap: sim.id('Cell.Scrap') };
  const group =
    mode === 'bool'
      ? { name: 'completion', subject: '{workOrder}', trigger: { nodeId: sim.id('Cell.Trigger'), mode: 'risingEdge', samplingIntervalMs: 20, recheckIntervalMs: 250 }, handshake: { nodeId: sim.id('Cell.Handshake'), value: true, resetValue: false }, fields }
      : { name: 'completion', subject: '{workOrder}', trigger: { nodeId: sim.id('Cell.Counter'), mode: 'counter', samplingIntervalMs: 20, recheckIntervalMs: 250 }, handshake: { nodeId: sim.id('Cell.CounterAck') }, fields };
  return opcuaConfig({ endpointUrl: sim.endpointUrl, publishingIntervalMs: 20, reconnectMinDelayMs: 100, reconnectMaxDelayMs: 500, keepAliveIntervalMs: 1000, commitRetryMaxDelayMs: 200, triggerGroups: [group], ...extra });
}
