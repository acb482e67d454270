import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TopicRoutes, compileMapping } from '../../../src/protocols/mqtt-broker/mapping.js';
import type { MqttMappingConfig } from '../../../src/protocols/mqtt-broker/config.js';

const mapping = (topic: string, type: string) => compileMapping({ topic, type, partitionKey: '{site}/{line}' } as MqttMappingConfig);

describe('topic routes', () => {
  it('routes a topic to the first matching mapping with its captures, the same on every message', () => {
    const routes = new TopicRoutes([mapping('plant/{site}/{line}/completion', 'production.completion'), mapping('plant/#', 'other')]);
    for (let i = 0; i < 3; i++) {
      const r = routes.route('plant/s1/l2/completion');
      assert.equal(r?.mapping.config.type, 'production.completion');
      assert.deepEqual(r?.captures, { site: 's1', line: 'l2' });
    }
    assert.equal(routes.route('plant/s1/l2/state')?.mapping.config.type, 'other');
    assert.equal(routes.route('plant/s1/l3/completion')?.captures['line'], 'l3');
  });

  it('answers unmapped topics every time, also past the number of topics it remembers', () => {
    const routes = new TopicRoutes([mapping('plant/{site}/{line}/completion', 'production.completion')]);
    assert.equal(routes.route('chat/room'), undefined);
    assert.equal(routes.route('chat/room'), undefined);
    for (let i = 0; i < 25_000; i++) assert.equal(routes.route(`plant/s/${i}/completion`)?.captures['line'], String(i));
    assert.equal(routes.route('chat/room'), undefined);
    assert.equal(routes.route('plant/s/7/completion')?.captures['line'], '7');
  });
});
