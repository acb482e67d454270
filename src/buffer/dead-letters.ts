/**
 * Dead letters: what could not become an event (malformed payload, unmapped topic,
 * oversized message) or what the ERP refused, kept with the reason until a
 * technician replays or deletes it. Keys are gateway sequences, so they list in
 * the order things went wrong. Replaying an ERP-refused event commits it again
 * under a new sequence (same event id) in the same transaction that removes it here.
 */
import type { Database, RootDatabase } from 'lmdb';
import type { Logger } from 'pino';
import { PlantgateError } from '../errors.js';
import type { DeadLetterInput } from '../protocols/source.js';
import { tableStats } from './layout.js';
import type { DeadLetter } from './types.js';

export interface DeadLetterHooks {
  nextSequence(): number;
  /** Puts a replayed event into the journal (called inside a transaction). */
  appended(partition: string, json: string, seq: number): void;
  /** The replay transaction committed: the uplink may read the event now. */
  committed(partition: string): void;
  /** The replay transaction ended, committed or not, after `appended`. */
  ended(partition: string, seq: number): void;
  logger: Logger;
}

interface RejectedInput {
  code: string;
  reason: string;
  partition: string;
  event: Record<string, unknown>;
}

export class DeadLetters {
  constructor(
    private readonly env: RootDatabase,
    readonly table: Database<DeadLetter, number>,
    private readonly hooks: DeadLetterHooks,
  ) {}

  /** Commits a dead letter from a source; resolves once it is durable. */
  async add(connector: string, input: DeadLetterInput): Promise<DeadLetter> {
    const dlid = this.hooks.nextSequence();
    const entry: DeadLetter = {
      dlid,
      at: new Date().toISOString(),
      connector,
      code: input.code,
      reason: input.reason,
      ...(input.raw !== undefined ? { raw: Buffer.isBuffer(input.raw) ? input.raw.toString('base64') : Buffer.from(input.raw).toString('base64') } : {}),
      ...(input.context ? { context: input.context } : {}),
    };
    await this.table.put(dlid, entry);
    this.hooks.logger.warn({ code: input.code, dlid, connector, reason: input.reason, context: input.context }, 'dead-lettered');
    return entry;
  }

  /** Records an ERP-refused event, in the settle's transaction (a write issued in the same event-loop turn). */
  putRejected(connector: string, input: RejectedInput): Promise<boolean> {
    const dlid = this.hooks.nextSequence();
    const written = this.table.put(dlid, { dlid, at: new Date().toISOString(), connector, code: input.code, reason: input.reason, partition: input.partition, event: input.event });
    this.hooks.logger.warn({ code: input.code, dlid, eventId: input.event['id'], partition: input.partition, reason: input.reason }, 'event refused by the ERP: dead-lettered');
    return written;
  }

  list(opts: { limit?: number; afterDlid?: number } = {}): DeadLetter[] {
    const out: DeadLetter[] = [];
    for (const { value } of this.table.getRange({ start: (opts.afterDlid ?? 0) + 1, limit: opts.limit ?? 100 })) out.push(value);
    return out;
  }

  get(dlid: number): DeadLetter | undefined {
    return this.table.get(dlid);
  }

  count(): number {
    return tableStats(this.table).entryCount;
  }

  lastId(): number {
    for (const key of this.table.getKeys({ reverse: true, limit: 1 })) return key;
    return 0;
  }

  /** Sends a refused event again: a new sequence, the same id. Raw payloads cannot be replayed. */
  async replay(dlid: number): Promise<{ sequence: number; partition: string }> {
    const entry = this.require(dlid);
    if (!entry.event || !entry.partition) {
      throw new PlantgateError('PG_ERR_DLQ_NOT_REPLAYABLE', `dead letter ${dlid} holds raw bytes (${entry.code}), not an event; fix the publisher or the mapping, then delete it`);
    }
    const partition = entry.partition;
    let sequence = 0;
    try {
      await this.env.transaction(() => {
        sequence = this.hooks.nextSequence();
        const event = { ...entry.event, sequence: String(sequence) };
        this.hooks.appended(partition, JSON.stringify(event), sequence);
        this.table.remove(dlid);
      });
    } finally {
      if (sequence > 0) this.hooks.ended(partition, sequence);
    }
    this.hooks.committed(partition);
    this.hooks.logger.info({ dlid, sequence, partition }, 'dead letter replayed');
    return { sequence, partition };
  }

  async remove(dlid: number): Promise<void> {
    this.require(dlid);
    await this.table.remove(dlid);
  }

  private require(dlid: number): DeadLetter {
    const entry = this.table.get(dlid);
    if (!entry) throw new PlantgateError('PG_ERR_DLQ_NOT_FOUND', `no dead letter ${dlid}; list them with 'plantgate dlq list'`);
    return entry;
  }
}
