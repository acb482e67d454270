/**
 * Retry policy as plain data (STYLE.md §6, after undici's retry-handler): the
 * defaults live once, in the config schema (RetrySection), and are read from it
 * here so a policy built without config matches a config without `uplink.retry`.
 *
 * Backoff is exponential with FULL jitter: delay = random(0, min(max, min·factor^attempt)).
 * Full jitter spreads a fleet of gateways that lost the ERP at the same moment.
 * A server's Retry-After is a floor: we never come back earlier than it asked,
 * but never wait longer than maxRetryAfterMs for it either.
 */
import { RetrySection, type RetryConfig } from '../config/schema.js';

export type RetryPolicy = Readonly<RetryConfig>;

function schemaDefault(key: keyof RetryConfig): number {
  return (RetrySection.properties[key] as { default: number }).default;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  minDelayMs: schemaDefault('minDelayMs'),
  maxDelayMs: schemaDefault('maxDelayMs'),
  factor: schemaDefault('factor'),
  maxRetryAfterMs: schemaDefault('maxRetryAfterMs'),
  authRetryMs: schemaDefault('authRetryMs'),
});

export function retryPolicy(config: Partial<RetryConfig> = {}): RetryPolicy {
  return Object.freeze({ ...DEFAULT_RETRY_POLICY, ...config });
}

/** The backoff ceiling for a 0-based attempt number (before jitter). */
export function backoffCeiling(policy: RetryPolicy, attempt: number): number {
  // factor^attempt overflows to Infinity for large attempts; Math.min handles that.
  return Math.min(policy.maxDelayMs, policy.minDelayMs * Math.pow(policy.factor, Math.max(0, attempt)));
}

/** Full-jitter delay for a 0-based attempt number. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(policy, attempt));
}

/**
 * Parses a Retry-After header (RFC 9110 §10.2.3: delta-seconds or HTTP-date) into
 * milliseconds from `now`. Undefined when absent or unparseable; never negative.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Date.parse would take '-3' for a year: an HTTP-date always names its weekday and month.
  if (!/[A-Za-z]{3}/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * How long to wait before the next attempt. With a Retry-After (already parsed,
 * in ms) the wait is at least that (capped at maxRetryAfterMs), else jittered backoff.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const jittered = backoffDelay(policy, attempt, random);
  if (retryAfterMs === undefined) return jittered;
  return Math.max(Math.min(retryAfterMs, policy.maxRetryAfterMs), jittered);
}
