/**
 * Monitored items → one Event per data change, committed in batches.
 *
 * Changes arrive in bursts (one publish response carries many); they are queued
 * and committed by a single flusher, so at most one commit is in flight and order
 * is kept. While the buffer refuses, the queue holds up to maxPendingChanges; a
 * change beyond that is counted as dropped and logged (OPC UA has no way to ask
 * the server to hold data changes for us), never silently lost.
 */
import {
  ClientMonitoredItemGroup,
  DataChangeFilter,
  DataChangeTrigger,
  DeadbandType,
  TimestampsToReturn,
  AttributeIds,
  type ClientSubscription,
  type DataValue,
} from 'node-opcua';
import type { Logger } from 'pino';
import type { CommitItem, CommitOutcome, IngestSink } from '../source.js';
import type { OpcuaConfigType, OpcuaItemConfig } from './config.js';
import { observationKey, render, stableId, valueData, type TemplateContext } from './event-build.js';
import { commitUntilAccepted } from './retry.js';

export interface DataChangeCounters {
  changes: number;
  committed: number;
  duplicates: number;
  badQuality: number;
  dropped: number;
  refusals: number;
}

const MAX_BATCH = 5000;
const PIPELINE_DEPTH = 4;
/** Items per CreateMonitoredItems call: PLC servers commonly cap it (OperationLimits.MaxMonitoredItemsPerCall) near 1000. */
const ITEMS_PER_CALL = 1000;

interface ItemPlan {
  idPrefix: string;
  /** Rendered once when the template names only per-item values. */
  partition: string | undefined;
  subject: string | undefined;
}

const PER_ITEM = new Set(['site', 'line', 'connector', 'name', 'nodeId']);
function perItemOnly(template: string): boolean {
  return [...template.matchAll(/\{([A-Za-z0-9_.-]+)\}/g)].every((m) => PER_ITEM.has(m[1]!));
}

export class DataChangeIngest {
  readonly counters: DataChangeCounters = { changes: 0, committed: 0, duplicates: 0, badQuality: 0, dropped: 0, refusals: 0 };
  private queue: CommitItem[] = [];
  private flushing?: Promise<void>;
  private stopping = false;
  private groups: ClientMonitoredItemGroup[] = [];
  private readonly plans = new Map<string, ItemPlan>();

  constructor(
    private readonly cfg: OpcuaConfigType,
    private readonly sink: IngestSink,
    private readonly tpl: TemplateContext,
    private readonly serverKey: string,
    private readonly logger: Logger,
    private readonly onRefused: (err: unknown) => void,
  ) {}

  /** Creates the monitored items on a fresh subscription; items with equal parameters share one group. */
  async attach(subscription: ClientSubscription, resolved: { item: OpcuaItemConfig; nodeId: string }[]): Promise<void> {
    this.groups = [];
    const byParams = new Map<string, { item: OpcuaItemConfig; nodeId: string }[]>();
    for (const r of resolved) {
      const key = JSON.stringify([r.item.samplingIntervalMs, r.item.queueSize, r.item.deadband ?? null]);
      byParams.set(key, [...(byParams.get(key) ?? []), r]);
    }
    const chunks = [...byParams.values()].flatMap((m) => Array.from({ length: Math.ceil(m.length / ITEMS_PER_CALL) }, (_, i) => m.slice(i * ITEMS_PER_CALL, (i + 1) * ITEMS_PER_CALL)));
    for (const members of chunks) {
      const first = members[0]!.item;
      const group = ClientMonitoredItemGroup.create(
        subscription,
        members.map((m) => ({ nodeId: m.nodeId, attributeId: AttributeIds.Value })),
        {
          samplingInterval: first.samplingIntervalMs,
          queueSize: first.queueSize,
          discardOldest: true,
          ...(first.deadband
            ? {
                filter: new DataChangeFilter({
                  trigger: DataChangeTrigger.StatusValue,
                  deadbandType: first.deadband.type === 'percent' ? DeadbandType.Percent : DeadbandType.Absolute,
                  deadbandValue: first.deadband.value,
                }),
              }
            : {}),
        },
        TimestampsToReturn.Both,
      );
      group.on('changed', (_mi, dv, index) => {
        const m = members[index];
        if (m) this.onChange(m.item, m.nodeId, dv);
      });
      group.on('err', (message) => this.logger.warn({ message }, 'OPC UA monitored item group error'));
      await new Promise<void>((resolve, reject) => {
        group.once('initialized', () => resolve());
        group.once('terminated', (err) => reject(err ?? new Error('monitored item group terminated')));
      });
      this.groups.push(group);
    }
  }

  /** Forgets the items of a lost session (they died with it). */
  detach(): void {
    for (const g of this.groups) g.removeAllListeners();
    this.groups = [];
  }

  /**
   * The hot path (tens of thousands of calls per second): templates that name only
   * per-item values are rendered once per item, and the id is a per-item hash
   * prefix plus the observation key instead of a hash per change.
   */
  private plan(item: OpcuaItemConfig, nodeId: string): ItemPlan {
    let p = this.plans.get(nodeId);
    if (!p) {
      const scope = { name: item.name ?? nodeId, nodeId };
      const fixed = (t: string | undefined) => (t !== undefined && perItemOnly(t) ? render(t, scope, this.tpl) : undefined);
      p = { idPrefix: stableId(this.serverKey, nodeId).slice(0, 20), partition: fixed(this.cfg.partitionKey), subject: fixed(item.subject) };
      this.plans.set(nodeId, p);
    }
    return p;
  }

  private onChange(item: OpcuaItemConfig, nodeId: string, dv: DataValue): void {
    if (this.stopping) return;
    this.counters.changes++;
    if (this.queue.length >= this.cfg.maxPendingChanges) {
      this.counters.dropped++;
      if (this.counters.dropped % 1000 === 1) {
        this.logger.warn({ dropped: this.counters.dropped, pending: this.queue.length }, 'buffer refuses commits and the OPC UA change queue is full: data changes are dropped (counted)');
      }
      return;
    }
    const plan = this.plan(item, nodeId);
    const data: Record<string, unknown> = valueData(dv) as unknown as Record<string, unknown>;
    data['nodeId'] = nodeId;
    if (item.name) data['name'] = item.name;
    if (data['quality'] !== 'good') this.counters.badQuality++;
    const key = observationKey(dv);
    const scope = plan.partition === undefined || (item.subject && plan.subject === undefined) ? { ...data, name: item.name ?? nodeId } : undefined;
    const draft: CommitItem['draft'] = {
      type: item.type,
      time: (data['sourceTimestamp'] ?? data['serverTimestamp'] ?? new Date().toISOString()) as string,
      partitionkey: plan.partition ?? render(this.cfg.partitionKey, scope!, this.tpl),
      data,
    };
    if (key) draft.id = `${plan.idPrefix}-${key}`;
    if (item.subject) draft.subject = plan.subject ?? render(item.subject, scope!, this.tpl);
    this.queue.push({ draft });
    if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = undefined));
  }

  /**
   * Up to PIPELINE_DEPTH commits in flight while the buffer accepts: the buffer
   * assigns sequences when commit is called, so the journal keeps arrival order,
   * and LMDB merges the concurrent commits into fewer disk flushes. Once a commit
   * is refused, the flusher waits for the others and goes one batch at a time,
   * retrying with backoff. Batches issued together are refused together (the
   * buffer refuses the rest of a turn after a refusal), so order holds.
   */
  private async flush(): Promise<void> {
    // Let the rest of the publish response's notifications join this batch.
    await new Promise((r) => setImmediate(r));
    const inflight: { batch: CommitItem[]; result: Promise<CommitOutcome[] | Error> }[] = [];
    while ((this.queue.length > 0 || inflight.length > 0) && !this.stopping) {
      while (inflight.length < PIPELINE_DEPTH && this.queue.length > 0 && this.sink.accepting()) {
        const batch = this.queue.splice(0, MAX_BATCH);
        inflight.push({ batch, result: this.sink.commit(batch).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))) });
      }
      const head = inflight.shift();
      if (!head) {
        if (!(await this.commitOneWithRetry())) return;
        continue;
      }
      const result = await head.result;
      if (!(result instanceof Error)) {
        this.count(result);
        continue;
      }
      this.counters.refusals++;
      this.onRefused(result);
      // Put the refused batch and any later refused ones back, in order, ahead of newer changes.
      const back = [head.batch];
      for (const other of inflight.splice(0)) {
        const r = await other.result;
        if (r instanceof Error) back.push(other.batch);
        else this.count(r);
      }
      this.queue.unshift(...back.flat());
      if (!(await this.commitOneWithRetry())) return;
    }
  }

  /** One batch, retried until accepted; false when the source stopped first. */
  private async commitOneWithRetry(): Promise<boolean> {
    const batch = this.queue.slice(0, MAX_BATCH);
    const outcomes = await commitUntilAccepted(this.sink, batch, {
      stopped: () => this.stopping,
      maxDelayMs: this.cfg.commitRetryMaxDelayMs,
      onRefused: (err) => {
        this.counters.refusals++;
        this.onRefused(err);
      },
    });
    if (!outcomes) return false;
    this.queue.splice(0, batch.length);
    this.count(outcomes);
    return true;
  }

  private count(outcomes: CommitOutcome[]): void {
    for (const o of outcomes) {
      if (o.duplicate) this.counters.duplicates++;
      else this.counters.committed++;
    }
  }

  pending(): number {
    return this.queue.length;
  }

  /** Stops intake; waits for the commit in flight. Queued, uncommitted changes are abandoned (the server re-sends current values on the next session). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.detach();
    await this.flushing;
    this.queue = [];
  }
}
