/** The uplink against the real buffer and the real mock ERP: order, exactly once, batching, gzip, stop. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createUplink } from '../../src/uplink/uplink.js';
import { createLogger } from '../../src/logger.js';
import { waitFor } from '../helpers/net.js';
import { sleep, world } from './harness.js';

const PARTS = ['site1/line1', 'site1/line2', 'site2/line1', 'site2/line2'];

describe('uplink delivery', () => {
  it('delivers every event exactly once, in order per partition, across partitions', async (t) => {
    const w = await world(t, { maxBatchEvents: 100, concurrency: 2 });
    await w.fill(2000, { partitions: PARTS });
    // More arrives while the uplink is busy: idle partitions are woken by onAppend.
    await w.fill(1000, { partitions: PARTS, prefix: 'late' });
    await w.accepted(3000);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the buffer to drain');
    const r = w.erp.report();
    assert.equal(r.accepted, 3000);
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0, JSON.stringify(r.orderViolationDetails));
    assert.equal(r.contractViolations, 0, JSON.stringify(r.contractViolationDetails));
    for (const p of PARTS) assert.equal(r.partitions[p]?.count, 750);
    assert.ok(r.lastRequests.every((q) => q.events <= 100), 'batches respect maxBatchEvents');
    const s = w.uplink.status();
    assert.equal(s.state, 'running');
    assert.equal(s.counters.eventsDelivered, 3000);
    assert.equal(s.counters.eventsRejected, 0);
    assert.ok(s.lastSuccessAt);
    assert.match(w.logs(), /"component":"uplink"/);
  });

  it('sends a trickle as soon as the partition is free (lingerMs 0) and wakes up for new events', async (t) => {
    const w = await world(t);
    for (let i = 0; i < 5; i++) {
      await w.fill(3, { prefix: `t${i}` });
      await w.accepted(3 * (i + 1), 5000);
    }
    assert.equal(w.erp.report().batches, 5, 'one batch per burst');
  });

  it('loses no wake-up while batches are sealed ahead during a steady trickle', async (t) => {
    // Events committed while a batch is in flight, and between a settle and the next send,
    // must all go out: the last of them with nothing arriving after.
    const w = await world(t);
    w.erp.setFaults({ delayMs: 3 });
    const rounds = 150;
    for (let i = 0; i < rounds; i++) {
      await w.fill(1 + (i % 4), { prefix: `s${i}`, partitions: ['site1/line1', 'site1/line2'] });
      await new Promise((r) => setTimeout(r, i % 3));
    }
    const total = Array.from({ length: rounds }, (_, i) => 1 + (i % 4)).reduce((a, b) => a + b, 0);
    await w.accepted(total, 15_000);
    const r = w.erp.report();
    assert.equal(r.accepted, total);
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0);
  });

  it('seals what is committed while a batch is out in that commit, seals it again with the next commit, and sends it when the first is accepted', async (t) => {
    const w = await world(t);
    w.erp.setFaults({ delayMs: 300 }); // slow answers: the commits below land while a batch is out
    await w.fill(2, { prefix: 'a' });
    await waitFor(() => w.uplink.status().partitions.some((p) => p.inFlight), 'the first batch to be out');
    await w.fill(3, { prefix: 'b' });
    assert.equal(w.buffer.outbox.hasUnsent('site1/line1'), false, 'sealed ahead in its commit');
    await w.fill(4, { prefix: 'c' });
    assert.equal(w.buffer.outbox.hasUnsent('site1/line1'), false, 'sealed with the batch waiting ahead, in its commit');
    await w.accepted(9, 10_000);
    const r = w.erp.report();
    assert.deepEqual(r.lastRequests.map((q) => q.events), [2, 7]);
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'every accepted batch to be settled');
  });

  it('grows the batch waiting ahead with each commit: with the ERP slow, a trickle is not cut into a batch per commit', async (t) => {
    const w = await world(t);
    w.erp.setFaults({ delayMs: 300 });
    await w.fill(1, { prefix: 'first' });
    await waitFor(() => w.uplink.status().partitions.some((p) => p.inFlight), 'the first batch to be out');
    // Each commit flushed before the next, all while the first batch is out.
    for (let i = 0; i < 30; i++) await w.fill(1, { prefix: `t${i}` });
    await w.accepted(31, 10_000);
    const r = w.erp.report();
    // The first, then the one sealed ahead and sealed again with each commit (a slow machine may split it once).
    assert.ok(r.batches <= 3, `${r.batches} requests for 31 events`);
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0);
  });

  it("seals an idle partition's events in their own commit: nothing is left unsent once the commit resolves", async (t) => {
    // The woken worker seals inside the commit's event-loop turn. Were it to yield first,
    // the events would be sealed by a write of their own after their commit's flush,
    // and wait for two flushes before going out.
    const w = await world(t);
    w.erp.setFaults({ delayMs: 200 }); // the batch stays out while the outbox is looked at
    await w.fill(2, { prefix: 'a' });
    assert.equal(w.buffer.outbox.hasUnsent('site1/line1'), false, 'a fresh partition: sealed in the commit');
    await w.accepted(2, 5000);
    await waitFor(() => !w.uplink.status().partitions.some((p) => p.inFlight), 'the first answer to be applied');
    // Idle again, its accepted batch settled with the next seal (or alone after 20 ms).
    await w.fill(3, { prefix: 'b' });
    assert.equal(w.buffer.outbox.hasUnsent('site1/line1'), false, 'after an accepted batch: sealed in the commit');
    await w.accepted(5, 5000);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'both batches to be settled');
    assert.deepEqual(w.erp.report().lastRequests.map((q) => q.events), [2, 3]);
  });

  it('settles an accepted batch with the next seal, alone when nothing follows, and before stopping', async (t) => {
    const w = await world(t);
    await w.fill(3, { prefix: 'a' });
    await w.accepted(3, 5000);
    // Nothing follows: settled alone soon after, not left in the buffer.
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the accepted batch to be settled alone', 2000);
    assert.equal(w.buffer.stats().counters.delivered, 3);

    // One more event: accepted, then the uplink stops before the idle settle would run.
    await w.fill(1, { prefix: 'b' });
    await w.accepted(4, 5000);
    await w.uplink.stop(1000);
    assert.equal(w.buffer.stats().pendingEvents, 0, 'stop settles what the ERP accepted');
    assert.equal(w.buffer.stats().counters.delivered, 4);
    const r = w.erp.report();
    assert.equal(r.retriesSeen, 0);
    assert.equal(r.duplicates, 0);
  });

  it('seals events while their commit is written, and never past an earlier commit of the partition still being written', async (t) => {
    // Commits of one partition in consecutive event-loop turns: the second is offered to
    // the idle uplink while the first may not be visible yet. A batch sealed from the
    // second alone would strand the first below the outbox cursor, never sent.
    const w = await world(t);
    const sink = w.buffer.sinkFor('test');
    const rounds = 40;
    const commits: Promise<unknown>[] = [];
    for (let i = 0; i < rounds; i++) {
      const partitionkey = `site1/line${i}`;
      const event = (n: string) => ({ draft: { id: `r${i}-${n}`, type: 'production.completion', time: new Date().toISOString(), partitionkey, data: { n } } });
      commits.push(sink.commit([event('a')]));
      await new Promise((r) => setImmediate(r));
      commits.push(sink.commit([event('b')]));
      await Promise.all(commits);
    }
    await w.accepted(2 * rounds, 5000);
    const r = w.erp.report();
    assert.equal(r.accepted, 2 * rounds);
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0, JSON.stringify(r.orderViolationDetails));
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the buffer to drain', 2000);
  });

  it('a replayed dead letter still being written is not skipped by a batch sealed from a newer commit', async (t) => {
    const w = await world(t, {}, { start: false });
    const rounds = 60;
    const partitionOf = (i: number) => `site2/line${i}`;
    const sink = w.buffer.sinkFor('test');
    for (let i = 0; i < rounds; i++) {
      await sink.commit([{ draft: { id: `old-${i}`, type: 'production.completion', time: new Date().toISOString(), partitionkey: partitionOf(i), data: {} } }]);
      const batch = (await w.buffer.outbox.nextBatch(partitionOf(i), { maxEvents: 10, maxBytes: 1e6 }))!;
      await w.buffer.outbox.settle(batch, { delivered: [], rejected: [{ seq: batch.seqs[0]!, code: 'PG_ERR_UPLINK_REJECTED', reason: 'test' }], retry: [] });
    }
    const letters = w.buffer.deadLetters.list({ limit: rounds });
    assert.equal(letters.length, rounds);
    w.uplink.start();
    for (let i = 0; i < rounds; i++) {
      const replayed = w.buffer.deadLetters.replay(letters[i]!.dlid);
      await new Promise((r) => setImmediate(r));
      await Promise.all([replayed, sink.commit([{ draft: { id: `new-${i}`, type: 'production.completion', time: new Date().toISOString(), partitionkey: partitionOf(i), data: {} } }])]);
    }
    await w.accepted(2 * rounds, 5000);
    const r = w.erp.report();
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0, JSON.stringify(r.orderViolationDetails));
  });

  it('waits up to lingerMs to fill a batch, and no longer', async (t) => {
    const w = await world(t, { lingerMs: 400, maxBatchEvents: 50 });
    const at = Date.now();
    await w.fill(10);
    await w.fill(10, { prefix: 'more' });
    await w.accepted(20, 5000);
    const r = w.erp.report();
    assert.equal(r.batches, 1, 'both commits went out as one batch');
    assert.ok(Date.now() - at >= 390, 'the partial batch waited for lingerMs');
    // A full batch does not wait.
    await w.fill(120, { prefix: 'full' });
    await w.accepted(140, 5000);
    assert.ok(w.erp.report().lastRequests.some((q) => q.events === 50));
  });

  it('sends gzip bodies and the bearer token, and never logs the token', async (t) => {
    const w = await world(t, { gzip: true, bearerToken: 'tok-s3cret', headers: { 'x-plant': 'p1' } });
    w.erp.setFaults({ requireToken: 'tok-s3cret' });
    await w.fill(600, { partitions: PARTS });
    await w.accepted(600);
    const r = w.erp.report();
    assert.ok(r.lastRequests.length > 0 && r.lastRequests.every((q) => q.gzip && q.status === 200));
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0);
    assert.doesNotMatch(w.logs(), /tok-s3cret/);
  });

  it('on stop, aborts a request in flight after the deadline; the same batch is resent after a restart', async (t) => {
    const w = await world(t, { maxBatchEvents: 500 });
    w.erp.setFaults([{ delayMs: 1500, count: 1 }]);
    await w.fill(50);
    await waitFor(() => w.uplink.status().partitions.some((p) => p.inFlight), 'a request in flight');
    const key = w.uplink.status().partitions.find((p) => p.inFlight)!.inFlight!.batchId;
    const t0 = Date.now();
    await w.uplink.stop(100);
    assert.ok(Date.now() - t0 < 1000, 'stop honoured its deadline');
    assert.equal(w.uplink.status().state, 'stopped');
    assert.equal(w.buffer.stats().pendingEvents, 50, 'nothing settled');

    const again = createUplink({ config: w.config, outbox: w.buffer.outbox, logger: createLogger('silent') });
    t.after(() => again.stop(500));
    again.start();
    await w.accepted(50);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the buffer to drain');
    // The slow first request may still complete at the mock: it then finds the key already accepted.
    await sleep(1600);
    const r = w.erp.report();
    assert.equal(r.accepted, 50);
    assert.equal(r.duplicates, 0);
    assert.ok(r.lastRequests.filter((q) => q.key === key).length >= 2, 'the restart resent the same batch (same Idempotency-Key)');
  });

  it('does nothing when disabled', async (t) => {
    const w = await world(t, { enabled: false });
    await w.fill(10);
    await sleep(200);
    assert.equal(w.uplink.status().state, 'disabled');
    assert.equal(w.erp.report().requests, 0);
  });
});
