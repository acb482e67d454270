/** The mock ERP itself: it must catch what the gateway could get wrong, or the other tests prove nothing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { startMockErp } from '../../scripts/mock-erp/server.js';
import { freePort } from '../helpers/net.js';

const TYPE = 'application/cloudevents-batch+json';
const ev = (id: string, sequence: number, partitionkey = 'p/1') => ({ specversion: '1.0', id, sequence: String(sequence), partitionkey, type: 't', data: {} });

async function post(url: string, key: string | undefined, events: unknown, o: { gzip?: boolean; type?: string } = {}) {
  const raw = Buffer.from(JSON.stringify(events));
  const headers: Record<string, string> = { 'content-type': o.type ?? TYPE };
  if (key) headers['idempotency-key'] = key;
  if (o.gzip) headers['content-encoding'] = 'gzip';
  const res = await request(url, { method: 'POST', headers, body: o.gzip ? gzipSync(raw) : raw });
  return { status: res.statusCode, body: await res.body.text() };
}

describe('mock ERP', () => {
  it('records ids once, recognises retries by key, counts duplicates and order violations', async (t) => {
    const erp = await startMockErp({ port: await freePort() });
    t.after(() => erp.close());
    assert.equal((await post(erp.url, 'k1', [ev('a', 1), ev('b', 2)])).status, 200);
    assert.equal((await post(erp.url, 'k1', [ev('a', 1), ev('b', 2)])).status, 409, 'a known key is a retry');
    assert.equal((await post(erp.url, 'k2', [ev('b', 2), ev('c', 3)], { gzip: true })).status, 200);
    assert.equal((await post(erp.url, 'k3', [ev('d', 1)])).status, 200);
    const r = erp.report({ ids: true });
    assert.equal(r.accepted, 4);
    assert.equal(r.retriesSeen, 1);
    assert.equal(r.duplicates, 1, 'b came again under a new key');
    assert.equal(r.orderViolations, 1, 'd went backwards');
    assert.deepEqual(r.partitions['p/1'], { count: 4, lastSequence: 3 });
    assert.deepEqual(r.ids?.sort(), ['a', 'b', 'c', 'd']);
    assert.equal(r.lastRequests.length, 4);
  });

  it('refuses what breaks the wire contract', async (t) => {
    const erp = await startMockErp({ port: await freePort() });
    t.after(() => erp.close());
    assert.equal((await post(erp.url, 'k', [ev('a', 1)], { type: 'application/json' })).status, 415);
    assert.equal((await post(erp.url, undefined, [ev('a', 1)])).status, 400);
    assert.equal((await post(erp.url, 'k', { not: 'an array' })).status, 400);
    assert.equal((await post(erp.url, 'k', [ev('a', 2), ev('b', 1)])).status, 400, 'unordered batch');
    assert.equal((await post(erp.url, 'k', [ev('a', 1, 'x'), ev('b', 2, 'y')])).status, 400, 'two partitions in one batch');
    const r = erp.report();
    assert.equal(r.contractViolations, 5);
    assert.equal(r.accepted, 0);
  });

  it('takes faults and reports over HTTP; faults apply in turn for their count', async (t) => {
    const erp = await startMockErp({ port: await freePort() });
    t.after(() => erp.close());
    const faults = [{ mode: 'status', status: 503, retryAfter: '7', count: 1 }, { rejectPattern: 'bad', count: 1 }, { mode: 'down', count: 1 }];
    assert.equal((await request(`${erp.baseUrl}/_faults`, { method: 'POST', body: JSON.stringify(faults) })).statusCode, 200);
    const res = await request(erp.url, { method: 'POST', headers: { 'content-type': TYPE, 'idempotency-key': 'k' }, body: JSON.stringify([ev('a', 1)]) });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], '7');
    await res.body.text();
    const rejected = await post(erp.url, 'k', [ev('a', 1), ev('bad', 2)]);
    assert.equal(rejected.status, 422);
    assert.match(rejected.body, /"ids":\["bad"\]/);
    await assert.rejects(post(erp.url, 'k', [ev('a', 1)]), 'down: the socket is destroyed without an answer');
    assert.equal((await post(erp.url, 'k', [ev('a', 1)])).status, 200, 'back to ok');
    const report = (await (await request(`${erp.baseUrl}/_report`)).body.json()) as { accepted: number; requests: number };
    assert.equal(report.accepted, 1);
    assert.equal(report.requests, 4);
    assert.equal((await request(`${erp.baseUrl}/_reset`, { method: 'POST' })).statusCode, 200);
    assert.equal(erp.report().accepted, 0);
  });

  it('answers 207 per event with partial, and 401 without the right token', async (t) => {
    const erp = await startMockErp({ port: await freePort() });
    t.after(() => erp.close());
    erp.setFaults({ rejectPattern: 'bad', partial: true, requireToken: 's' });
    assert.equal((await post(erp.url, 'k', [ev('a', 1)])).status, 401);
    const res = await request(erp.url, { method: 'POST', headers: { 'content-type': TYPE, 'idempotency-key': 'k', authorization: 'Bearer s' }, body: JSON.stringify([ev('a', 1), ev('bad', 2)]) });
    assert.equal(res.statusCode, 207);
    const body = (await res.body.json()) as { results: { id: string; status: number }[] };
    assert.deepEqual(body.results.map((x) => [x.id, x.status]), [['a', 201], ['bad', 422]]);
    assert.equal(erp.report().accepted, 1);
  });
});
