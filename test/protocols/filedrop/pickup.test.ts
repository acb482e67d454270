/** When a file is read, what happens to bad files, duplicates, slow writers and a full buffer. */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GatedSink } from '../../helpers/source-contract.js';
import { PlantgateError } from '../../../src/errors.js';
import { waitFor } from '../../helpers/net.js';
import { KEEP_DRAFTS_MAX } from '../../../src/protocols/filedrop/ingest.js';
import { data, firstProblem, openInbox, readReport, type Inbox } from './harness.js';

/** A receipts CSV of `count` records; `badAt` makes that record's quantity unreadable. */
function bigReceipts(count: number, opts: { badAt?: number } = {}): { csv: string; count: number } {
  const lines = ['ReceiptNo,SSCC,Item,Qty,ReceivedAt'];
  for (let i = 1; i <= count; i++) lines.push(`R-${i},${String(i).padStart(18, '0')},MAT-${i % 97},${i === opts.badAt ? 'many' : i % 50},2024-03-04T06:00:00Z`);
  return { csv: lines.join('\n'), count };
}

/** The stream (event id prefix) of a rejected file, from its error report. */
function streamOf(inbox: Inbox, name: string): string {
  return `fd:wms:${(readReport(inbox, name)['sha256'] as string).slice(0, 32)}`;
}

const receipts = {
  format: { kind: 'csv' as const },
  mapping: {
    type: 'goods.receipt',
    fields: { receipt: 'ReceiptNo', sscc: 'SSCC', item: 'Item', quantity: { from: 'Qty', as: 'number' as const, required: true }, at: { from: 'ReceivedAt', as: 'date' as const } },
    subjectField: 'receipt',
    timeField: 'at',
  },
};

describe('filedrop pickup', () => {
  it('rejects a file with one bad record whole (default), with a report a technician can act on', async (t) => {
    const inbox = await openInbox(t, receipts);
    inbox.drop('receipts-bad-qty.csv');
    await inbox.waitSettled(1);
    assert.equal(inbox.buffer.stats().pendingEvents, 0, 'nothing of a rejected file reaches the buffer');
    assert.deepEqual(inbox.errors(), ['receipts-bad-qty.csv', 'receipts-bad-qty.csv.error.json']);
    assert.deepEqual(inbox.archived(), []);
    const report = readReport(inbox, 'receipts-bad-qty.csv');
    assert.equal(report['outcome'], 'rejected');
    assert.match(String(report['summary']), /1 of 3 record\(s\) are bad.*none of the file was sent/);
    assert.deepEqual(report['problems'], [
      { position: 2, line: 3, column: 'Qty', reason: "'Qty' = \"ten\" is not a number (decimal separator '.')", raw: 'R-2,000000000000000028,MAT-2,ten,2024-03-04T06:01:00Z' },
    ]);
    const st = inbox.source.status();
    assert.equal(st.counters['filesRejected'], 1);
    assert.equal(st.lastError?.code, 'PG_ERR_FILE_PARSE');
  });

  it('acceptGood commits the good records, archives the file and reports the bad ones', async (t) => {
    const inbox = await openInbox(t, { ...receipts, badRecords: 'acceptGood' });
    inbox.drop('receipts-bad-qty.csv');
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.deepEqual(events.map((e) => e['subject']), ['R-1', 'R-3']);
    assert.deepEqual(events.map((e) => (data(e)['file'] as { record: number }).record), [1, 3]);
    assert.equal(inbox.archived().length, 1);
    assert.deepEqual(inbox.errors(), ['receipts-bad-qty.csv.error.json']);
    const report = readReport(inbox, 'receipts-bad-qty.csv');
    assert.equal(report['outcome'], 'partial');
    assert.deepEqual(report['records'], { total: 3, bad: 1, committed: 2 });
  });

  it('a broken CSV (unclosed quote) goes to error/ with the line', async (t) => {
    const inbox = await openInbox(t, receipts);
    inbox.drop('cut.csv', 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\nR-1,"0001,MAT,1,2024-03-04T06:00:00Z\n');
    await inbox.waitSettled(1);
    const p = firstProblem(inbox, 'cut.csv');
    assert.match(String(p['reason']), /quoted field is never closed/);
    assert.equal(p['line'], 2);
    assert.match(String(p['raw']), /^R-1,"0001,MAT/);
  });

  it('counts line breaks inside quoted fields, so a bad record is reported at its real line with its exact text', async (t) => {
    const inbox = await openInbox(t, receipts);
    const csv = 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\r\nR-1,0001,"MAT\r\nsecond line",1,2024-03-04T06:00:00Z\r\nR-2,0002,"say ""hi""",2,2024-03-04T06:00:00Z,extra\r\n';
    inbox.drop('multi.csv', csv);
    await inbox.waitSettled(1);
    assert.deepEqual(readReport(inbox, 'multi.csv')['problems'], [
      {
        position: 2,
        line: 4,
        reason: "has 6 fields but the header has 5 (check the delimiter ',' and unclosed quotes)",
        raw: 'R-2,0002,"say ""hi""",2,2024-03-04T06:00:00Z,extra',
      },
    ]);
  });

  it('rejects a quoted field with text after its closing quote, naming the line', async (t) => {
    const inbox = await openInbox(t, receipts);
    inbox.drop('quote.csv', 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\nR-1,0001,MAT,1,2024-03-04T06:00:00Z\nR-2,"0002"x,MAT,1,2024-03-04T06:00:00Z\n');
    await inbox.waitSettled(1);
    const p = firstProblem(inbox, 'quote.csv');
    assert.match(String(p['reason']), /text after its closing quote/);
    assert.equal(p['line'], 3);
    assert.equal(inbox.buffer.stats().pendingEvents, 0);
  });

  it('does not read a file that is still growing (quiet period)', async (t) => {
    const inbox = await openInbox(t, { ...receipts, completion: { mode: 'quiet', quietMs: 400 } });
    const path = join(inbox.dir, 'slow.csv');
    writeFileSync(path, 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\n');
    for (let i = 1; i <= 8; i++) {
      await new Promise((r) => setTimeout(r, 120));
      appendFileSync(path, `R-${i},00000000000000000${i},MAT-${i},${i},2024-03-04T06:0${i}:00Z\n`);
      assert.equal(inbox.source.status().counters['filesArchived'], 0, `read while still being written (after ${i} lines)`);
    }
    await inbox.waitSettled(1);
    assert.equal(inbox.buffer.stats().pendingEvents, 8, 'all 8 lines, none lost to an early read');
  });

  it('marker mode waits for <name>.done and removes the marker afterwards', async (t) => {
    const inbox = await openInbox(t, { ...receipts, completion: { mode: 'marker' } });
    inbox.drop('m.csv', 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\nR-1,001,MAT,1,2024-03-04T06:00:00Z\n');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(inbox.archived().length, 0, 'no marker, not read');
    writeFileSync(join(inbox.dir, 'm.done'), '');
    await inbox.waitSettled(1);
    assert.equal(existsSync(join(inbox.dir, 'm.done')), false);
    assert.equal(inbox.buffer.stats().pendingEvents, 1);
  });

  it('the same file dropped twice gives one set of events; new content under the same name is new', async (t) => {
    const inbox = await openInbox(t, receipts);
    const body = 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\nR-1,001,MAT,1,2024-03-04T06:00:00Z\nR-2,002,MAT,2,2024-03-04T06:00:00Z\n';
    inbox.drop('twice.csv', body);
    await inbox.waitSettled(1);
    inbox.drop('twice.csv', body);
    await inbox.waitSettled(2);
    assert.equal(inbox.buffer.stats().pendingEvents, 2);
    assert.equal(inbox.source.status().counters['recordsDuplicate'], 2);
    assert.equal(inbox.archived().length, 2, 'both copies archived (the second under a new name)');
    inbox.drop('twice.csv', body.replace('R-2,002', 'R-2,003'));
    await inbox.waitSettled(3);
    assert.equal(inbox.buffer.stats().pendingEvents, 4);
  });

  it('a refused commit leaves the file in the inbox, reports it, and retries', async (t) => {
    let gate: GatedSink | undefined;
    const inbox = await openInbox(t, receipts, { sink: (s) => (gate = new GatedSink(s)) });
    gate!.open = false;
    inbox.drop('wait.csv', 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\nR-1,001,MAT,1,2024-03-04T06:00:00Z\n');
    await waitFor(() => inbox.source.status().counters['retries']! >= 2, 'two attempts');
    const st = inbox.source.status();
    assert.equal(st.state, 'degraded');
    assert.equal(st.lastError?.code, 'PG_ERR_BUFFER_FULL');
    assert.equal(st.counters['filesPending'], 1);
    assert.ok(existsSync(join(inbox.dir, 'wait.csv')));
    gate!.open = true;
    await inbox.waitSettled(1);
    assert.equal(inbox.source.status().counters['filesPending'], 0);
    assert.equal(inbox.buffer.stats().pendingEvents, 1);
  });

  it('an IO error while archiving leaves the file, reports PG_ERR_FILE_IO, and the retry stores nothing twice', async (t) => {
    const inbox = await openInbox(t, { ...receipts, include: ['*.csv'] }, { start: false });
    // A plain file where the archive folder should be: mkdir fails (ENOTDIR/EEXIST), as on a broken mount.
    writeFileSync(join(inbox.dir, 'archive'), 'not a folder');
    await inbox.source.start();
    inbox.drop('io.csv', 'ReceiptNo,SSCC,Item,Qty,ReceivedAt\nR-1,001,MAT,1,2024-03-04T06:00:00Z\nR-2,002,MAT,2,2024-03-04T06:00:00Z\n');
    await waitFor(() => inbox.source.status().counters['retries']! >= 2, 'two attempts');
    const st = inbox.source.status();
    assert.equal(st.lastError?.code, 'PG_ERR_FILE_IO');
    assert.match(st.lastError!.message, /io\.csv stays in the inbox/);
    assert.ok(existsSync(join(inbox.dir, 'io.csv')));
    rmSync(join(inbox.dir, 'archive'));
    await inbox.waitSettled(1);
    assert.equal(inbox.buffer.stats().pendingEvents, 2, 'committed once although read several times');
    assert.ok(inbox.source.status().counters['recordsDuplicate']! >= 2);
  });

  it(`commits a file larger than ${KEEP_DRAFTS_MAX} records while reading it once, held from the uplink until its last record is checked`, async (t) => {
    const heldWhileRead: boolean[] = [];
    let inbox: Inbox | undefined;
    inbox = await openInbox(t, { ...receipts, chunkRecords: 500 }, {
      sink: (s) => ({
        ...s,
        commit: async (items, options) => {
          const out = await s.commit(items, options);
          // Every part committed so far is invisible to the uplink until the file is done.
          heldWhileRead.push(options?.hold !== undefined && inbox!.buffer.outbox.hasUnsent('site1/wms') === false);
          return out;
        },
      }),
    });
    const n = bigReceipts(KEEP_DRAFTS_MAX + 1500);
    inbox.drop('big.csv', n.csv);
    await inbox.waitSettled(1);
    assert.ok(heldWhileRead.length >= (KEEP_DRAFTS_MAX + 1500) / 500 && heldWhileRead.every(Boolean), 'every commit was held while the file was read');
    assert.deepEqual(inbox.sink.holds!.list(), [], 'released once archived');
    assert.equal(inbox.source.status().counters['recordsCommitted'], n.count);
    const events = await inbox.events();
    assert.equal(events[0]!['partitionkey'], 'site1/wms', 'the partition the held check looked at');
    assert.deepEqual(events.map((e) => e['subject']), Array.from({ length: n.count }, (_, i) => `R-${i + 1}`), 'all sent once released, in file order');
  });

  it('a large file whose last record is bad: what was committed while reading is discarded, nothing of it is sent', async (t) => {
    let heldCommits = 0;
    const inbox = await openInbox(t, { ...receipts, chunkRecords: 500 }, {
      sink: (s) => ({ ...s, commit: (items, options) => (options?.hold && heldCommits++, s.commit(items, options)) }),
    });
    const n = bigReceipts(KEEP_DRAFTS_MAX + 1500, { badAt: KEEP_DRAFTS_MAX + 1500 });
    inbox.drop('late-bad.csv', n.csv);
    await inbox.waitSettled(1);
    assert.ok(heldCommits >= 10, `the file was committed while it was read (${heldCommits} held commits)`);
    assert.deepEqual(inbox.errors(), ['late-bad.csv', 'late-bad.csv.error.json']);
    assert.match(firstProblem(inbox, 'late-bad.csv')['reason'] as string, /Qty|quantity/);
    assert.equal(inbox.buffer.stats().pendingEvents, 0, 'the held events were discarded');
    assert.deepEqual(inbox.sink.holds!.list(), []);
    assert.deepEqual(await inbox.events(), []);
    assert.deepEqual(inbox.sink.committedRanges(streamOf(inbox, 'late-bad.csv')), [], 'the same bytes sent again would be read afresh');
  });

  it('a file that leaves the inbox while read only in part: its held events are discarded on the next round', async (t) => {
    let calls = 0;
    let failing = true;
    const inbox = await openInbox(t, { ...receipts, chunkRecords: 500, retryMs: 60_000 }, {
      sink: (s) => ({
        ...s,
        commit: async (items, options) => {
          if (++calls > 12 && failing) throw new Error('EIO: i/o error, write (test)');
          return s.commit(items, options);
        },
      }),
    });
    inbox.drop('gone.csv', bigReceipts(KEEP_DRAFTS_MAX + 3000).csv);
    await waitFor(() => inbox.source.status().counters['retries']! >= 1, 'the failed commit');
    assert.equal(inbox.sink.holds!.list().length, 1, 'the part read so far is held');
    assert.ok(inbox.buffer.stats().pendingEvents >= 5000);
    rmSync(join(inbox.dir, 'gone.csv'));
    failing = false;
    await waitFor(() => inbox.sink.holds!.list().length === 0, 'the orphaned hold discarded');
    assert.equal(inbox.buffer.stats().pendingEvents, 0);
    assert.deepEqual(await inbox.events(), []);
  });

  it('a file larger than the room in the buffer is checked whole, then sent as the buffer drains: no deadlock, each record once, in order', async (t) => {
    const room = 3000;
    let buffer: Inbox['buffer'] | undefined;
    let heldRefused = 0;
    const inbox = await openInbox(t, { ...receipts, chunkRecords: 500 }, {
      sink: (s) => ({
        ...s,
        commit: (items, options) => {
          if (buffer!.stats().pendingEvents + items.length <= room) return s.commit(items, options);
          if (options?.hold) heldRefused++;
          return Promise.reject(new PlantgateError('PG_ERR_BUFFER_FULL', `buffer full (test: ${room} events)`));
        },
      }),
    });
    buffer = inbox.buffer;
    const n = bigReceipts(KEEP_DRAFTS_MAX + 3000);
    inbox.drop('huge.csv', n.csv);
    // The uplink's part: drain what may be sent, until the file is archived (bounded by waitSettled's 10 s).
    const sent: unknown[] = [];
    let draining = true;
    const drain = (async () => {
      while (draining) {
        for (const p of inbox.buffer.outbox.partitions()) {
          const batch = await inbox.buffer.outbox.nextBatch(p, { maxEvents: 500, maxBytes: 1e9 });
          if (!batch) continue;
          sent.push(...inbox.buffer.outbox.events(batch).map((e) => e['subject']));
          await inbox.buffer.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await inbox.waitSettled(1);
    } finally {
      draining = false;
      await drain;
    }
    sent.push(...(await inbox.events()).map((e) => e['subject']));
    assert.deepEqual(inbox.archived().length, 1);
    // Held events cannot drain, so the file could not be held whole: the held part was released to make room.
    assert.ok(heldRefused >= 1, 'a held commit was refused for room');
    assert.deepEqual(sent, Array.from({ length: n.count }, (_, i) => `R-${i + 1}`));
  });

  it('a small file whose commit fails stops there: the retry commits the rest after it, each record once, in file order', async (t) => {
    let calls = 0;
    const inbox = await openInbox(t, { ...receipts, chunkRecords: 500, maxChunksInFlight: 4 }, {
      sink: (s) => ({
        ...s,
        commit: async (items, options) => {
          if (++calls === 2) {
            // Slow to fail: the next chunks would be committed meanwhile if they were already sent.
            await new Promise((r) => setTimeout(r, 100));
            throw new PlantgateError('PG_ERR_BUFFER_COMMIT', 'commit failed (test)');
          }
          return s.commit(items, options);
        },
      }),
    });
    const n = 3000;
    inbox.drop('gap.csv', bigReceipts(n).csv);
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.ok(inbox.source.status().counters['retries']! >= 1, 'the file was read a second time');
    assert.equal(new Set(events.map((e) => e['id'])).size, n, 'every record once');
    assert.deepEqual(
      events.map((e) => e['subject']),
      Array.from({ length: n }, (_, i) => `R-${i + 1}`),
      'in file order: the failed chunk was not overtaken',
    );
  });

  for (const failure of ['PG_ERR_BUFFER_COMMIT', 'PG_ERR_BUFFER_FULL'] as const) {
    it(`a large file whose held chunk fails (${failure}) while later ones commit: the held part is read afresh, each record once, in file order`, async (t) => {
      let heldCalls = 0;
      const inbox = await openInbox(t, { ...receipts, chunkRecords: 500, maxChunksInFlight: 4 }, {
        sink: (s) => ({
          ...s,
          commit: async (items, options) => {
            if (options?.hold && ++heldCalls === 3) {
              await new Promise((r) => setTimeout(r, 100));
              throw new PlantgateError(failure, `held commit failed (test: ${failure})`);
            }
            return s.commit(items, options);
          },
        }),
      });
      const n = KEEP_DRAFTS_MAX + 3000;
      inbox.drop('held-gap.csv', bigReceipts(n).csv);
      await inbox.waitSettled(1);
      const events = await inbox.events();
      assert.ok(heldCalls >= 6, `later held chunks were sent while the third one failed (${heldCalls} held commits)`);
      assert.equal(new Set(events.map((e) => e['id'])).size, n, 'every record once');
      assert.deepEqual(
        events.map((e) => e['subject']),
        Array.from({ length: n }, (_, i) => `R-${i + 1}`),
        'in file order',
      );
      assert.deepEqual(inbox.sink.holds!.list(), []);
    });
  }

  it('a large file rewritten while it is being committed is read again: its held events are discarded, only the new content is sent', async (t) => {
    const path = (dir: string) => join(dir, 'big.csv');
    const csv = (prefix: string, n: number) => ['ReceiptNo,SSCC,Item,Qty,ReceivedAt', ...Array.from({ length: n }, (_, i) => `${prefix}-${i + 1},${String(i + 1).padStart(18, '0')},MAT,1,2024-03-04T06:00:00Z`)].join('\n');
    let inboxDir = '';
    let rewritten = false;
    const inbox = await openInbox(t, { ...receipts, chunkRecords: 500 }, {
      sink: (s) => ({
        ...s,
        commit: async (items, options) => {
          if (!rewritten) {
            rewritten = true;
            writeFileSync(path(inboxDir), csv('N', KEEP_DRAFTS_MAX + 700)); // the sender overwrites the finished file
          }
          return s.commit(items, options);
        },
      }),
    });
    inboxDir = inbox.dir;
    inbox.drop('big.csv', csv('R', KEEP_DRAFTS_MAX + 1500));
    await inbox.waitSettled(1);
    const events = await inbox.events();
    const bySha = new Map<string, string[]>();
    for (const e of events) {
      const sha = (data(e)['file'] as { sha256: string }).sha256;
      bySha.set(sha, [...(bySha.get(sha) ?? []), String(e['subject'])]);
    }
    const versions = [...bySha.values()];
    assert.equal(versions.length, 1, 'nothing of the first version, read only in part, was sent');
    assert.equal(versions[0]!.length, KEEP_DRAFTS_MAX + 700, 'the new content, complete');
    assert.ok(versions[0]!.every((s) => s.startsWith('N-')), 'nothing of the old bytes under the new hash');
    assert.equal(inbox.buffer.stats().pendingEvents, 0, 'no held events left behind');
    assert.equal(inbox.archived().length, 1);
  });
});
