import type { Source, SourceContext } from '../source.js';
import { MqttBrokerSource } from './broker.js';
import type { MqttBrokerConfigType } from './config.js';

export function createSource(config: MqttBrokerConfigType, ctx: SourceContext): Source {
  return new MqttBrokerSource(config, ctx);
}
