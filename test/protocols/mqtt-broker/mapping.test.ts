import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MappingError, TopicRoutes, buildDraft, compileMapping } from '../../../src/protocols/mqtt-broker/mapping.js';
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

describe('drafts', () => {
  const ctx = { site: 'gw-site', receivedAt: Date.parse('2026-11-27T08:00:00.000Z') };
  const routeOf = (config: Partial<MqttMappingConfig>, topic: string) => {
    const route = new TopicRoutes([compileMapping({ type: 'production.completion', partitionKey: '{site}/{line}', ...config } as MqttMappingConfig)]).route(topic);
    assert.ok(route, `no route for ${topic}`);
    return route;
  };

  it('takes the partition from the topic levels, before a payload field of the same name', () => {
    const route = routeOf({ topic: 'plant/{site}/{line}/completion' }, 'plant/s1/l2/completion');
    for (const payload of [{}, { line: 'from-payload' }]) assert.equal(buildDraft(route, payload, ctx).partitionkey, 's1/l2');
  });

  it('takes what the topic does not name from the payload, then the gateway site, and puts - for what is missing', () => {
    const route = routeOf({ topic: 'plant/{line}/completion', partitionKey: '{site}/{line}/{cell}' }, 'plant/l2/completion');
    assert.equal(buildDraft(route, { cell: 'c7' }, ctx).partitionkey, 'gw-site/l2/c7');
    assert.equal(buildDraft(route, { site: 's9', cell: 3 }, ctx).partitionkey, 's9/l2/3');
    assert.equal(buildDraft(route, {}, ctx).partitionkey, 'gw-site/l2/-');
  });

  it('takes the time from its field, normalised, or the time received; refuses a field that is no time', () => {
    const route = routeOf({ topic: 'plant/{site}/{line}/completion', timeField: 'ts', idField: 'eventId', subjectField: 'wo' }, 'plant/s1/l2/completion');
    assert.equal(buildDraft(route, {}, ctx).time, '2026-11-27T08:00:00.000Z');
    const draft = buildDraft(route, { ts: 1_795_000_000_000, eventId: 'e-1', wo: 'WO-7' }, ctx);
    assert.deepEqual([draft.time, draft.id, draft.subject], [new Date(1_795_000_000_000).toISOString(), 'e-1', 'WO-7']);
    assert.throws(() => buildDraft(route, { ts: 'yesterday' }, ctx), (err: unknown) => err instanceof MappingError && /field 'ts' is "yesterday"/.test(err.message));
  });
});
