/** The dedupe index and its Bloom filters: a resend is always recognised, a new id costs no read. */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DedupeIndex } from '../../src/buffer/dedupe.js';
import { KeyFilter, KeyHash } from '../../src/buffer/key-filter.js';
import { tempDir } from '../helpers/tmp.js';

type Entry = number | [string, number];

function store(t: TestContext, dir = tempDir(t)): { dir: string; env: RootDatabase; tables: [Database<Entry, string>, Database<Entry, string>] } {
  const env = open({ path: `${dir}/d.lmdb`, maxDbs: 4 });
  t.after(() => env.close());
  return { dir, env, tables: [env.openDB({ name: 'dedupe.0' }), env.openDB({ name: 'dedupe.1' })] as never };
}

async function rememberAll(index: DedupeIndex, ids: string[], firstSeq: number): Promise<void> {
  const writes: Promise<boolean>[] = [];
  const keys = ids.map((id, i) => index.rememberId(id, firstSeq + i, writes));
  await Promise.all(writes);
  index.settled(keys);
}

describe('dedupe', () => {
  it('a key filter never forgets a key it was given, and rarely claims one it was not', () => {
    const f = new KeyFilter(50_000);
    const h = new KeyHash();
    assert.equal(f.mightHave(h.of('e:anything')), true, 'an incomplete filter answers maybe');
    f.complete = true;
    for (let i = 0; i < 50_000; i++) f.add(h.of(`e:fd:wms:0123456789abcdef:${i}`));
    for (let i = 0; i < 50_000; i++) assert.equal(f.mightHave(h.of(`e:fd:wms:0123456789abcdef:${i}`)), true);
    let claimed = 0;
    for (let i = 0; i < 50_000; i++) if (f.mightHave(h.of(`e:fd:wms:0123456789abcdef:${50_000 + i}`))) claimed++;
    assert.ok(claimed < 1000, `false positives at capacity: ${claimed} of 50,000 (expected under 2 %)`);
    f.clear();
    assert.equal(f.mightHave(h.of('e:fd:wms:0123456789abcdef:1')), false);
  });

  it('after a restart, ids stored before are recognised once the filters are filled from the tables, and before', async (t) => {
    const s = store(t);
    const before = new DedupeIndex(s.tables, s.env, 1000, 3_600_000);
    const ids = Array.from({ length: 300 }, (_, i) => `ev-${i}`);
    await rememberAll(before, ids, 1);

    const after = new DedupeIndex(s.tables, s.env, 1000, 3_600_000);
    assert.equal(after.seqOfId('ev-7'), 8, 'recognised while the filters are still empty (read from LMDB)');
    await after.fillFilters();
    assert.equal(after.filtersComplete(), true);
    for (let i = 0; i < ids.length; i++) assert.equal(after.seqOfId(ids[i]!), i + 1);
    assert.equal(after.seqOfId('ev-new'), undefined);
  });

  it('keeps recognising the previous generation after a rotation and forgets it after the next', async (t) => {
    const s = store(t);
    const index = new DedupeIndex(s.tables, s.env, 200, 3_600_000);
    await index.fillFilters();
    await rememberAll(index, Array.from({ length: 100 }, (_, i) => `old-${i}`), 1); // half of maxEntries: the generation is full
    await index.maintain();
    await rememberAll(index, ['new-1'], 101);
    assert.equal(index.seqOfId('old-5'), 6, 'the previous generation is still consulted');
    assert.equal(index.seqOfId('new-1'), 101);

    await rememberAll(index, Array.from({ length: 99 }, (_, i) => `more-${i}`), 102);
    await index.maintain(); // clears the generation that held old-*
    assert.equal(index.seqOfId('old-5'), undefined);
    assert.equal(index.seqOfId('new-1'), 101);
    assert.equal(index.seqOfId('more-98'), 200);
  });

  it('remembers the position ranges committed for a stream, across a restart and in flight', async (t) => {
    const s = store(t);
    const index = new DedupeIndex(s.tables, s.env, 1000, 3_600_000);
    const writes: Promise<boolean>[] = [];
    index.rememberRange('fd:wms:abc', 1001, 2000, writes);
    index.rememberRange('fd:wms:abc', 1, 1000, writes);
    index.rememberRange('fd:wms:other', 1, 5, writes);
    assert.deepEqual(index.committedRanges('fd:wms:abc'), [[1, 1000], [1001, 2000]], 'visible while in flight');
    await Promise.all(writes);
    const after = new DedupeIndex(s.tables, s.env, 1000, 3_600_000);
    assert.deepEqual(after.committedRanges('fd:wms:abc'), [[1, 1000], [1001, 2000]]);
    assert.deepEqual(after.committedRanges('fd:wms:ab'), [], 'a stream name is not a prefix match');
  });

  it('keeps the ranges of a file still being read through any number of rotations; a finished file is forgotten like an id', async (t) => {
    const s = store(t);
    const index = new DedupeIndex(s.tables, s.env, 1000, 3_600_000);
    const writes: Promise<boolean>[] = [];
    const keys = [index.rememberRange('fd:wms:held', 1, 1000, writes), index.rememberRange('fd:wms:held', 1001, 2000, writes), index.rememberRange('fd:wms:done', 1, 500, writes)];
    await Promise.all(writes);
    index.settled(keys);
    const reading = (stream: string) => stream === 'fd:wms:held';
    let now = Date.now();
    for (let rotation = 1; rotation <= 3; rotation++) {
      now += 3_600_000; // old enough to rotate
      await index.maintain(now, reading);
      assert.deepEqual(index.committedRanges('fd:wms:held'), [[1, 1000], [1001, 2000]], `after rotation ${rotation}`);
    }
    assert.deepEqual(index.committedRanges('fd:wms:done'), [], 'cleared with its generation');
    const after = new DedupeIndex(s.tables, s.env, 1000, 3_600_000);
    assert.deepEqual(after.committedRanges('fd:wms:held'), [[1, 1000], [1001, 2000]], 'and across a restart');
  });
});
