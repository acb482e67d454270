/** Config of the embedded MQTT broker source (aedes). See README.md in this folder. */
import { Type, type Static } from '@sinclair/typebox';
import { ConnectorName, Int, strict } from '../../config/common.js';

export const MqttMapping = Type.Object(
  {
    topic: Type.String({
      minLength: 1,
      description: "Topic filter; '+' and '#' as in MQTT, or a named level '{site}' that captures it for templates",
    }),
    type: Type.String({ minLength: 1, description: 'Event type, e.g. production.completion' }),
    partitionKey: Type.String({ default: '{site}/{line}', description: 'Template over named topic levels, payload fields and gateway site' }),
    idField: Type.Optional(Type.String({ minLength: 1, description: "Payload field (dotted path) holding the event's own id, e.g. eventId" })),
    subjectField: Type.Optional(Type.String({ minLength: 1, description: 'Payload field holding the business key (work order, lot, ...)' })),
    subject: Type.Optional(Type.String({ minLength: 1, description: 'Template for the subject when no single field holds it' })),
    timeField: Type.Optional(Type.String({ minLength: 1, description: 'Payload field holding the source timestamp (ISO 8601 or epoch ms)' })),
    correlationField: Type.Optional(Type.String({ minLength: 1, description: 'Payload field carrying a correlation id' })),
  },
  strict,
);

export const MqttBrokerConfig = Type.Object(
  {
    name: ConnectorName,
    host: Type.String({ default: '127.0.0.1', description: 'Listen address; 0.0.0.0 to accept PLCs on the plant network' }),
    port: Type.Integer({ default: 1883, minimum: 0, maximum: 65535 }),
    maxPayloadBytes: Int(256 * 1024, 16, 'Larger payloads are dead-lettered (kept, not mapped)'),
    unmapped: Type.Union([Type.Literal('deadLetter'), Type.Literal('ignore')], {
      default: 'deadLetter',
      description: 'Messages on topics no mapping matches: deadLetter keeps them for a technician; ignore only counts them',
    }),
    ignoreTopics: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Topic filters that are plain broker traffic between other clients: routed, never stored or counted as unmapped',
    }),
    users: Type.Array(Type.Object({ username: Type.String({ minLength: 1 }), password: Type.String({ minLength: 1 }) }, strict), {
      default: [],
      description: 'When set, clients must authenticate with one of these (use ${env:} or ${file:} for passwords)',
    }),
    mappings: Type.Array(MqttMapping, { default: [] }),
  },
  strict,
);

export type MqttMappingConfig = Static<typeof MqttMapping>;
export type MqttBrokerConfigType = Static<typeof MqttBrokerConfig>;
