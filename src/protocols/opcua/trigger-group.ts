/**
 * Trigger groups (Ignition: transaction groups): the PLC raises a trigger, we read
 * the group's nodes in ONE Read, commit one Event, and only after the commit
 * resolved write the handshake. The PLC holds the trigger until it sees the
 * handshake, so nothing is lost while we or the network are down.
 *
 * Each cycle re-reads the trigger and handshake together with the fields, so a
 * notification is only a hint to look: state decides. That makes every step safe
 * to repeat — after a reconnect (initial values), after a crash (the trigger is
 * still raised, the event id is the same, the buffer answers `duplicate`, we just
 * write the handshake), after a failed write (retried).
 *
 *  risingEdge: trigger true  & handshake ≠ value → commit, write handshake value (default true)
 *              trigger false & handshake ≠ resetValue → write resetValue (when configured)
 *  counter:    trigger ≠ handshake (echo mode) → commit, write the trigger value
 */
import { AttributeIds, ClientMonitoredItem, TimestampsToReturn, Variant, type ClientSession, type ClientSubscription, type DataValue } from 'node-opcua';
import type { Logger } from 'pino';
import { PlantgateError, describeError } from '../../errors.js';
import type { IngestSink } from '../source.js';
import type { HandshakeValue, OpcuaConfigType, OpcuaTriggerGroupConfig } from './config.js';
import { observationKey, qualityOf, render, stableId, valueData, type TemplateContext } from './event-build.js';
import { commitUntilAccepted, sleepUnless } from './retry.js';

export interface TriggerCounters {
  triggers: number;
  events: number;
  duplicates: number;
  handshakes: number;
  handshakeErrors: number;
  failureHandshakes: number;
  refusals: number;
  readErrors: number;
}

/** NodeIds resolved for one session: trigger, handshake, optional failure node, then the fields in order. */
export interface ResolvedGroup {
  trigger: string;
  handshake: string;
  failure?: string;
  fields: [name: string, nodeId: string][];
}

const RECHECK_AFTER_ERROR_MS = 1000;

export class TriggerGroup {
  readonly counters: TriggerCounters = { triggers: 0, events: 0, duplicates: 0, handshakes: 0, handshakeErrors: 0, failureHandshakes: 0, refusals: 0, readErrors: 0 };
  private session?: ClientSession;
  private nodes?: ResolvedGroup;
  private item?: ClientMonitoredItem;
  private stopping = false;
  private dirty = false;
  private running?: Promise<void>;
  private failureWrittenFor?: string;
  private recheck?: NodeJS.Timeout;

  constructor(
    private readonly group: OpcuaTriggerGroupConfig,
    private readonly cfg: OpcuaConfigType,
    private readonly sink: IngestSink,
    private readonly tpl: TemplateContext,
    private readonly serverKey: string,
    private readonly logger: Logger,
    private readonly onError: (err: PlantgateError) => void,
    /** Every refusal of the group's event by the buffer (status shows it as the last error; the log gets every 20th). */
    private readonly onRefused: (err: unknown) => void = () => undefined,
  ) {}

  get name(): string {
    return this.group.name;
  }

  /** Watches the trigger on a fresh subscription; its initial value starts a first check. */
  async attach(session: ClientSession, subscription: ClientSubscription, nodes: ResolvedGroup): Promise<void> {
    this.session = session;
    this.nodes = nodes;
    const item = ClientMonitoredItem.create(
      subscription,
      { nodeId: nodes.trigger, attributeId: AttributeIds.Value },
      { samplingInterval: this.group.trigger.samplingIntervalMs, queueSize: 10, discardOldest: true },
      TimestampsToReturn.Both,
    );
    item.on('changed', () => this.kick());
    await new Promise<void>((resolve, reject) => {
      item.once('initialized', () => resolve());
      item.once('err', (message: string) => reject(new PlantgateError('PG_ERR_OPCUA_NODE', `trigger group ${this.group.name}: cannot monitor trigger ${nodes.trigger}: ${message}`)));
    });
    this.item = item;
    // Safety net: a notification can be missed (a change within the first sampling
    // interval of a new monitored item is not always reported, and a trigger that went
    // true→false unseen looks unchanged). A cheap periodic look makes that a delay, not a stuck PLC.
    clearInterval(this.recheck);
    this.recheck = setInterval(() => this.kick(), this.group.trigger.recheckIntervalMs);
    this.recheck.unref();
  }

  detach(): void {
    clearInterval(this.recheck);
    this.item?.removeAllListeners();
    this.item = undefined;
    this.session = undefined;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.detach();
    await this.running;
  }

  /** Asks for a check; at most one cycle runs at a time and a request during a cycle runs one more. */
  kick(): void {
    this.dirty = true;
    if (this.running || this.stopping) return;
    this.running = (async () => {
      while (this.dirty && !this.stopping && this.session) {
        this.dirty = false;
        const ok = await this.cycle(this.session, this.nodes!).catch((err: unknown) => {
          this.onError(err instanceof PlantgateError ? err : new PlantgateError('PG_ERR_OPCUA_HANDSHAKE', `trigger group ${this.group.name}: ${describeError(err)}`));
          return false;
        });
        if (!ok && !this.stopping && this.session) {
          // Something failed on a live session (write refused, read error): look again shortly.
          await sleepUnless(RECHECK_AFTER_ERROR_MS, () => this.stopping);
          this.dirty = true;
        }
      }
    })().finally(() => (this.running = undefined));
  }

  /** One look at the PLC's state and what it asks for. Returns false when a step failed and should be retried. */
  private async cycle(session: ClientSession, nodes: ResolvedGroup): Promise<boolean> {
    const ids = [nodes.trigger, nodes.handshake, ...nodes.fields.map(([, id]) => id)];
    let values: DataValue[];
    try {
      values = await session.read(ids.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
    } catch (err) {
      this.counters.readErrors++;
      throw new PlantgateError('PG_ERR_OPCUA_NODE', `trigger group ${this.group.name}: read failed: ${describeError(err)}`);
    }
    const [trig, hs] = values as [DataValue, DataValue];
    if (!trig.statusCode.isGood()) {
      this.counters.readErrors++;
      throw new PlantgateError('PG_ERR_OPCUA_NODE', `trigger group ${this.group.name}: trigger ${nodes.trigger} reads ${trig.statusCode.name}`);
    }
    const tv = trig.value.value as unknown;
    const hv = hs.value?.value as unknown;
    const ack = this.handshakeValue(tv);
    if (this.group.trigger.mode === 'risingEdge' && tv !== true) {
      const reset = this.group.handshake.resetValue;
      if (reset === undefined || hv === reset) return true;
      return this.write(session, nodes.handshake, reset, hs, 'reset');
    }
    if (hv === ack) return true; // acknowledged earlier; the PLC has not moved on yet
    if (this.group.trigger.mode === 'counter' && this.group.handshake.value === undefined && Number(tv) === Number(hv)) return true;

    this.counters.triggers++;
    const triggerKey = this.group.idFrom === 'value' ? `v:${String(tv)}` : (observationKey(trig) ?? `v:${String(tv)}`);
    const id = stableId(this.serverKey, 'group', this.group.name, triggerKey);
    const fields: Record<string, unknown> = {};
    const details: Record<string, unknown> = {};
    let worst = 0;
    nodes.fields.forEach(([name, nodeId], i) => {
      const d = { ...valueData(values[i + 2]!), nodeId };
      fields[name] = d.value;
      details[name] = d;
      worst = Math.max(worst, d.statusCodeValue >>> 30);
    });
    const trigger = { ...valueData(trig), nodeId: nodes.trigger };
    const scope = { ...fields, group: this.group.name };
    const draft = {
      id,
      type: this.group.type,
      time: trigger.sourceTimestamp ?? trigger.serverTimestamp ?? new Date().toISOString(),
      ...(this.group.subject ? { subject: render(this.group.subject, scope, this.tpl) } : {}),
      partitionkey: render(this.cfg.partitionKey, scope, this.tpl),
      data: { group: this.group.name, ...fields, quality: qualityOf(worst << 30), trigger, fields: details },
    };
    const outcomes = await commitUntilAccepted(this.sink, [{ draft }], {
      stopped: () => this.stopping,
      maxDelayMs: this.cfg.commitRetryMaxDelayMs,
      onRefused: (err) => {
        this.counters.refusals++;
        this.onRefused(err);
        if (this.counters.refusals % 20 === 1) this.logger.warn({ group: this.group.name, err: describeError(err) }, 'buffer refuses the trigger group event; handshake held, retrying');
        void this.writeFailure(session, nodes, id);
      },
    });
    if (!outcomes) return true; // stopping: the PLC keeps the trigger raised for the next run
    if (outcomes[0]?.duplicate) this.counters.duplicates++;
    else this.counters.events++;
    return this.write(session, nodes.handshake, ack, hs, 'handshake');
  }

  private handshakeValue(triggerValue: unknown): HandshakeValue {
    const v = this.group.handshake.value;
    if (v !== undefined) return v;
    return this.group.trigger.mode === 'risingEdge' ? true : (triggerValue as HandshakeValue);
  }

  /** Writes with the node's own data type (taken from the value just read), so Int16 stays Int16. */
  private async write(session: ClientSession, nodeId: string, value: HandshakeValue, current: DataValue, what: string): Promise<boolean> {
    const dataType = current.value?.dataType;
    try {
      const status = await session.write({ nodeId, attributeId: AttributeIds.Value, value: { value: new Variant({ dataType, value }) } });
      if (status.isGood()) {
        if (what === 'handshake') this.counters.handshakes++;
        return true;
      }
      throw new Error(status.name);
    } catch (err) {
      this.counters.handshakeErrors++;
      this.onError(new PlantgateError('PG_ERR_OPCUA_HANDSHAKE', `trigger group ${this.group.name}: writing the ${what} to ${nodeId} failed: ${describeError(err)}; will retry (the PLC keeps its trigger raised)`));
      return false;
    }
  }

  /** The optional failure handshake, once per trigger: tells the PLC its record is not stored yet. */
  private async writeFailure(session: ClientSession, nodes: ResolvedGroup, id: string): Promise<void> {
    if (!nodes.failure || this.failureWrittenFor === id) return;
    this.failureWrittenFor = id;
    const [current] = await session.read([{ nodeId: nodes.failure, attributeId: AttributeIds.Value }]).catch(() => [undefined]);
    if (!current) return;
    if (await this.write(session, nodes.failure, this.group.handshake.failureValue, current, 'failure handshake')) this.counters.failureHandshakes++;
  }
}
