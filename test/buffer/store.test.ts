import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { Database } from 'lmdb';
import { openBuffer, type BufferStore } from '../../src/buffer/store.js';
import type { SealedBatch } from '../../src/buffer/types.js';
import { parseConfig } from '../../src/config/load.js';
import type { BufferConfig } from '../../src/config/schema.js';
import { isPlantgateError } from '../../src/errors.js';
import { createLogger } from '../../src/logger.js';
import type { EventDraft } from '../../src/model/event.js';
import type { CommitItem } from '../../src/protocols/source.js';
import { tempDir } from '../helpers/tmp.js';

const defaults = parseConfig('').config.buffer;
const LIMITS = { maxEvents: 10, maxBytes: 1e6, sealPartialAhead: true };

async function buffer(t: TestContext, dataDir = tempDir(t), config: Partial<BufferConfig> = {}): Promise<BufferStore> {
  const b = await openBuffer({ dataDir, config: { ...defaults, ...config }, gatewayId: 'gw1', logger: createLogger('silent') });
  t.after(() => b.close());
  return b;
}

function draft(i: number, partition = 'site1/line1', extra: Partial<EventDraft> = {}): CommitItem {
  return { draft: { id: `ev-${i}`, type: 'production.completion', time: '2026-11-26T10:00:00.000Z', partitionkey: partition, data: { n: i }, ...extra } };
}

/** A draft without an id, recognised by its transport identity (MQTT client + packet id, payload hash). */
function noId(key: string, hash: string, resend: boolean): CommitItem {
  return { draft: { type: 'machine.state', time: '2026-11-26T10:00:00.000Z', partitionkey: 'site1/line1', data: { state: 'RUN' } }, transport: { key, hash, resend } };
}

describe('buffer store', () => {
  it('assigns strictly increasing sequences and builds the envelope', async (t) => {
    const b = await buffer(t);
    const sink = b.sinkFor('mes');
    const out = await sink.commit([draft(1), draft(2, 'site1/line2'), draft(3)]);
    assert.deepEqual(out.map((o) => o.sequence), [1, 2, 3]);
    assert.equal(b.stats().pendingEvents, 3);
    const batch = await b.outbox.nextBatch('site1/line1', { maxEvents: 10, maxBytes: 1e6 });
    assert.ok(batch);
    const events = b.outbox.events(batch);
    assert.deepEqual(events.map((e) => e['id']), ['ev-1', 'ev-3']);
    assert.equal(events[0]!['source'], '/plantgate/gw1/mes');
    assert.equal(events[0]!['specversion'], '1.0');
    assert.equal(events[1]!['sequence'], '3');
    assert.equal(events[0]!['correlationid'], 'ev-1');
  });

  it('stores every event byte for byte: multi-byte text, data handed over as JSON, values larger than a write block', async (t) => {
    const b = await buffer(t);
    const sink = b.sinkFor('mes');
    const texts = ['Müller Straße – Ø 12 µm', '漢字 ✓ 😀 "quoted" \\ back\nslash', 'x'.repeat(300_000), '€'.repeat(100_000)];
    // Enough events to fill several 256 KiB blocks, with the large ones in between.
    const items: CommitItem[] = [];
    for (let i = 0; i < 2000; i++) {
      const text = texts[i % 50 === 0 ? (i / 50) % texts.length : i % 2]!;
      items.push(i % 3 === 0 ? { draft: { ...draft(i).draft, subject: text }, dataJson: JSON.stringify({ text, i }) } : draft(i, 'site1/line1', { subject: text, data: { text, i } }));
    }
    await sink.commit(items);
    const got: Record<string, unknown>[] = [];
    for (let batch = await b.outbox.nextBatch('site1/line1', { maxEvents: 500, maxBytes: 1e9 }); batch; batch = await b.outbox.nextBatch('site1/line1', { maxEvents: 500, maxBytes: 1e9 })) {
      got.push(...b.outbox.events(batch));
      await b.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
    }
    assert.equal(got.length, items.length);
    got.forEach((e, i) => {
      const d = items[i]!.draft as EventDraft;
      assert.equal(e['id'], d.id);
      assert.equal(e['subject'], d.subject);
      assert.deepEqual(e['data'], { text: d.subject, i });
    });
  });

  it('stores an event id once, even when the resend races its original', async (t) => {
    const b = await buffer(t);
    const sink = b.sinkFor('mes');
    const [a, c] = await Promise.all([sink.commit([draft(7)]), sink.commit([draft(7)])]);
    assert.equal(a[0]!.duplicate, false);
    assert.equal(c[0]!.duplicate, true);
    assert.equal(c[0]!.sequence, a[0]!.sequence);
    const again = await sink.commit([draft(7)]);
    assert.equal(again[0]!.duplicate, true);
    assert.equal(b.stats().pendingEvents, 1);
    assert.equal(b.stats().counters.duplicates, 2);
  });

  it('acknowledges a resend racing its original only once the original is flushed', async (t) => {
    const b = await buffer(t);
    const sink = b.sinkFor('mes');
    const answered: string[] = [];
    const original = sink.commit([draft(8)]).then(() => answered.push('original'));
    const resend = sink.commit([draft(8)]).then((o) => answered.push(o[0]!.duplicate ? 'resend (duplicate)' : 'resend (stored)'));
    const transportOriginal = sink.commit([noId('c1:9', 'h9', false)]).then(() => answered.push('transport original'));
    const transportResend = sink.commit([noId('c1:9', 'h9', true)]).then((o) => answered.push(o[0]!.duplicate ? 'transport resend (duplicate)' : 'transport resend (stored)'));
    await Promise.all([original, resend, transportOriginal, transportResend]);
    assert.deepEqual(answered, ['original', 'resend (duplicate)', 'transport original', 'transport resend (duplicate)']);
  });

  it('recognises a transport resend only when flagged and the payload hash matches', async (t) => {
    const b = await buffer(t);
    const sink = b.sinkFor('mqtt');
    const first = await sink.commit([noId('c1:17', 'h1', false)]);
    const resend = await sink.commit([noId('c1:17', 'h1', true)]);
    const reuse = await sink.commit([noId('c1:17', 'h1', false)]);
    const otherPayload = await sink.commit([noId('c1:17', 'h2', true)]);
    assert.equal(resend[0]!.duplicate, true);
    assert.equal(resend[0]!.sequence, first[0]!.sequence);
    assert.equal(reuse[0]!.duplicate, false, 'a packet id reused without DUP is a new message');
    assert.equal(otherPayload[0]!.duplicate, false);
    assert.match(first[0]!.id, /^gw1-[0-9a-f]{12}-1$/);
    assert.equal(b.stats().pendingEvents, 3);
  });

  it('resumes after reopening: same sequence line, partitions, sealed batches and dedupe', async (t) => {
    const dir = tempDir(t);
    const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
    await first.sinkFor('mes').commit([draft(1), draft(2, 'p2'), draft(3)]);
    const sealed = await first.outbox.nextBatch('site1/line1', { maxEvents: 1, maxBytes: 1e6 });
    await first.close();

    const b = await buffer(t, dir);
    assert.equal(b.stats().pendingEvents, 3);
    assert.deepEqual(b.outbox.partitions().sort(), ['p2', 'site1/line1']);
    const again = await b.outbox.nextBatch('site1/line1', { maxEvents: 10, maxBytes: 1e6 });
    assert.deepEqual(again, sealed, 'the sealed batch is sent again, same id and events');
    const out = await b.sinkFor('mes').commit([draft(3), draft(4)]);
    assert.equal(out[0]!.duplicate, true);
    assert.equal(out[1]!.sequence, 4);
  });

  it('settles, splits and dead-letters in order, and keeps the retry part', async (t) => {
    const b = await buffer(t);
    await b.sinkFor('mes').commit(Array.from({ length: 6 }, (_, i) => draft(i + 1)));
    const limits = { maxEvents: 4, maxBytes: 1e6 };
    const batch = (await b.outbox.nextBatch('site1/line1', limits))!;
    assert.deepEqual(batch.seqs, [1, 2, 3, 4]);
    const bodyBefore = b.outbox.body(batch);
    assert.deepEqual(b.outbox.body(batch), bodyBefore, 'same bytes every time');
    const [left, right] = await b.outbox.split(batch);
    assert.deepEqual([left.seqs, right.seqs], [[1, 2], [3, 4]]);
    assert.notEqual(left.id, batch.id);
    assert.deepEqual(await b.outbox.nextBatch('site1/line1', limits), left);
    const retry = await b.outbox.settle(left, { delivered: [1], rejected: [{ seq: 2, code: 'PG_ERR_UPLINK_REJECTED', reason: 'unknown work order' }], retry: [] });
    assert.equal(retry, undefined);
    assert.deepEqual(await b.outbox.nextBatch('site1/line1', limits), right);
    const kept = await b.outbox.settle(right, { delivered: [4], rejected: [], retry: [3] });
    assert.deepEqual(kept?.seqs, [3]);
    assert.deepEqual((await b.outbox.nextBatch('site1/line1', limits))?.seqs, [3]);
    await b.outbox.settle(kept!, { delivered: [3], rejected: [], retry: [] });
    assert.deepEqual((await b.outbox.nextBatch('site1/line1', limits))?.seqs, [5, 6]);
    assert.equal(b.stats().pendingEvents, 2);

    const [dl] = b.deadLetters.list();
    assert.equal(dl!.reason, 'unknown work order');
    assert.equal(dl!.event!['id'], 'ev-2');
    const replayed = await b.deadLetters.replay(dl!.dlid);
    assert.ok(replayed.sequence > 6);
    assert.equal(b.deadLetters.count(), 0);
    assert.equal(b.stats().pendingEvents, 3);
  });

  it('knows whether a partition has unsent events: after commits, seals, settles, a replay and a reopen', async (t) => {
    const dir = tempDir(t);
    const p = 'site1/line1';
    const limits = { maxEvents: 2, maxBytes: 1e6 };
    const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
    assert.equal(first.outbox.hasUnsent(p), false, 'a partition never written');
    await first.sinkFor('mes').commit([draft(1), draft(2), draft(3)]);
    assert.equal(first.outbox.hasUnsent(p), true);
    const a = (await first.outbox.nextBatch(p, limits))!;
    assert.equal(first.outbox.hasUnsent(p), true, 'event 3 is past the batch');
    const b = (await first.outbox.nextBatch(p, { maxEvents: 10, maxBytes: 1e6 }))!;
    assert.equal(b.id, a.id, 'the oldest sealed batch comes first');
    await first.outbox.settle(a, { delivered: [], rejected: [{ seq: 1, code: 'PG_ERR_UPLINK_REJECTED', reason: 'unknown work order' }], retry: [2] });
    const c = (await first.outbox.nextBatch(p, limits))!;
    assert.deepEqual(c.seqs, [2]);
    await first.outbox.settle(c, { delivered: [2], rejected: [], retry: [] });
    const d = (await first.outbox.nextBatch(p, limits))!;
    assert.deepEqual(d.seqs, [3]);
    assert.equal(first.outbox.hasUnsent(p), false, 'everything is sealed');
    await first.outbox.settle(d, { delivered: [3], rejected: [], retry: [] });
    assert.equal(first.outbox.hasUnsent(p), false, 'everything is delivered');
    assert.deepEqual(first.outbox.partitions(), [], 'the partition is forgotten once empty');

    // A replayed dead letter is a new unsent event of its partition.
    const [dl] = first.deadLetters.list();
    await first.deadLetters.replay(dl!.dlid);
    assert.equal(first.outbox.hasUnsent(p), true, 'the replayed event');
    await first.sinkFor('mes').commit([draft(4)]);
    await first.close();

    const again = await buffer(t, dir);
    assert.equal(again.outbox.hasUnsent(p), true, 'unsent events found at open');
    assert.deepEqual(again.outbox.events((await again.outbox.nextBatch(p, { maxEvents: 10, maxBytes: 1e6 }))!).map((e) => e['id']), ['ev-1', 'ev-4']);
    assert.equal(again.outbox.hasUnsent(p), false);
  });

  it('while a commit is still being flushed, seals only what earlier commits put, and tells the rest apart', async (t) => {
    const b = await buffer(t);
    const p = 'site1/line1';
    const sink = b.sinkFor('mes');
    const limits = { maxEvents: 10, maxBytes: 1e6 };
    await sink.commit([draft(1), draft(2)]);
    const third = sink.commit([draft(3)]);
    assert.equal(b.outbox.hasUnsent(p), true, 'events 1 and 2 were flushed before the pending write');
    const a = (await b.outbox.nextBatch(p, limits))!;
    assert.deepEqual(a.seqs, [1, 2], 'the pending event is not sealed');
    await third;
    assert.equal(b.outbox.hasUnsent(p), true, 'event 3, once flushed');
    await b.outbox.settle(a, { delivered: a.seqs, rejected: [], retry: [] });
    const c = (await b.outbox.nextBatch(p, limits))!;
    assert.deepEqual(c.seqs, [3]);
    const fourth = sink.commit([draft(4)]);
    assert.equal(b.outbox.hasUnsent(p), false, 'everything flushed is sealed; event 4 is still pending');
    assert.equal(await b.outbox.nextBatch(p, limits).then((x) => x?.id), c.id, 'the sealed batch comes first');
    await fourth;
    assert.equal(b.outbox.hasUnsent(p), true);
    await b.outbox.settle(c, { delivered: c.seqs, rejected: [], retry: [] });
    assert.deepEqual((await b.outbox.nextBatch(p, limits))!.seqs, [4]);
  });

  it('seals the next batch inside the commit of its events while the previous one is out, and keeps both through a restart', async (t) => {
    const dir = tempDir(t);
    const p = 'site1/line1';
    const limits = { maxEvents: 10, maxBytes: 1e6, sealPartialAhead: true };
    const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
    const sink = first.sinkFor('mes');
    await sink.commit([draft(1), draft(2)]);
    const out = (await first.outbox.nextBatch(p, limits))!;
    assert.equal(first.outbox.takeAhead(out), undefined, 'nothing sealed after it yet');
    // What the uplink does while `out` is being sent: seal in the commit's own turn.
    const sealed: boolean[] = [];
    const stop = first.outbox.onAppend((partition) => sealed.push(first.outbox.sealAhead(partition, limits)));
    const third = sink.commit([draft(3), draft(4)]);
    assert.deepEqual(sealed, [true], 'sealed in the turn of the commit');
    const ahead = first.outbox.takeAhead(out)!;
    assert.deepEqual(ahead.batch.seqs, [3, 4]);
    assert.equal(first.outbox.takeAhead(out), undefined, 'handed out once');
    await Promise.all([third, ahead.durable]);
    await sink.commit([draft(5)]);
    assert.deepEqual(sealed.filter((x) => x), [true], 'one batch ahead at most');
    stop();
    assert.equal(first.outbox.hasUnsent(p), true, 'event 5');
    await first.close();

    // A crash before `out` is settled: both batches are found, in order, with their ids.
    const again = await buffer(t, dir);
    const resent = (await again.outbox.nextBatch(p, limits))!;
    assert.equal(resent.id, out.id);
    await again.outbox.settle(resent, { delivered: resent.seqs, rejected: [], retry: [] });
    const next = (await again.outbox.nextBatch(p, limits))!;
    assert.equal(next.id, ahead.batch.id);
    assert.deepEqual(again.outbox.events(next).map((e) => e['id']), ['ev-3', 'ev-4']);
    await again.outbox.settle(next, { delivered: next.seqs, rejected: [], retry: [] });
    assert.deepEqual((await again.outbox.nextBatch(p, limits))!.seqs, [5]);
  });

  it('seals the events of a commit in its own turn when an idle partition asks for its next batch then', async (t) => {
    const b = await buffer(t);
    const sink = b.sinkFor('mes');
    const asked: Promise<SealedBatch | undefined>[] = [];
    const stop = b.outbox.onAppend((partition) => asked.push(b.outbox.nextBatch(partition, LIMITS)));
    const committed = sink.commit([draft(1), draft(2)]);
    stop();
    await committed;
    assert.equal(b.outbox.hasUnsent('site1/line1'), false, 'sealed with the commit, not by a write after it');
    const [batch] = await Promise.all(asked);
    assert.deepEqual(batch?.seqs, [1, 2]);
  });

  it('chains a seal behind one still being written only when nothing put before is left out, and seals nothing twice', async (t) => {
    const b = await buffer(t);
    const p = 'site1/line1';
    const limits = { maxEvents: 10, maxBytes: 1e6, sealPartialAhead: true };
    const sink = b.sinkFor('mes');
    await sink.commit([draft(1)]);
    const out = (await b.outbox.nextBatch(p, limits))!;
    await sink.commit([draft(2)]);
    // The settle of `out` seals event 2 as the next batch; while that is written, event 3 is chained behind it.
    const settled = b.outbox.settle(out, { delivered: out.seqs, rejected: [], retry: [] }, true);
    const sealed: boolean[] = [];
    let stop = b.outbox.onAppend((partition) => sealed.push(b.outbox.sealAhead(partition, limits)));
    const third = sink.commit([draft(3)]);
    stop();
    // Event 4 is put with nobody sealing it; event 5 may not be chained past it.
    const fourth = sink.commit([draft(4)]);
    stop = b.outbox.onAppend((partition) => sealed.push(b.outbox.sealAhead(partition, limits)));
    const fifth = sink.commit([draft(5)]);
    stop();
    assert.deepEqual(sealed, [true, false]);
    await Promise.all([settled, third, fourth, fifth]);
    const second = (await b.outbox.nextBatch(p, limits))!;
    assert.deepEqual(second.seqs, [2]);
    const chained = b.outbox.takeAhead(second)!;
    assert.deepEqual(chained.batch.seqs, [3]);
    await chained.durable;
    await b.outbox.settle(second, { delivered: second.seqs, rejected: [], retry: [] });
    await b.outbox.settle(chained.batch, { delivered: chained.batch.seqs, rejected: [], retry: [] });
    assert.deepEqual((await b.outbox.nextBatch(p, limits))!.seqs, [4, 5]);
  });

  it('seals a batch waiting ahead again with the next commit, and keeps it as it was if that write fails', async (t) => {
    const b = await buffer(t);
    const p = 'site1/line1';
    const sink = b.sinkFor('mes');
    await sink.commit([draft(1)]);
    const out = (await b.outbox.nextBatch(p, LIMITS))!;
    const sealed: boolean[] = [];
    const stop = b.outbox.onAppend((partition) => sealed.push(b.outbox.sealAhead(partition, LIMITS)));
    await sink.commit([draft(2)]);
    await sink.commit([draft(3)]);
    // The transaction of event 4 fails for the batch table's put (injected), not for the event.
    const table = (b as unknown as { batches: Database }).batches;
    const put = table.put.bind(table);
    table.put = (() => Promise.reject(new Error('injected write failure'))) as typeof table.put;
    const fourth = sink.commit([draft(4)]);
    table.put = put;
    await fourth;
    stop();
    // Events 2, 3 and 4 offered in their commits; then event 4 announced as unsent once flushed.
    assert.deepEqual(sealed, [true, true, true, false]);
    const ahead = b.outbox.takeAhead(out)!;
    assert.deepEqual(ahead.batch.seqs, [2, 3], 'sealed again with event 3; the failed one with event 4 left it so');
    await ahead.durable;
    assert.equal(b.outbox.hasUnsent(p), true, 'event 4 waits for the next seal');
    for (const batch of [out, ahead.batch]) await b.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
    assert.deepEqual((await b.outbox.nextBatch(p, LIMITS))!.seqs, [4]);
  });

  describe('a seal whose write fails while one chained behind it is stored', () => {
    // The failure is injected into one put of the batches table: LMDB then stores the
    // commit's events but not the record sealing them, as when a transaction fails
    // after the one holding the events. The seal chained behind it is stored.
    async function gapAfterFailedSeal(b: BufferStore): Promise<string> {
      const p = 'site1/line1';
      const sink = b.sinkFor('mes');
      await sink.commit([draft(1)]);
      const table = (b as unknown as { batches: Database }).batches;
      const put = table.put.bind(table);
      let failNext = true;
      table.put = ((key: unknown, value: unknown) => {
        if (!failNext) return put(key as never, value as never);
        failNext = false;
        return Promise.reject(new Error('injected write failure'));
      }) as typeof table.put;
      // In one turn, as the uplink does: the idle partition seals event 2 (and 1 before it)
      // for itself, and event 3 is chained behind that seal before its failure is known.
      let asked: Promise<unknown> | undefined;
      const chained: boolean[] = [];
      const stop = b.outbox.onAppend((partition) => {
        if (asked) chained.push(b.outbox.sealAhead(partition, LIMITS));
        else (asked = b.outbox.nextBatch(partition, LIMITS)).catch(() => undefined); // asserted below
      });
      const commits = [sink.commit([draft(2)]), sink.commit([draft(3)])];
      stop();
      await Promise.all(commits);
      await assert.rejects(asked!, /injected write failure/);
      assert.deepEqual(chained, [true]);
      const queued = [...(b as unknown as { ledger: { seals: { of(p: string): { batch: SealedBatch }[] } } }).ledger.seals.of(p)];
      assert.deepEqual(queued.map((s) => s.batch.seqs), [[3]], 'only the chained seal was stored');
      return queued[0]!.batch.id;
    }

    it('seals the gap as a batch of its own, sent before the chained one', async (t) => {
      const b = await buffer(t);
      const chainedId = await gapAfterFailedSeal(b);
      const gap = (await b.outbox.nextBatch('site1/line1', LIMITS))!;
      assert.deepEqual(b.outbox.events(gap).map((e) => e['id']), ['ev-1', 'ev-2']);
      assert.equal(b.outbox.takeAhead(gap)?.batch.id, chainedId, 'the chained batch follows the gap');
      await b.outbox.settle(gap, { delivered: gap.seqs, rejected: [], retry: [] });
      const next = (await b.outbox.nextBatch('site1/line1', LIMITS))!;
      assert.equal(next.id, chainedId);
      await b.outbox.settle(next, { delivered: next.seqs, rejected: [], retry: [] });
      assert.equal(await b.outbox.nextBatch('site1/line1', LIMITS), undefined);
      assert.equal(b.stats().pendingEvents, 0);
    });

    it('finds the gap at open after a stop before it was sealed', async (t) => {
      const dir = tempDir(t);
      const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
      const chainedId = await gapAfterFailedSeal(first);
      await first.close();
      const again = await buffer(t, dir);
      const seen: number[][] = [];
      for (let batch = await again.outbox.nextBatch('site1/line1', LIMITS); batch; batch = await again.outbox.nextBatch('site1/line1', LIMITS)) {
        seen.push(batch.seqs);
        if (batch.seqs[0] === 3) assert.equal(batch.id, chainedId);
        await again.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
      }
      assert.deepEqual(seen, [[1, 2], [3]]);
    });
  });

  it('keeps raw bytes of a dead letter and refuses to replay them', async (t) => {
    const b = await buffer(t);
    await b.sinkFor('mqtt').deadLetter({ code: 'PG_ERR_MQTT_PAYLOAD', reason: 'not JSON', raw: Buffer.from('{oops'), context: { topic: 'a/b' } });
    const [dl] = b.deadLetters.list();
    assert.equal(Buffer.from(dl!.raw!, 'base64').toString(), '{oops');
    await assert.rejects(b.deadLetters.replay(dl!.dlid), (e) => isPlantgateError(e, 'PG_ERR_DLQ_NOT_REPLAYABLE'));
    await b.deadLetters.remove(dl!.dlid);
    await assert.rejects(b.deadLetters.remove(dl!.dlid), (e) => isPlantgateError(e, 'PG_ERR_DLQ_NOT_FOUND'));
  });

  it('refuses intake at its event limit, drops configured low-value types, and resumes as it drains', async (t) => {
    const b = await buffer(t, undefined, { maxEvents: 5, dropWhenFullTypes: ['machine.telemetry'] });
    const sink = b.sinkFor('mes');
    await sink.commit(Array.from({ length: 5 }, (_, i) => draft(i)));
    b.refresh();
    assert.equal(sink.accepting(), false);
    await assert.rejects(sink.commit([draft(99)]), (e) => isPlantgateError(e, 'PG_ERR_BUFFER_FULL') && /buffer.maxEvents/.test(e.message));
    const dropped = await sink.commit([draft(100, 'x', { type: 'machine.telemetry' })]);
    assert.equal(dropped[0]!.sequence, -1);
    assert.equal(b.stats().counters.dropped, 1);
    assert.equal(b.stats().counters.refused, 1);
    const batch = (await b.outbox.nextBatch('site1/line1', { maxEvents: 5, maxBytes: 1e6 }))!;
    await b.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
    b.refresh();
    assert.equal(sink.accepting(), true);
    await sink.commit([draft(99)]);
  });

  it('refuses intake below the free-disk floor and says so', async (t) => {
    const b = await buffer(t, undefined, { minFreeDiskBytes: Number.MAX_SAFE_INTEGER });
    const sink = b.sinkFor('mes');
    assert.equal(sink.accepting(), false);
    await assert.rejects(sink.commit([draft(1)]), (e) => isPlantgateError(e, 'PG_ERR_BUFFER_FULL') && /buffer.minFreeDiskBytes/.test(e.message));
    assert.match(b.stats().fullReason ?? '', /free disk space/);
    assert.equal(b.stats().pendingEvents, 0);
  });

  it('refuses commits once closed, so a source does not acknowledge', async (t) => {
    const b = await buffer(t);
    await b.close();
    await assert.rejects(b.sinkFor('mes').commit([draft(1)]), (e) => isPlantgateError(e, 'PG_ERR_BUFFER_CLOSED'));
  });

  it('allows one gateway per data dir, and takes over the lock of a dead one', async (t) => {
    const dir = tempDir(t);
    await buffer(t, dir);
    await assert.rejects(
      openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') }),
      (e) => isPlantgateError(e, 'PG_ERR_BUFFER_LOCKED') && new RegExp(`pid ${process.pid}`).test(e.message),
    );
    const other = tempDir(t);
    writeFileSync(join(other, 'plantgate.pid'), '2147483646\n');
    const b = await buffer(t, other);
    assert.equal(b.stats().pendingEvents, 0);
  });

  it('refuses the rest of the turn after a refusal, so a smaller commit cannot overtake a refused one', async (t) => {
    const b = await buffer(t, undefined, { maxEvents: 5 });
    const sink = b.sinkFor('plc');
    await sink.commit([draft(1), draft(2), draft(3)]);
    const big = sink.commit([draft(4), draft(5), draft(6)]);
    const small = sink.commit([draft(7)]);
    await assert.rejects(big, (e) => isPlantgateError(e, 'PG_ERR_BUFFER_FULL'));
    await assert.rejects(small, (e) => isPlantgateError(e, 'PG_ERR_BUFFER_FULL'));
    await new Promise((r) => setImmediate(r));
    const later = await sink.commit([draft(7)]);
    assert.equal(later[0]!.duplicate, false, 'the next turn is judged on its own');
    assert.equal(b.stats().pendingEvents, 4);
  });

  describe('holds (a file committed while it is read)', () => {
    const limits = { maxEvents: 100, maxBytes: 1e6 };
    const stream = 'fd:wms:0123abcd';
    const held = (positions: number[], partition = 'site1/line1'): CommitItem[] => positions.map((pos) => ({ draft: { ...draft(0, partition).draft, id: `${stream}:${pos}` } }));
    const holdOpts = (from: number, to: number) => ({ range: { stream, from, to }, hold: { file: 'receipts.csv' } });
    const seqsOf = async (b: BufferStore, partition: string): Promise<number[]> => {
      const batch = await b.outbox.nextBatch(partition, limits);
      if (!batch) return [];
      await b.outbox.settle(batch, { delivered: batch.seqs, rejected: [], retry: [] });
      return batch.seqs;
    };

    it('seals nothing from the first held event of a partition on, across a restart, until released; other partitions flow', async (t) => {
      const dir = tempDir(t);
      const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
      const sink = first.sinkFor('wms');
      await sink.commit([draft(1)]);
      await sink.commit(held([1, 2]), holdOpts(1, 2));
      await sink.commit([draft(2), draft(3, 'site1/line2')]);
      assert.deepEqual(await seqsOf(first, 'site1/line1'), [1], 'only what came before the hold');
      assert.deepEqual(await seqsOf(first, 'site1/line1'), [], 'the held events and what follows them wait');
      assert.deepEqual(await seqsOf(first, 'site1/line2'), [5], 'another partition is not held');
      assert.equal(first.outbox.hasUnsent('site1/line1'), false);
      await first.close();

      const b = await buffer(t, dir);
      const again = b.sinkFor('wms');
      assert.deepEqual(again.holds!.list(), [{ stream, connector: 'wms', file: 'receipts.csv', discarding: false, partitions: ['site1/line1'] }]);
      assert.deepEqual(b.sinkFor('other').holds!.list(), [], 'holds are per connector');
      assert.deepEqual(await seqsOf(b, 'site1/line1'), [], 'still held after the restart');
      let woken = 0;
      b.outbox.onAppend((p) => void (p === 'site1/line1' && woken++));
      await again.holds!.release(stream);
      assert.equal(woken, 1, 'the uplink is woken for the released partition');
      assert.deepEqual(await seqsOf(b, 'site1/line1'), [2, 3, 4], 'released: in sequence order, then the event that waited');
      assert.deepEqual(again.holds!.list(), []);
    });

    it('discards held events and the ranges of their stream; later events go, sequences are never reused', async (t) => {
      const dir = tempDir(t);
      const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
      const sink = first.sinkFor('wms');
      await sink.commit(held([1, 2, 3]), holdOpts(1, 3));
      await sink.commit(held([4], 'site1/line2'), holdOpts(4, 4));
      await sink.commit([draft(1)]);
      assert.deepEqual(sink.committedRanges(stream), [[1, 3], [4, 4]]);
      assert.equal(await sink.holds!.discard(stream), 4);
      assert.deepEqual(sink.committedRanges(stream), [], 'the same bytes read again start afresh');
      assert.equal(first.stats().pendingEvents, 1);
      assert.deepEqual(await seqsOf(first, 'site1/line1'), [5], 'the event behind the discarded ones goes');
      assert.deepEqual(await seqsOf(first, 'site1/line2'), []);
      await first.close();

      const b = await buffer(t, dir);
      assert.deepEqual(b.sinkFor('wms').holds!.list(), []);
      const out = await b.sinkFor('wms').commit([draft(2)]);
      assert.equal(out[0]!.sequence, 6, 'the sequence line continues past the discarded events');
    });

    it('finishes a discard cut short by a crash before the stream is read again', async (t) => {
      const dir = tempDir(t);
      const first = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
      await first.sinkFor('wms').commit(held([1, 2]), holdOpts(1, 2));
      await first.close();
      // What a crash after the first discard step leaves: the hold marked as being discarded, its events and ranges still there.
      const { open } = await import('lmdb');
      const env = open({ path: join(dir, 'plantgate.lmdb'), maxDbs: 12 });
      const meta = env.openDB({ name: 'meta' });
      await meta.put(`hold:${stream}`, { ...(meta.get(`hold:${stream}`) as object), discarding: true });
      await env.close();

      const second = await openBuffer({ dataDir: dir, config: defaults, gatewayId: 'gw1', logger: createLogger('silent') });
      const sink = second.sinkFor('wms');
      assert.deepEqual(sink.holds!.list().map((h) => h.discarding), [true]);
      assert.equal(await sink.holds!.discard(stream), 2);
      assert.equal(second.stats().pendingEvents, 0);
      assert.deepEqual(sink.committedRanges(stream), []);
      await second.close();

      const b = await buffer(t, dir);
      const out = await b.sinkFor('wms').commit([draft(1)]);
      assert.equal(out[0]!.sequence, 3, 'the discarded sequences are not handed out again');
    });
  });
});
