/** The OPC UA source passes the shared source contract: peer = the simulated PLC cell (counter trigger + echo handshake). */
import { sourceContractSuite } from '../../helpers/source-contract.js';
import { SimServer } from '../../fixtures/opcua/sim-process.js';
import { tempDir } from '../../helpers/tmp.js';
import { createSource } from '../../../src/protocols/opcua/index.js';
import { cellConfig } from './helpers.js';

sourceContractSuite({
  kind: 'opcua',
  timeoutMs: 15_000,
  async startPeer(t) {
    const sim = new SimServer({ pki: tempDir(t, 'pg-opcua-sim-') });
    await sim.start();
    return {
      createSource: (ctx) => createSource(cellConfig(sim, 'counter'), ctx),
      produce: async (n) => sim.produce(n),
      acknowledged: () => sim.acks,
      close: () => sim.close(),
    };
  },
});
