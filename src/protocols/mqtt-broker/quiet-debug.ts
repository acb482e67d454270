/**
 * mqtt-packet, which aedes parses and writes every packet with, calls `debug()`
 * a dozen times per message. The debug package builds an argument array on each
 * call even when its namespace is off: 14 % of the daemon's allocations at 28,000
 * messages/s, and 5–10 % of its ingest rate through the extra young-generation
 * collections. Loggers created while this module is in effect do nothing unless
 * DEBUG names their namespace at start-up (`DEBUG=mqtt-packet:*` still works).
 *
 * Must be evaluated before aedes loads mqtt-packet: broker.ts imports it first.
 * The debug module is found the way mqtt-packet finds it (from aedes, then
 * mqtt-packet), so a nested copy is the one changed; if the lookup fails, nothing is.
 */
import { createRequire } from 'node:module';

interface DebugFactory {
  (namespace: string): unknown;
  enabled(namespace: string): boolean;
  quiet?: true;
}

function silent(): void {}
Object.assign(silent, { enabled: false, log: silent, extend: () => silent });

try {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'));
  const fromPacket = createRequire(fromAedes.resolve('mqtt-packet'));
  const path = fromPacket.resolve('debug');
  const real = fromPacket('debug') as DebugFactory;
  const cached = fromPacket.cache[path];
  if (cached && !real.quiet) {
    // Same factory, same properties (enable, disable, formatters...); only disabled loggers change.
    cached.exports = Object.assign((namespace: string) => (real.enabled(namespace) ? real(namespace) : silent), real, { quiet: true });
  }
} catch {
  // Only an optimisation: mqtt-packet then logs (or not) as it always did.
}
