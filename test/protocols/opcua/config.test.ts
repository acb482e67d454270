/** The OPC UA config: the sample validates, defaults apply, mistakes are named by path. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../../src/config/load.js';
import type { OpcuaConfigType } from '../../../src/protocols/opcua/config.js';
import { stableId, qualityOf } from '../../../src/protocols/opcua/event-build.js';

const SAMPLE = fileURLToPath(new URL('../../../../src/protocols/opcua/sample.yaml', import.meta.url));

test('sample.yaml validates and takes defaults', () => {
  const { config, secrets } = parseConfig(readFileSync(SAMPLE, 'utf8'), SAMPLE, { PRESS1_OPCUA_PASSWORD: 's3cret' });
  const c = (config.sources as unknown as { opcua: OpcuaConfigType[] }).opcua[0]!;
  assert.equal(c.securityMode, 'SignAndEncrypt');
  assert.deepEqual(c.user, { type: 'username', username: 'plantgate', password: 's3cret' });
  assert.ok(secrets.includes('s3cret'));
  assert.equal(c.keepAliveIntervalMs, 5000);
  assert.equal(c.items[0]!.queueSize, 10);
  assert.equal(c.triggerGroups[0]!.idFrom, 'sourceTimestamp');
  assert.equal(c.triggerGroups[0]!.trigger.recheckIntervalMs, 1000);
  assert.equal(c.triggerGroups[1]!.trigger.mode, 'counter');
});

test('unknown keys and wrong values are reported with their path', () => {
  const yaml = `sources:\n  opcua:\n    - name: p1\n      endpointUrl: http://x\n      securityMode: Encrypt\n      items:\n        - nodeId: 'ns=2;s=A'\n          samplingInterval: 100\n`;
  assert.throws(
    () => parseConfig(yaml),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PG_ERR_CONFIG_INVALID');
      assert.match(err.message, /sources\.opcua\[0\]\.endpointUrl/);
      assert.match(err.message, /sources\.opcua\[0\]\.securityMode: must be one of None, Sign, SignAndEncrypt/);
      assert.match(err.message, /sources\.opcua\[0\]\.items\[0\]\.samplingInterval: unknown key \(did you mean 'samplingIntervalMs'\?\)/);
      return true;
    },
  );
});

test('event ids are stable and status severities map to quality', () => {
  assert.equal(stableId('a', 'b', 1), stableId('a', 'b', 1));
  assert.notEqual(stableId('a', 'b', 1), stableId('a', 'b', 2));
  assert.equal(qualityOf(0), 'good');
  assert.equal(qualityOf(0x408f0000), 'uncertain');
  assert.equal(qualityOf(0x808b0000), 'bad');
});
