/**
 * mqtt-packet, which aedes parses and writes every packet with, calls `debug()`
 * a dozen times per message. The debug package builds an argument array on each
 * call even when its namespace is off: 14 % of the daemon's allocations at 28,000
 * messages/s, and 5–10 % of its ingest rate through the extra young-generation
 * collections. Loggers created while this module is in effect do nothing unless
 * DEBUG names their namespace at start-up (`DEBUG=mqtt-packet:*` still works).
 *
 * Must be evaluated before aedes loads mqtt-packet: broker.ts imports it first.
 */
import { createRequire } from 'node:module';

interface DebugFactory {
  (namespace: string): unknown;
  enabled(namespace: string): boolean;
}

const require = createRequire(import.meta.url);
const path = require.resolve('debug');
const real = require('debug') as DebugFactory;
const cached = require.cache[path];

function silent(): void {}
Object.assign(silent, { enabled: false, log: silent, extend: () => silent });

if (cached && !(real as { quiet?: boolean }).quiet) {
  // Same factory, same properties (enable, disable, formatters...); only disabled loggers change.
  const quiet = Object.assign((namespace: string) => (real.enabled(namespace) ? real(namespace) : silent), real, { quiet: true });
  cached.exports = quiet;
}
