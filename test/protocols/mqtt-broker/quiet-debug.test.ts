import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const brokerModule = fileURLToPath(new URL('../../../src/protocols/mqtt-broker/broker.js', import.meta.url));

// A fresh process, as the daemon loads it: the broker module first, then mqtt-packet parses one PUBLISH.
const script = `
import { createRequire } from 'node:module';
await import(${JSON.stringify(brokerModule)});
const fromAedes = createRequire(createRequire(require_base).resolve('aedes'));
const fromPacket = createRequire(fromAedes.resolve('mqtt-packet'));
const debug = fromPacket('debug');
const mqttPacket = fromAedes('mqtt-packet');
const parser = mqttPacket.parser({ protocolVersion: 4 });
let packets = 0;
parser.on('packet', () => packets++);
parser.parse(mqttPacket.generate({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('{}'), qos: 1, messageId: 7, retain: false, dup: false }));
console.log(JSON.stringify({ packets, parserLoggerEnabled: debug('mqtt-packet:parser').enabled === true, shared: debug('x:a') === debug('x:b') }));
`.replace('require_base', JSON.stringify(brokerModule));

async function runWith(env: NodeJS.ProcessEnv): Promise<{ out: { packets: number; parserLoggerEnabled: boolean; shared: boolean }; stderr: string }> {
  const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env['PATH'], ...env }, timeout: 20_000 });
  return { out: JSON.parse(stdout.trim()) as { packets: number; parserLoggerEnabled: boolean; shared: boolean }, stderr };
}

describe('mqtt-packet debug logging under the embedded broker', () => {
  it('is silent without DEBUG: loggers are one shared no-op (no per-call argument arrays)', async () => {
    const { out, stderr } = await runWith({});
    assert.equal(out.packets, 1);
    assert.equal(out.parserLoggerEnabled, false);
    assert.equal(out.shared, true);
    assert.equal(stderr, '');
  });

  it('still logs when DEBUG names the namespace', async () => {
    const { out, stderr } = await runWith({ DEBUG: 'mqtt-packet:parser' });
    assert.equal(out.packets, 1);
    assert.equal(out.parserLoggerEnabled, true);
    assert.match(stderr, /mqtt-packet:parser/);
    assert.match(stderr, /parse: packet/);
  });
});
