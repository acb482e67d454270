/**
 * The shared source contract for filedrop. produce(n) drops one JSON Lines file
 * with n records; acknowledged() = records of the files that reached archive/.
 */
import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSource } from '../../../src/protocols/filedrop/index.js';
import type { FiledropConfigType } from '../../../src/protocols/filedrop/config.js';
import { sourceContractSuite } from '../../helpers/source-contract.js';

function countArchived(dir: string): number {
  let n = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) n += countArchived(p);
    else n += readFileSync(p, 'utf8').split('\n').filter((l) => l.trim()).length;
  }
  return n;
}

sourceContractSuite({
  kind: 'filedrop',
  timeoutMs: 10_000,
  async startPeer(_t, dataDir) {
    const inbox = join(dataDir, 'inbox');
    let files = 0;
    let next = 0;
    return {
      createSource: (ctx) =>
        createSource({ name: 'contract', path: inbox, pollMs: 20, retryMs: 50, completion: { mode: 'rename' }, format: { kind: 'jsonl' }, mapping: { type: 'goods.receipt' } } as FiledropConfigType, ctx),
      async produce(count) {
        const lines = Array.from({ length: count }, () => JSON.stringify({ n: ++next, lot: `L${next}` }));
        const name = `drop-${++files}.jsonl`;
        writeFileSync(join(inbox, `.${name}.tmp`), `${lines.join('\n')}\n`);
        renameSync(join(inbox, `.${name}.tmp`), join(inbox, name));
      },
      acknowledged: () => countArchived(join(inbox, 'archive')),
      close: async () => undefined,
    };
  },
});
