/**
 * Config of one OPC UA connector = one server (`sources.opcua: [ ... ]`).
 * See README.md in this folder for a commented example and the trust workflow.
 */
import { Type, type Static } from '@sinclair/typebox';
import { ConnectorName, Int, strict } from '../../config/common.js';

/** Where a node is: a NodeId string (`ns=2;s=Press.Count`) or a browse path from the Root folder. */
const NodeRef = Type.Object(
  {
    nodeId: Type.Optional(Type.String({ minLength: 1, description: "NodeId, e.g. 'ns=2;s=Line1.Press.PartCount'" })),
    browsePath: Type.Optional(
      Type.String({ minLength: 1, description: "Browse path from the Root folder, e.g. '/Objects/2:Line1/2:Press/2:PartCount'" }),
    ),
  },
  strict,
);

const Deadband = Type.Object(
  {
    type: Type.Union([Type.Literal('absolute'), Type.Literal('percent')], { description: 'percent needs an EURange on the node' }),
    value: Type.Number({ minimum: 0 }),
  },
  strict,
);

export const OpcuaItem = Type.Object(
  {
    ...NodeRef.properties,
    name: Type.Optional(Type.String({ minLength: 1, description: 'Short name carried in data.name and usable as {name} in templates' })),
    type: Type.String({ default: 'machine.state', minLength: 1, description: 'Event type of each data change' }),
    subject: Type.Optional(Type.String({ minLength: 1, description: 'Subject template; {name}, {nodeId}, {site}, {line}' })),
    samplingIntervalMs: Int(250, 0, 'How often the server samples the value (0 = as fast as it can)'),
    queueSize: Int(10, 1, 'Changes the server keeps between publishes'),
    deadband: Type.Optional(Deadband),
  },
  strict,
);

export const OpcuaTriggerGroup = Type.Object(
  {
    name: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'Group name; part of every event id of the group' }),
    type: Type.String({ default: 'production.completion', minLength: 1 }),
    subject: Type.Optional(Type.String({ minLength: 1, description: "Subject template over the group's fields, e.g. '{workOrder}'" })),
    trigger: Type.Object(
      {
        ...NodeRef.properties,
        mode: Type.Union([Type.Literal('risingEdge'), Type.Literal('counter')], {
          default: 'risingEdge',
          description: 'risingEdge: a boolean the PLC raises; counter: a number the PLC increments',
        }),
        samplingIntervalMs: Int(100, 0, 'How often the server samples the trigger'),
        recheckIntervalMs: Int(1000, 50, 'Besides notifications, how often the trigger and handshake are read (safety net for a missed notification)'),
      },
      strict,
    ),
    handshake: Type.Object(
      {
        ...NodeRef.properties,
        value: Type.Optional(Type.Union([Type.Boolean(), Type.Number(), Type.String()], { description: "Written after commit; omitted: the trigger's value is echoed" })),
        resetValue: Type.Optional(
          Type.Union([Type.Boolean(), Type.Number(), Type.String()], { description: 'risingEdge: written when the PLC drops the trigger (e.g. false)' }),
        ),
        failureNodeId: Type.Optional(Type.String({ minLength: 1, description: 'Written with failureValue when the event cannot be committed' })),
        failureValue: Type.Union([Type.Boolean(), Type.Number(), Type.String()], { default: true }),
      },
      strict,
    ),
    idFrom: Type.Union([Type.Literal('sourceTimestamp'), Type.Literal('value')], {
      default: 'sourceTimestamp',
      description: "What identifies one trigger: the trigger's source timestamp (survives counter resets) or its value (counter mode only)",
    }),
    fields: Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ minLength: 1 }), {
      default: {},
      description: 'Field name → NodeId (or browse path starting with /) read in one Read on each trigger',
    }),
  },
  strict,
);

export const OpcuaUser = Type.Union([
  Type.Object({ type: Type.Literal('anonymous') }, strict),
  Type.Object(
    { type: Type.Literal('username'), username: Type.String({ minLength: 1 }), password: Type.String({ description: 'Use a ${env:} or ${file:} reference' }) },
    strict,
  ),
  Type.Object(
    {
      type: Type.Literal('certificate'),
      certificateFile: Type.String({ minLength: 1, description: 'User certificate (PEM or DER)' }),
      privateKeyFile: Type.String({ minLength: 1, description: 'Its private key (PEM)' }),
    },
    strict,
  ),
]);

export const OpcuaConfig = Type.Object(
  {
    name: ConnectorName,
    endpointUrl: Type.String({ pattern: '^opc\\.tcp://', description: 'e.g. opc.tcp://10.1.2.3:4840' }),
    securityMode: Type.Union([Type.Literal('None'), Type.Literal('Sign'), Type.Literal('SignAndEncrypt')], { default: 'SignAndEncrypt' }),
    securityPolicy: Type.Union(
      [Type.Literal('None'), Type.Literal('Basic256Sha256'), Type.Literal('Aes128_Sha256_RsaOaep'), Type.Literal('Aes256_Sha256_RsaPss')],
      { default: 'Basic256Sha256' },
    ),
    user: Type.Optional(OpcuaUser),
    line: Type.Optional(Type.String({ minLength: 1, description: 'Line name for {line} in templates; default: the connector name' })),
    partitionKey: Type.String({ default: '{site}/{line}', description: 'Partition key template ({site}, {line}, {name}, group fields)' }),
    publishingIntervalMs: Int(250, 10, 'How often the server sends the changes it collected'),
    sessionTimeoutMs: Int(60_000, 1000, 'Session timeout requested from the server'),
    keepAliveIntervalMs: Int(5000, 500, 'A session without any answer for about twice this long is considered lost'),
    requestTimeoutMs: Int(10_000, 500, 'Timeout of each OPC UA request'),
    reconnectMinDelayMs: Int(500, 10, 'First reconnect delay'),
    reconnectMaxDelayMs: Int(30_000, 100, 'Cap on the reconnect delay'),
    commitRetryMaxDelayMs: Int(2000, 10, 'Cap on the delay between commit retries while the buffer refuses'),
    maxPendingChanges: Int(200_000, 1000, 'Data changes held in memory while the buffer refuses; beyond this they are counted as dropped'),
    items: Type.Array(OpcuaItem, { default: [] }),
    triggerGroups: Type.Array(OpcuaTriggerGroup, { default: [] }),
  },
  strict,
);

export type OpcuaConfigType = Static<typeof OpcuaConfig>;
export type OpcuaItemConfig = Static<typeof OpcuaItem>;
export type OpcuaTriggerGroupConfig = Static<typeof OpcuaTriggerGroup>;
export type OpcuaUserConfig = Static<typeof OpcuaUser>;
export type HandshakeValue = boolean | number | string;
