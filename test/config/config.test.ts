import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_CONFIG_PATH, loadConfig, parseConfig } from '../../src/config/load.js';
import { PlantgateError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const run = promisify(execFile);
const MAIN = new URL('../../src/main.js', import.meta.url).pathname;

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): { path: string; message: string }[] {
  try {
    parseConfig(yaml, 'test.yaml', env);
  } catch (err) {
    assert.ok(err instanceof PlantgateError);
    assert.equal(err.code, 'PG_ERR_CONFIG_INVALID');
    return (err.details as { problems: { path: string; message: string }[] }).problems;
  }
  assert.fail('config was accepted');
}

describe('configuration', () => {
  it('the embedded default is valid and fills every default', () => {
    const { config } = loadConfig(DEFAULT_CONFIG_PATH);
    assert.equal(config.sources.mqttBroker[0]!.port, 1883);
    assert.equal(config.uplink.url, 'http://127.0.0.1:8088/events');
    assert.equal(config.uplink.retry.maxDelayMs, 60_000);
    assert.equal(config.buffer.maxEvents, 10_000_000);
    assert.equal(config.gateway.dataDir, './data');
    const empty = parseConfig('').config;
    assert.equal(empty.uplink.maxBatchEvents, 500);
    assert.deepEqual(empty.sources.mqttBroker, []);
  });

  it('names an unknown key with its path and the key it was probably meant to be', () => {
    const p = problems('uplink:\n  urll: http://x\nbuffer:\n  maxEvent: 5\n');
    const byPath = Object.fromEntries(p.map((x) => [x.path, x.message]));
    assert.deepEqual(Object.keys(byPath).sort(), ['buffer.maxEvent', 'uplink.urll']);
    assert.match(byPath['uplink.urll']!, /unknown key \(did you mean 'url'\?\)/);
    assert.match(byPath['buffer.maxEvent']!, /did you mean 'maxEvents'/);
  });

  it('reports every wrong value at once, each with its key', () => {
    const p = problems(`
gateway: { id: "bad id!" }
uplink: { url: ftp://erp, maxBatchEvents: 0, gzip: "yes" }
log: { level: loud }
sources:
  mqttBroker:
    - name: mqtt
      port: 70000
      mappings:
        - topic: a/b
    - name: mqtt
      port: 1884
`);
    const byPath = Object.fromEntries(p.map((x) => [x.path, x.message]));
    assert.match(byPath['gateway.id']!, /not valid: Gateway identity/);
    assert.match(byPath['uplink.url']!, /not valid/);
    assert.match(byPath['uplink.maxBatchEvents']!, />= 1/);
    assert.match(byPath['uplink.gzip']!, /boolean/);
    assert.match(byPath['log.level']!, /must be one of fatal, error, warn, info, debug, trace/);
    assert.match(byPath['sources.mqttBroker[0].port']!, /<= 65535/);
    assert.match(byPath['sources.mqttBroker[0].mappings[0].type']!, /is required/);
    assert.match(byPath['sources.mqttBroker[1].name']!, /already used at sources.mqttBroker\[0\].name/);
  });

  it('resolves ${env:} and ${file:} secret references and reports missing ones by key', (t) => {
    const dir = tempDir(t);
    const secret = join(dir, 'token');
    writeFileSync(secret, 's3cret\n');
    const ok = parseConfig(`uplink:\n  bearerToken: \${file:${secret}}\n  headers:\n    X-Plant: \${env:PLANT}\n`, 'x', { PLANT: 'p1' });
    assert.equal(ok.config.uplink.bearerToken, 's3cret');
    assert.equal(ok.config.uplink.headers['X-Plant'], 'p1');
    assert.deepEqual(ok.secrets.sort(), ['p1', 's3cret']);
    const p = problems('uplink:\n  bearerToken: ${env:NOPE}\n  headers:\n    A: ${file:/nonexistent/x}\n');
    assert.deepEqual(p.map((x) => x.path), ['uplink.bearerToken', 'uplink.headers.A']);
    assert.match(p[0]!.message, /environment variable NOPE is not set/);
    assert.match(p[1]!.message, /cannot read secret file \/nonexistent\/x: ENOENT/);
  });

  it('reports YAML syntax errors with their line', () => {
    const p = problems('uplink:\n  url: [unclosed\n');
    assert.match(p[0]!.path, /^line \d+$/);
  });

  it('plantgate check-config prints the problems and exits non-zero', async (t) => {
    const dir = tempDir(t);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'web:\n  prot: 8080\n');
    const res = await run(process.execPath, [MAIN, 'check-config', bad]).then(
      () => assert.fail('check-config accepted a bad file'),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(res.code, 2);
    assert.match(res.stderr, /PG_ERR_CONFIG_INVALID/);
    assert.match(res.stderr, /web\.prot: unknown key \(did you mean 'port'\?\)/);
    const good = await run(process.execPath, [MAIN, 'check-config', DEFAULT_CONFIG_PATH]);
    assert.match(good.stdout, /is valid/);
  });
});
