/**
 * OPC UA source: one connector = one server. Wires the connection supervisor to
 * the data-change ingest and the trigger groups; see README.md in this folder.
 *
 * start(): opens the PKI (creating our certificate on first start) and makes the
 * first connection attempt; later attempts run in the background.
 * stop(): stops intake, waits for commits in flight, closes the session; no
 * handshake is written after it resolved.
 */
// First: catches node-opcua's console output from its very first line (see log-bridge.ts).
import { bridgeNodeOpcuaLogs } from './log-bridge.js';
import type { ClientSession, ClientSubscription } from 'node-opcua';
import { PlantgateError } from '../../errors.js';
import type { Source, SourceContext, SourceState, SourceStatus } from '../source.js';
import type { OpcuaConfigType } from './config.js';
import { ServerConnection } from './connection.js';
import { DataChangeIngest } from './data-changes.js';
import type { TemplateContext } from './event-build.js';
import { refFromString, resolveRefs, type NodeRef } from './node-resolve.js';
import { openOwnIdentity, type OwnIdentity } from './pki.js';
import { TriggerGroup } from './trigger-group.js';

export { OpcuaConfig } from './config.js';

export function createSource(config: OpcuaConfigType, ctx: SourceContext): Source {
  return new OpcuaSource(config, ctx);
}

export class OpcuaSource implements Source {
  readonly kind = 'opcua';
  private state: SourceState = 'stopped';
  private lastError?: SourceStatus['lastError'];
  private identity?: OwnIdentity;
  private connection?: ServerConnection;
  private readonly data: DataChangeIngest;
  private readonly groups: TriggerGroup[];
  private errors = 0;

  constructor(
    private readonly cfg: OpcuaConfigType,
    private readonly ctx: SourceContext,
  ) {
    const tpl: TemplateContext = { site: ctx.site, line: cfg.line ?? cfg.name, connector: cfg.name };
    // Event ids depend on the connector and the server address, never on session state.
    const serverKey = `${ctx.connector}|${cfg.endpointUrl}`;
    const log = ctx.logger.child({ component: 'opcua', connector: cfg.name });
    this.data = new DataChangeIngest(cfg, ctx.sink, tpl, serverKey, log, (err) => this.refused(err));
    this.groups = cfg.triggerGroups.map((g) => new TriggerGroup(g, cfg, ctx.sink, tpl, serverKey, log, (err) => this.fail(err), (err) => this.refused(err)));
  }

  get name(): string {
    return this.cfg.name;
  }

  async start(): Promise<void> {
    this.state = 'starting';
    bridgeNodeOpcuaLogs(this.ctx.logger);
    this.identity = await openOwnIdentity(this.ctx.dataDir, this.ctx.gatewayId);
    const log = this.ctx.logger.child({ component: 'opcua', connector: this.cfg.name });
    this.connection = new ServerConnection(
      this.cfg,
      this.identity,
      this.ctx.dataDir,
      {
        onSession: (session, subscription) => this.attach(session, subscription),
        onSessionLost: () => {
          this.data.detach();
          for (const g of this.groups) g.detach();
        },
        onError: (err) => this.fail(err),
      },
      log,
    );
    await this.connection.start();
    this.state = this.connection.state === 'connected' ? 'running' : 'degraded';
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' && !this.connection) return;
    await Promise.all([this.data.stop(), ...this.groups.map((g) => g.stop())]);
    await this.connection?.stop();
    this.connection = undefined;
    await this.identity?.certificateManager.dispose();
    this.identity = undefined;
    this.state = 'stopped';
  }

  status(): SourceStatus {
    const conn = this.connection?.stats();
    if (this.state !== 'stopped' && this.state !== 'starting' && conn) this.state = conn.state === 'connected' ? 'running' : 'degraded';
    const counters: Record<string, number> = { ...prefixed('changes', this.data.counters), pendingChanges: this.data.pending(), errors: this.errors };
    for (const g of this.groups) for (const [k, v] of Object.entries(g.counters)) counters[`triggers.${k}`] = (counters[`triggers.${k}`] ?? 0) + v;
    return {
      name: this.cfg.name,
      kind: this.kind,
      state: this.state,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      counters,
      details: {
        servers: [{ ...(conn ?? { state: 'stopped', endpointUrl: this.cfg.endpointUrl }), lastError: this.lastError, groups: Object.fromEntries(this.groups.map((g) => [g.name, { ...g.counters }])) }],
      },
    };
  }

  /** Resolves this session's NodeIds, then creates the monitored items and trigger watches on the fresh subscription. */
  private async attach(session: ClientSession, subscription: ClientSubscription): Promise<void> {
    const itemIds = await resolveRefs(session, this.cfg.items as NodeRef[], `${this.cfg.name}.items`);
    await this.data.attach(subscription, this.cfg.items.map((item, i) => ({ item, nodeId: itemIds[i]! })));
    for (const [i, g] of this.cfg.triggerGroups.entries()) {
      const refs: NodeRef[] = [
        g.trigger,
        g.handshake,
        ...(g.handshake.failureNodeId ? [refFromString(g.handshake.failureNodeId)] : []),
        ...Object.values(g.fields).map(refFromString),
      ];
      const ids = await resolveRefs(session, refs, `${this.cfg.name}.triggerGroups.${g.name}`);
      const failure = g.handshake.failureNodeId ? ids[2] : undefined;
      const fieldIds = ids.slice(failure ? 3 : 2);
      await this.groups[i]!.attach(session, subscription, {
        trigger: ids[0]!,
        handshake: ids[1]!,
        ...(failure ? { failure } : {}),
        fields: Object.keys(g.fields).map((name, k) => [name, fieldIds[k]!]),
      });
    }
    this.state = 'running';
  }

  private fail(err: PlantgateError): void {
    this.errors++;
    this.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
    this.ctx.logger.warn({ component: 'opcua', connector: this.cfg.name, code: err.code }, err.message);
  }

  private refused(err: unknown): void {
    if (err instanceof PlantgateError) this.lastError = { code: err.code, message: err.message, at: new Date().toISOString() };
  }
}

function prefixed(prefix: string, o: object): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}.${k}`, v as number]));
}
