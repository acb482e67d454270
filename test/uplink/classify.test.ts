/** Response → verdict, per DESIGN.md's uplink contract table. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SealedBatch } from '../../src/buffer/types.js';
import { classify, partialOutcome } from '../../src/uplink/classify.js';
import type { SendResult } from '../../src/uplink/http-sink.js';

const res = (status: number, body = '', retryAfter?: string): SendResult => ({ kind: 'response', status, body: Buffer.from(body), ...(retryAfter ? { retryAfter } : {}) });

describe('classify', () => {
  it('2xx and 409 are delivered', () => {
    for (const s of [200, 201, 202, 204]) assert.deepEqual(classify(res(s), 10), { outcome: 'delivered', status: s, alreadySeen: false });
    assert.deepEqual(classify(res(409), 10), { outcome: 'delivered', status: 409, alreadySeen: true });
  });

  it('207 with results is per event; an unreadable 207 is retried whole', () => {
    const v = classify(res(207, JSON.stringify({ results: [{ id: 'a', status: 201 }, { id: 'b', status: 422, error: 'bad lot' }] })), 3);
    assert.equal(v.outcome, 'partial');
    assert.equal(v.outcome === 'partial' && v.results.get('b')?.error, 'bad lot');
    assert.equal(classify(res(207, 'not json'), 3).outcome, 'retry');
    assert.equal(classify(res(207, '{"results":5}'), 3).outcome, 'retry');
  });

  it('400, 422 and other 4xx are business rejections: split, or dead-letter a single event with the body', () => {
    for (const s of [400, 422, 404, 410]) {
      const many = classify(res(s, '{"error":"x"}'), 5);
      assert.equal(many.outcome, 'rejected');
      assert.equal(many.outcome === 'rejected' && many.action, 'split');
      const one = classify(res(s, '{"error":"unknown material M-1"}'), 1);
      assert.equal(one.outcome === 'rejected' && one.action, 'dead-letter');
      assert.match(one.outcome === 'rejected' ? one.reason : '', new RegExp(`HTTP ${s}: \\{"error":"unknown material M-1"\\}`));
      assert.equal(one.outcome === 'rejected' && one.code, 'PG_ERR_UPLINK_REJECTED');
    }
  });

  it('413 splits; a single event too large is rejected saying so', () => {
    const many = classify(res(413), 4);
    assert.equal(many.outcome === 'retry' && many.action, 'split');
    const one = classify(res(413), 1);
    assert.equal(one.outcome === 'rejected' && one.action, 'dead-letter');
    assert.match(one.outcome === 'rejected' ? one.reason : '', /too large/);
  });

  it('401 and 403 pause for credentials', () => {
    for (const s of [401, 403]) {
      const v = classify(res(s, 'nope'), 5);
      assert.equal(v.outcome === 'retry' && v.action, 'auth-pause');
      assert.equal(v.outcome === 'retry' && v.code, 'PG_ERR_UPLINK_AUTH');
    }
  });

  it('408, 429, 5xx and network errors are transient; Retry-After is parsed', () => {
    for (const s of [408, 429, 500, 502, 503, 504]) {
      const v = classify(res(s, '', '2'), 5);
      assert.equal(v.outcome === 'retry' && v.action, 'backoff');
      assert.equal(v.outcome === 'retry' && v.retryAfterMs, 2000);
    }
    const err: SendResult = { kind: 'error', code: 'PG_ERR_UPLINK_TRANSIENT', message: 'ECONNREFUSED', timeout: false, aborted: false };
    assert.equal(classify(err, 5).outcome, 'retry');
    const tls: SendResult = { kind: 'error', code: 'PG_ERR_UPLINK_TLS', message: 'CERT_HAS_EXPIRED', timeout: false, aborted: false };
    const v = classify(tls, 5);
    assert.equal(v.outcome === 'retry' && v.code, 'PG_ERR_UPLINK_TLS');
  });

  it('turns 207 results into a settle outcome: 2xx delivered, 4xx rejected, 5xx or missing retried', () => {
    const batch: SealedBatch = { id: 'b1', partition: 'p', seqs: [11, 12, 13, 14, 15], bytes: 0, sealedAt: '' };
    const events = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({ id, sequence: String(11 + i) }));
    const results = new Map([
      ['a', { status: 200 }],
      ['b', { status: 422, error: 'unknown lot L-7' }],
      ['c', { status: 503 }],
      ['e', { status: 409 }],
    ]);
    const o = partialOutcome(batch, events, results);
    assert.deepEqual(o.delivered, [11, 15]);
    assert.deepEqual(o.retry, [13, 14]);
    assert.deepEqual(o.rejected, [{ seq: 12, code: 'PG_ERR_UPLINK_REJECTED', reason: 'HTTP 422: unknown lot L-7' }]);
  });
});
