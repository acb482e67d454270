/** The retry policy: full-jitter exponential backoff, capped; Retry-After parsing and capping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffCeiling, backoffDelay, DEFAULT_RETRY_POLICY, parseRetryAfter, retryDelay, retryPolicy } from '../../src/uplink/retry-policy.js';
import { parseConfig } from '../../src/config/load.js';

describe('retry policy', () => {
  const policy = retryPolicy({ minDelayMs: 100, maxDelayMs: 5000, factor: 2, maxRetryAfterMs: 10_000 });

  it('takes its defaults from the config schema, in one place', () => {
    assert.deepEqual({ ...DEFAULT_RETRY_POLICY }, { ...parseConfig('').config.uplink.retry });
  });

  it('grows the backoff ceiling exponentially and caps it at maxDelayMs', () => {
    const ceilings = Array.from({ length: 10 }, (_, i) => backoffCeiling(policy, i));
    assert.deepEqual(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
    assert.equal(backoffCeiling(policy, 5000), 5000, 'no overflow for huge attempt numbers');
  });

  it('applies full jitter: anywhere between 0 and the ceiling', () => {
    assert.equal(backoffDelay(policy, 3, () => 0), 0);
    assert.equal(backoffDelay(policy, 3, () => 0.5), 400);
    assert.equal(backoffDelay(policy, 3, () => 0.999999), 799);
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(policy, 20);
      assert.ok(d >= 0 && d < 5000, `delay ${d} within [0, maxDelayMs)`);
    }
  });

  it('parses Retry-After as delta-seconds or an HTTP-date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter(' 0 ', now), 0);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:07 GMT', now), 7000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a date in the past means now');
    assert.equal(parseRetryAfter(['5', '9'], now), 5000);
    assert.equal(parseRetryAfter(undefined, now), undefined);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter('-3', now), undefined);
  });

  it('waits at least Retry-After, capped at maxRetryAfterMs', () => {
    assert.equal(retryDelay(policy, 0, 3000, () => 0.5), 3000, 'Retry-After wins over a shorter backoff');
    assert.equal(retryDelay(policy, 10, 1000, () => 0.9), 4500, 'never earlier than asked, backoff may be longer');
    assert.equal(retryDelay(policy, 0, 3_600_000, () => 0), 10_000, 'an hour is capped at maxRetryAfterMs');
    assert.equal(retryDelay(policy, 2, undefined, () => 0.5), 200);
  });
});
