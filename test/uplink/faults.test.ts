/** The uplink when the ERP misbehaves: outages, throttling, rejections, splits, credentials, vanishing sockets. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { waitFor } from '../helpers/net.js';
import { sleep, world } from './harness.js';

describe('uplink under ERP faults', () => {
  it('rides out down, 503 + Retry-After, 429 and slow answers; honours the Retry-After gap', async (t) => {
    const w = await world(t, { maxBatchEvents: 100, concurrency: 1 });
    w.erp.setFaults([
      { mode: 'down', count: 3 },
      { mode: 'status', status: 503, retryAfter: '1', count: 1 },
      { mode: 'status', status: 429, count: 2 },
      { delayMs: 200, count: 2 },
    ]);
    await w.fill(600, { partitions: ['a/1', 'a/2'] });
    await w.accepted(600, 15_000);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the buffer to drain');
    const r = w.erp.report();
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0);
    const statuses = r.lastRequests.map((q) => q.status);
    assert.deepEqual(statuses.slice(0, 6), [0, 0, 0, 503, 429, 429]);
    const i503 = statuses.indexOf(503);
    const key = r.lastRequests[i503]!.key;
    const next = r.lastRequests.slice(i503 + 1).find((q) => q.key === key);
    assert.ok(next, 'the batch refused with 503 was resent under the same key');
    const gap = Date.parse(next.at) - Date.parse(r.lastRequests[i503]!.at);
    assert.ok(gap >= 990, `the next attempt came ${gap} ms after Retry-After: 1`);
    const s = w.uplink.status();
    assert.equal(s.counters.retries, 6);
    assert.equal(s.partitions.every((p) => p.lastError === undefined), true, 'errors clear once delivering again');
    assert.equal(s.lastError?.code, 'PG_ERR_UPLINK_TRANSIENT');
  });

  it('retries a timed-out request; the ERP recognises the resend by its key', async (t) => {
    const w = await world(t, { requestTimeoutMs: 300 });
    w.erp.setFaults([{ delayMs: 600, count: 1 }]);
    await w.fill(40);
    await w.accepted(40);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the buffer to drain');
    await sleep(400);
    const r = w.erp.report();
    assert.equal(r.accepted, 40);
    assert.equal(r.duplicates, 0);
    assert.ok(w.uplink.status().counters.retries >= 1);
    assert.match(w.logs(), /timed out/);
  });

  it('isolates one rejected event in a batch of 500 (422): 499 arrive, one is dead-lettered with the reason', async (t) => {
    const w = await world(t, { maxBatchEvents: 500 });
    w.erp.setFaults({ rejectPattern: '"bad":true' });
    await w.fill(500, { data: (i) => (i === 137 ? { n: i, bad: true } : { n: i }) });
    await w.accepted(499);
    await waitFor(() => w.buffer.deadLetters.count() === 1 && w.buffer.stats().pendingEvents === 0, 'the rejected event to be dead-lettered');
    const [dl] = w.buffer.deadLetters.list();
    assert.equal(dl?.code, 'PG_ERR_UPLINK_REJECTED');
    assert.equal(dl?.event?.['id'], 'e-137');
    assert.match(dl!.reason, /HTTP 422/);
    assert.match(dl!.reason, /e-137/, 'the reason is what the ERP said');
    const r = w.erp.report();
    assert.equal(r.accepted, 499);
    assert.equal(r.duplicates, 0);
    assert.equal(r.orderViolations, 0);
    const s = w.uplink.status();
    assert.equal(s.counters.eventsRejected, 1);
    assert.ok(s.counters.splits >= 9, `binary isolation of 1 in 500 takes ~9 splits (${s.counters.splits})`);
    assert.match(w.logs(), /"code":"PG_ERR_UPLINK_REJECTED"/);
  });

  it('applies a 207 per event: accepted ones delivered, refused ones dead-lettered', async (t) => {
    const w = await world(t, { maxBatchEvents: 100 });
    w.erp.setFaults({ rejectPattern: '"bad":true', partial: true });
    await w.fill(200, { data: (i) => (i % 50 === 7 ? { n: i, bad: true } : { n: i }) });
    await w.accepted(196);
    await waitFor(() => w.buffer.deadLetters.count() === 4 && w.buffer.stats().pendingEvents === 0, 'four dead letters');
    const ids = w.buffer.deadLetters.list().map((d) => d.event?.['id']).sort();
    assert.deepEqual(ids, ['e-107', 'e-157', 'e-57', 'e-7']);
    assert.ok(w.buffer.deadLetters.list().every((d) => /HTTP 422: matches rejectPattern/.test(d.reason)));
    const r = w.erp.report();
    assert.equal(r.batches, 2, 'no splitting for a 207');
    assert.equal(w.uplink.status().counters.splits, 0);
  });

  it('treats 409 as accepted', async (t) => {
    const w = await world(t);
    w.erp.setFaults([{ mode: 'status', status: 409, count: 1 }]);
    await w.fill(10);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the batch to be settled');
    assert.equal(w.uplink.status().counters.batchesDelivered, 1);
    assert.equal(w.uplink.status().counters.retries, 0);
    assert.equal(w.erp.report().accepted, 0, 'the ERP said it had it already');
  });

  it('splits on 413 and resends the halves in order; a single event too large is dead-lettered', async (t) => {
    const w = await world(t, { maxBatchEvents: 500 });
    w.erp.setFaults({ maxBodyBytes: 30_000 });
    await w.fill(400, { data: (i) => (i === 399 ? { n: i, blob: 'x'.repeat(40_000) } : { n: i }) });
    await w.accepted(399);
    await waitFor(() => w.buffer.deadLetters.count() === 1 && w.buffer.stats().pendingEvents === 0, 'the oversized event to be dead-lettered');
    const r = w.erp.report();
    assert.equal(r.orderViolations, 0);
    assert.equal(r.duplicates, 0);
    assert.ok(w.uplink.status().counters.splits >= 2);
    const [dl] = w.buffer.deadLetters.list();
    assert.equal(dl?.event?.['id'], 'e-399');
    assert.match(dl!.reason, /too large/);
  });

  it('pauses all partitions on 401 with an alarm, keeps the data, and delivers everything after resume()', async (t) => {
    const w = await world(t, { bearerToken: 'new-token', concurrency: 2 });
    w.erp.setFaults({ requireToken: 'old-token' });
    await w.fill(300, { partitions: ['a/1', 'a/2', 'a/3'] });
    await waitFor(() => w.uplink.status().state === 'paused', 'the auth pause');
    const s = w.uplink.status();
    assert.equal(s.alarm?.code, 'PG_ERR_UPLINK_AUTH');
    assert.equal(s.lastError?.status, 401);
    await sleep(100);
    const requests = w.erp.report().requests;
    assert.ok(requests <= 2, `at most the requests already in flight went out (${requests})`);
    await sleep(300);
    assert.equal(w.erp.report().requests, requests, 'nothing is sent while paused');
    assert.equal(w.buffer.stats().pendingEvents, 300, 'the data is kept');

    w.erp.setFaults({ requireToken: 'new-token' });
    w.uplink.resume();
    await w.accepted(300);
    await waitFor(() => w.uplink.status().alarm === undefined, 'the alarm to clear');
    assert.equal(w.uplink.status().state, 'running');
    assert.equal(w.erp.report().duplicates, 0);
    assert.match(w.logs(), /"code":"PG_ERR_UPLINK_AUTH"/);
    assert.doesNotMatch(w.logs(), /new-token/);
  });

  it('retries by itself after authRetryMs', async (t) => {
    const w = await world(t, { bearerToken: 'tok', retry: { authRetryMs: 300 } });
    w.erp.setFaults([{ mode: 'status', status: 403, count: 1 }]);
    await w.fill(20);
    await w.accepted(20, 5000);
    const r = w.erp.report();
    const gap = Date.parse(r.lastRequests[1]!.at) - Date.parse(r.lastRequests[0]!.at);
    assert.equal(r.lastRequests[0]!.status, 403);
    assert.ok(gap >= 290, `retried ${gap} ms after the 403`);
  });

  it('survives the server vanishing mid-batch, before and after accepting it: no loss, no duplicate', async (t) => {
    const w = await world(t, { maxBatchEvents: 200 });
    w.erp.setFaults([
      { mode: 'down', count: 1 },
      { mode: 'lose-response', count: 2 },
    ]);
    await w.fill(1000, { partitions: ['a/1', 'a/2'] });
    await w.accepted(1000);
    await waitFor(() => w.buffer.stats().pendingEvents === 0, 'the buffer to drain');
    const r = w.erp.report();
    assert.equal(r.accepted, 1000);
    assert.equal(r.duplicates, 0, 'a resent batch is never accepted twice');
    assert.equal(r.orderViolations, 0);
    assert.ok(r.retriesSeen >= 1, 'the ERP saw a lost-response batch again, by its key');
  });
});
