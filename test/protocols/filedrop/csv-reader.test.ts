/** The CSV reader on its own: it reads ahead of its consumer, and lets go of the file when stopped. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csvReader } from '../../../src/protocols/filedrop/csv.js';

const options = { kind: 'csv' as const, delimiter: ';', quote: '"', encoding: 'utf-8' as const, header: true, skipLines: 0, trim: true };

/** 64 KiB blocks of a generated CSV; records whether the reader finished with them. */
function source(rows: number): { blocks: AsyncIterable<Buffer>; closed: () => boolean; read: () => number } {
  const text = Buffer.from(['a;b;c', ...Array.from({ length: rows }, (_, i) => `${i};text ${i};${i % 7}`)].join('\n'));
  let closed = false;
  let read = 0;
  async function* blocks(): AsyncIterable<Buffer> {
    try {
      for (let at = 0; at < text.length; at += 65536) {
        read++;
        yield text.subarray(at, at + 65536);
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      closed = true;
    }
  }
  return { blocks: blocks(), closed: () => closed, read: () => read };
}

describe('filedrop CSV reader', () => {
  it('reads only a bounded distance ahead of a slow consumer', async () => {
    const src = source(200_000); // ~3.5 MiB, ~55 blocks
    const reader = csvReader(options)(src.blocks);
    const it0 = reader[Symbol.asyncIterator]();
    await it0.next();
    await new Promise((r) => setTimeout(r, 200)); // the consumer dawdles; the reader must not run to the end
    assert.ok(src.read() < 10, `read ${src.read()} blocks ahead of a consumer that took one batch`);
    await it0.return?.();
  });

  it('lets go of its input when the consumer stops while the reader is waiting for room', async () => {
    const src = source(200_000);
    let taken = 0;
    for await (const batch of csvReader(options)(src.blocks)) {
      taken += batch.length;
      await new Promise((r) => setTimeout(r, 100)); // the reader fills its read-ahead and waits
      if (taken > 1000) break;
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(src.closed(), true, 'the input was returned (its file closed), not left suspended');
  });
});
