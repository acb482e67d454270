/** SIGKILL in the middle of a file, restart: every record stored once, the file archived once. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { openBuffer } from '../../../src/buffer/store.js';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/logger.js';
import { tempDir } from '../../helpers/tmp.js';
import { listFiles } from './harness.js';

const RUNNER = fileURLToPath(new URL('../../fixtures/filedrop/source-runner.js', import.meta.url));
const RECORDS = 20_000;

function run(args: object, until: (line: string) => boolean, timeoutMs = 20_000): Promise<{ lines: string[]; kill: () => void; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runner timed out; output: ${lines.slice(-5).join(' | ')}`));
    }, timeoutMs);
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) {
        lines.push(l);
        if (until(l)) {
          clearTimeout(timer);
          resolve({ lines, kill: () => child.kill('SIGKILL'), exited });
        }
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve({ lines, kill: () => undefined, exited });
    });
  });
}

it('SIGKILL mid-file, restart: no duplicates, file archived once', async (t) => {
  const root = tempDir(t, 'pg-filedrop-crash-');
  const inbox = join(root, 'inbox');
  const dataDir = join(root, 'data');
  mkdirSync(inbox, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  const lines = ['ReceiptNo,SSCC,Qty'];
  for (let i = 1; i <= RECORDS; i++) lines.push(`R-${i},${String(i).padStart(18, '0')},${i % 7}`);
  writeFileSync(join(inbox, 'big.csv'), lines.join('\n'));

  // First run: killed after the first chunks are durable, well before the last.
  const first = await run({ dataDir, inbox, slowMs: 40 }, (l) => l.startsWith('committed'));
  first.kill();
  await first.exited;
  const committedBefore = first.lines.filter((l) => l.startsWith('committed')).length;
  assert.ok(committedBefore >= 1 && committedBefore < RECORDS / 1000, `killed mid-file (after ${committedBefore} chunk(s))`);
  assert.deepEqual(listFiles(inbox), ['big.csv'], 'the file stays in the inbox');
  // What was committed before the kill is held: none of it can be sent before the file is read to the end.
  const between = await openBuffer({ dataDir, config: parseConfig('').config.buffer, gatewayId: 'crash-gw', logger: createLogger('silent') });
  try {
    assert.deepEqual(between.sinkFor('wms').holds!.list().map((h) => h.file), ['big.csv']);
    assert.ok(between.stats().pendingEvents >= 1000);
    assert.equal(await between.outbox.nextBatch('site1/wms', { maxEvents: 100, maxBytes: 1e6 }), undefined, 'nothing of the file can be sealed');
  } finally {
    await between.close();
  }

  // Second run: reads the file again; the ids already committed are recognised.
  const second = await run({ dataDir, inbox }, (l) => l.startsWith('done'));
  await second.exited;
  const done = JSON.parse(second.lines.find((l) => l.startsWith('done'))!.slice(5)) as { pending: number; committed: number; duplicates: number };
  assert.equal(done.pending, RECORDS, 'every record stored exactly once');
  assert.equal(done.committed + done.duplicates, RECORDS);
  assert.ok(done.duplicates >= 1000, 'records committed before the kill were recognised as duplicates');
  const files = listFiles(inbox);
  assert.equal(files.filter((f) => f.endsWith('big.csv')).length, 1, 'archived once');
  assert.match(files[0]!, /^archive\/\d{4}-\d{2}-\d{2}\/big\.csv$/);
  const after = await openBuffer({ dataDir, config: parseConfig('').config.buffer, gatewayId: 'crash-gw', logger: createLogger('silent') });
  try {
    assert.deepEqual(after.sinkFor('wms').holds!.list(), [], 'released once the file was read to the end');
    assert.equal((await after.outbox.nextBatch('site1/wms', { maxEvents: RECORDS, maxBytes: 1e9 }))?.seqs.length, RECORDS);
  } finally {
    await after.close();
  }
});
