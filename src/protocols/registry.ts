/**
 * Source kinds: one line each. The schema is imported eagerly (config checks need
 * it); the implementation lazily, so `check-config` does not load protocol stacks.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type { Source, SourceContext } from './source.js';
import { MqttBrokerConfig } from './mqtt-broker/config.js';
import { FiledropConfig } from './filedrop/config.js';
import { OpcuaConfig } from './opcua/config.js';

export interface SourceModule<C> {
  createSource(config: C, ctx: SourceContext): Source;
}

function kind<S extends TSchema>(schema: S, load: () => Promise<SourceModule<Static<S>>>) {
  return { schema, load };
}

export const sourceKinds = {
  mqttBroker: kind(MqttBrokerConfig, () => import('./mqtt-broker/index.js')),
  filedrop: kind(FiledropConfig, () => import('./filedrop/index.js')),
  opcua: kind(OpcuaConfig, () => import('./opcua/index.js')),
};

export type SourceKindName = keyof typeof sourceKinds;
