/**
 * SIGKILL plantgate between commit and handshake: after restart there is no
 * second event for that trigger, and the handshake is written.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../helpers/net.js';
import { contractBuffer } from '../../helpers/source-contract.js';
import { tempDir } from '../../helpers/tmp.js';
import { cellConfig, startSim } from './helpers.js';

const RUNNER = fileURLToPath(new URL('../../fixtures/opcua/source-runner.js', import.meta.url));

interface Runner {
  child: ChildProcess;
  commits: { commit: string; duplicate: boolean }[];
  exited: Promise<unknown>;
}

function runner(dataDir: string, config: unknown, hang: boolean): Runner {
  const child = spawn(process.execPath, [RUNNER, dataDir, JSON.stringify(config), ...(hang ? ['--hang-after-commit'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const r: Runner = { child, commits: [], exited: new Promise((res) => child.once('exit', res)) };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      const msg = JSON.parse(line) as { commit?: string; duplicate?: boolean };
      if (msg.commit) r.commits.push({ commit: msg.commit, duplicate: !!msg.duplicate });
    } catch {
      /* node-opcua prints warnings on stdout; only JSON lines are ours */
    }
  });
  return r;
}

test('SIGKILL between commit and handshake: after restart no second event, handshake written', async (t) => {
  const sim = await startSim(t);
  const dataDir = tempDir(t);
  const config = cellConfig(sim, 'counter');

  const first = runner(dataDir, config, true);
  t.after(() => first.child.kill('SIGKILL'));
  sim.produce(1);
  await waitFor(() => first.commits.length >= 1, 'the first commit', 20_000);
  first.child.kill('SIGKILL');
  await first.exited;
  assert.equal(first.commits[0]!.duplicate, false);
  assert.equal(sim.acks, 0, 'killed before the handshake');

  const second = runner(dataDir, config, false);
  t.after(() => second.child.kill('SIGKILL'));
  await waitFor(() => sim.acks >= 1, 'the handshake after restart', 20_000);
  assert.deepEqual(second.commits[0], { commit: first.commits[0]!.commit, duplicate: true }, 'the same trigger has the same id and is recognised');
  sim.produce(2);
  await waitFor(() => sim.acks >= 3, 'two more handshakes', 10_000);
  second.child.kill('SIGTERM');
  await second.exited;

  const buffer = await contractBuffer(t, dataDir);
  assert.equal(buffer.stats().pendingEvents, 3, 'three triggers, three events: none doubled by the crash');
});
