/**
 * The embedded MQTT broker source (aedes over TCP).
 *
 * aedes holds a PUBLISH's PUBACK until `authorizePublish` calls back, so the
 * order is: payload mapped → committed to LMDB → callback → PUBACK ([MQTT-4.3.2]
 * says nothing about when; we choose after commit). Packets of one socket read
 * are handled in parallel and their commits share one LMDB transaction; the next
 * read waits for them, so a refused commit (buffer full) holds the publisher back
 * through TCP instead of dropping anything. The held message is retried until the
 * buffer accepts it or the client goes away (then it resends on reconnect).
 *
 * Bad input is kept, not refused forever: malformed JSON, an oversized payload or
 * an unmapped topic is committed to the dead letters with its raw bytes and then
 * acknowledged. The broker still routes every message to other subscribers.
 */
// First: it changes how mqtt-packet (loaded by aedes) logs.
import './quiet-debug.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { Aedes, type AedesPublishPacket, type Client } from 'aedes';
import { PlantgateError, describeError, isPlantgateError, type ErrorCode } from '../../errors.js';
import type { CommitItem, CommitOutcome, Source, SourceContext, SourceState, SourceStatus } from '../source.js';
import type { MqttBrokerConfigType } from './config.js';
import { MappingError, TopicRoutes, buildDraft, compileFilter, compileMapping, type CompiledMapping } from './mapping.js';

const HOLD_RETRY_MS = 250;
/** Raw bytes kept of an oversized payload; the rest is counted, not stored. */
const MAX_RAW_KEPT_BYTES = 1024 * 1024;

/** A message between arrival and acknowledgement; `item` until its grouped commit is staged. */
interface Message {
  client: Client | null;
  packet: AedesPublishPacket;
  cb: (err?: Error | null) => void;
  /** Epoch ms of arrival: an event without a time field keeps it when a refused commit is retried. */
  receivedAt: number;
  item: CommitItem | undefined;
}

/** What one message needs: a commit, a dead letter (kept, then acknowledged), or nothing (acknowledged). */
type Prepared =
  | { kind: 'commit'; item: CommitItem }
  | { kind: 'deadLetter'; code: ErrorCode; reason: string; raw: Buffer }
  | { kind: 'skip' };

export class MqttBrokerSource implements Source {
  readonly kind = 'mqttBroker';
  readonly name: string;
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly mappings: CompiledMapping[];
  private readonly routes: TopicRoutes;
  private readonly ignored: ((topic: string) => boolean)[];
  private state: SourceState = 'stopped';
  private stopping = false;
  private lastError: SourceStatus['lastError'];
  /** Messages between arrival and acknowledgement; stop() waits for them. */
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private readonly counters = { received: 0, committed: 0, duplicates: 0, deadLettered: 0, unmapped: 0, heldWhileFull: 0, clients: 0 };
  private address: { host: string; port: number } | undefined;
  /** Messages whose PUBACK is held because the buffer refused them; degraded while any are. */
  private heldNow = 0;
  /** Messages waiting for the next grouped commit (one sink call per event-loop turn). */
  private queue: Message[] = [];

  constructor(
    private readonly config: MqttBrokerConfigType,
    private readonly ctx: SourceContext,
  ) {
    this.name = config.name;
    this.mappings = config.mappings.map(compileMapping);
    this.routes = new TopicRoutes(this.mappings);
    this.ignored = config.ignoreTopics.map(compileFilter);
  }

  async start(): Promise<void> {
    this.state = 'starting';
    this.stopping = false;
    const broker = await Aedes.createBroker({
      authorizePublish: (client: Client | null, packet: AedesPublishPacket, cb: (err?: Error | null) => void) => this.onPublish(client, packet, cb),
      ...(this.config.users.length > 0 ? { authenticate: (_c: Client, user: string | undefined, pass: Buffer | undefined, cb: (err: Error | null, ok: boolean) => void) => cb(null, this.checkUser(user, pass)) } : {}),
    } as never);
    broker.on('client', () => this.counters.clients++);
    broker.on('clientDisconnect', () => this.counters.clients--);
    broker.on('clientError', (client, err) => this.ctx.logger.debug({ clientId: client?.id, err: err.message }, 'mqtt client error'));
    this.broker = broker;
    // Nagle off: with it, QoS 1 throughput drops 5-10x on delayed-ACK stalls (FIELD-NOTES).
    const server = createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      broker.handle(socket);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new PlantgateError('PG_ERR_MQTT_LISTEN', `MQTT broker '${this.name}' cannot listen on ${this.config.host}:${this.config.port}: ${describeError(err)}. Is another broker running there? Change sources.mqttBroker port or stop the other one.`)),
      );
      server.listen(this.config.port, this.config.host, () => resolve());
    });
    const addr = server.address() as { address: string; port: number };
    this.address = { host: addr.address, port: addr.port };
    this.state = 'running';
    this.ctx.logger.info({ host: addr.address, port: addr.port, mappings: this.mappings.length }, 'mqtt broker listening');
  }

  /** The bound address (port 0 in config picks a free one). */
  listening(): { host: string; port: number } | undefined {
    return this.address;
  }

  private checkUser(user: string | undefined, pass: Buffer | undefined): boolean {
    if (user === undefined || pass === undefined) return false;
    return this.config.users.some((u) => u.username === user && safeEqual(Buffer.from(u.password), pass));
  }

  private onPublish(client: Client | null, packet: AedesPublishPacket, cb: (err?: Error | null) => void): void {
    if (this.stopping) return; // never acknowledged: the publisher resends to the next run
    const topic = packet.topic;
    if (topic.startsWith('$SYS') || this.ignored.some((matches) => matches(topic))) return cb(null);
    this.counters.received++;
    this.inFlight++;
    const message: Message = { client, packet, cb, receivedAt: Date.now(), item: undefined };
    let next: Prepared;
    try {
      next = this.prepare(client, packet, message.receivedAt);
    } catch (err) {
      return this.finish(message, err);
    }
    if (next.kind === 'skip') return this.finish(message, undefined);
    if (next.kind === 'deadLetter') {
      const d = next;
      this.untilCommitted(client, () => this.ctx.sink.deadLetter({ code: d.code, reason: d.reason, raw: d.raw, context: { topic, clientId: client?.id, qos: packet.qos, bytes: Buffer.byteLength(packet.payload) } })).then(
        () => {
          this.counters.deadLettered++;
          this.finish(message, undefined);
        },
        (err: unknown) => this.finish(message, err),
      );
      return;
    }
    // The common case costs no promise and no closure of its own: the grouped commit settles it.
    message.item = next.item;
    if (this.queue.push(message) === 1) setImmediate(this.flushQueue);
  }

  /** Acknowledges the message (err undefined), or logs why it is not. */
  private finish(m: Message, err: unknown): void {
    if (--this.inFlight === 0 && this.drained) this.drained();
    if (err === undefined) m.cb(null);
    else this.ctx.logger.error({ err: describeError(err), topic: m.packet.topic, clientId: m.client?.id }, 'mqtt message not acknowledged');
  }

  private committed(m: Message, outcome: CommitOutcome): void {
    if (outcome.duplicate) this.counters.duplicates++;
    else this.counters.committed++;
    this.finish(m, undefined);
  }

  /** Maps one message: the item to commit, a dead letter to keep, or nothing to do. */
  private prepare(client: Client | null, packet: AedesPublishPacket, receivedAt: number): Prepared {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);

    if (payload.length > this.config.maxPayloadBytes) {
      return deadLetter(payload.subarray(0, MAX_RAW_KEPT_BYTES), 'PG_ERR_MQTT_TOO_LARGE', `payload of ${payload.length} bytes exceeds sources.mqttBroker.maxPayloadBytes (${this.config.maxPayloadBytes}); the first ${Math.min(payload.length, MAX_RAW_KEPT_BYTES)} bytes are kept`);
    }
    const route = this.routes.route(packet.topic);
    if (!route) {
      this.counters.unmapped++;
      if (this.config.unmapped === 'ignore') return { kind: 'skip' };
      return deadLetter(payload, 'PG_ERR_MQTT_UNMAPPED', `no mapping in sources.mqttBroker '${this.name}' matches topic '${packet.topic}'; add one to collect it, or list the topic in ignoreTopics`);
    }
    let body: unknown;
    const text = payload.toString('utf8');
    try {
      body = JSON.parse(text);
    } catch (err) {
      return deadLetter(payload, 'PG_ERR_MQTT_PAYLOAD', `payload on '${packet.topic}' is not valid JSON (${(err as Error).message}); fix the publisher`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return deadLetter(payload, 'PG_ERR_MQTT_PAYLOAD', `payload on '${packet.topic}' is JSON but not an object; each message must be one JSON object`);
    }
    let draft;
    try {
      draft = buildDraft(route, body as Record<string, unknown>, { site: this.ctx.site, receivedAt });
    } catch (err) {
      if (!(err instanceof MappingError)) throw err;
      return deadLetter(payload, 'PG_ERR_MQTT_MAPPING', `message on '${packet.topic}' does not fit mapping '${route.mapping.config.topic}': ${err.message}`);
    }
    // Packet ids wrap at 65,535: only a DUP resend of the same client, packet id and payload is a duplicate.
    const transport =
      draft.id === undefined && packet.qos > 0 && client
        ? { key: `${client.id}:${packet.messageId}`, hash: createHash('sha1').update(packet.topic).update(payload).digest('base64'), resend: packet.dup === true }
        : undefined;
    // The payload is the event's data: its text is stored as received, not encoded again.
    return { kind: 'commit', item: transport ? { draft, dataJson: text, transport } : { draft, dataJson: text } };
  }

  /**
   * Commits the messages of this event-loop turn in one sink call: one envelope
   * pass, one capacity check and one promise chain for all of them instead of one
   * each. Each message still settles on its own outcome. Their items are let go
   * once staged: held across the flush, every parsed payload would outlive a young
   * collection; a refused message is mapped again from its packet (aedes keeps it
   * until the PUBACK).
   */
  private readonly flushQueue = (): void => {
    const group = this.queue;
    this.queue = [];
    const items: CommitItem[] = [];
    for (const m of group) {
      items.push(m.item!);
      m.item = undefined;
    }
    this.ctx.sink.commit(items).then(
      (outcomes) => corked(group, () => group.forEach((m, i) => this.committed(m, outcomes[i]!))),
      (err: unknown) => group.forEach((m) => this.retry(m, err)),
    );
  };

  /**
   * Retries a refused message alone: a refused group would otherwise come back whole and
   * never fit the room left. Its item, let go when the group was staged, is mapped again
   * once and kept while the message is held.
   */
  private retry(m: Message, refused: unknown): void {
    let again: Prepared;
    try {
      again = this.prepare(m.client, m.packet, m.receivedAt);
    } catch (err) {
      return this.finish(m, err);
    }
    // The same packet through the same mappings: only a commit can come out again.
    if (again.kind !== 'commit') return this.finish(m, new Error(`message on '${m.packet.topic}' mapped to ${again.kind} on retry`));
    const item = again.item;
    this.untilCommitted(m.client, () => this.ctx.sink.commit([item]).then((o) => o[0]!), refused).then(
      (outcome) => this.committed(m, outcome),
      (err: unknown) => this.finish(m, err),
    );
  }

  /**
   * Retries a refused commit while the client is still connected; the PUBACK
   * waits. Rejects (never acknowledging) when the client left or the source stops.
   * `refused` is the error of a first attempt already made (the grouped commit).
   */
  private async untilCommitted<T>(client: Client | null, attempt: () => Promise<T>, refused?: unknown): Promise<T> {
    let held = false;
    let failure = refused;
    try {
      for (;;) {
        if (failure === undefined) {
          try {
            return await attempt();
          } catch (err) {
            failure = err;
          }
        }
        const err = failure;
        failure = undefined;
        if (!isPlantgateError(err) || !['PG_ERR_BUFFER_FULL', 'PG_ERR_BUFFER_COMMIT'].includes(err.code)) throw err;
        if (!held) {
          held = true;
          this.counters.heldWhileFull++;
          if (this.heldNow++ === 0) this.setState('degraded');
          this.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
        }
        if (this.stopping || (client !== null && (client as unknown as { closed?: boolean }).closed)) throw err;
        await new Promise((r) => setTimeout(r, HOLD_RETRY_MS));
        if (this.stopping) throw err;
      }
    } finally {
      if (held && --this.heldNow === 0) this.setState('running');
    }
  }

  private setState(s: SourceState): void {
    if (this.state !== 'stopped') this.state = s;
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' && !this.broker) return;
    this.stopping = true;
    // close() resolves only once every connection has ended, so stop accepting first and end them below.
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.drained = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.broker ? this.broker.close(() => resolve()) : resolve()));
    await closed;
    this.broker = undefined;
    this.server = undefined;
    this.state = 'stopped';
    this.ctx.logger.info('mqtt broker stopped');
  }

  status(): SourceStatus {
    return {
      name: this.name,
      kind: this.kind,
      state: this.state,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      counters: { ...this.counters },
      details: { listening: this.address, mappings: this.mappings.map((m) => ({ topic: m.config.topic, type: m.config.type })) },
    };
  }
}

/**
 * Runs `settle` with the group's connections corked: aedes writes each PUBACK as the
 * message's callback runs, so a group's PUBACKs leave in one write per connection
 * instead of one system call (and one wake-up of the publisher) each.
 */
function corked(group: readonly Message[], settle: () => void): void {
  const conns = new Set<Writable>();
  for (const { client } of group) {
    const conn = client?.conn;
    if (!conn || conns.has(conn)) continue;
    conns.add(conn);
    conn.cork();
  }
  try {
    settle();
  } finally {
    for (const c of conns) c.uncork();
  }
}

function deadLetter(raw: Buffer, code: ErrorCode, reason: string): Prepared {
  return { kind: 'deadLetter', code, reason, raw };
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
