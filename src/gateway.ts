/**
 * Composition root: builds the stages from config and runs them.
 * Start order: buffer → uplink → web → sources (intake opens last, once
 * everything behind it can take what it sends). Stop in reverse: sources stop
 * intake and finish their commits, the uplink settles or abandons requests within
 * the deadline (an abandoned batch stays sealed and is resent on restart), then
 * the web server and the buffer close.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { openBuffer, type BufferStore } from './buffer/store.js';
import type { LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { PlantgateError, describeError } from './errors.js';
import { sourceKinds, type SourceKindName, type SourceModule } from './protocols/registry.js';
import type { Source, SourceStatus } from './protocols/source.js';
import type { GatewayControl, GatewayStatus } from './status.js';
import { createUplink, type Uplink } from './uplink/uplink.js';
import { VERSION } from './version.js';
import { startWebServer, type WebServer } from './web/server.js';


interface FailedSource {
  name: string;
  kind: string;
  error: { code: string; message: string; at: string };
}

export class Gateway implements GatewayControl {
  readonly config: Config;
  readonly dataDir: string;
  private buffer: BufferStore | undefined;
  private uplinkImpl: Uplink | undefined;
  private web: WebServer | undefined;
  private readonly sources: Source[] = [];
  private readonly failed: FailedSource[] = [];
  private readonly startedAt = new Date();
  private started = false;

  constructor(
    loaded: LoadedConfig,
    private readonly logger: Logger,
  ) {
    this.config = loaded.config;
    this.dataDir = resolve(this.config.gateway.dataDir);
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    this.buffer = await openBuffer({ dataDir: this.dataDir, config: config.buffer, gatewayId: config.gateway.id, logger, deferDedupeFill: true });
    this.uplinkImpl = createUplink({ config: config.uplink, outbox: this.buffer.outbox, logger });
    this.uplinkImpl.start();
    if (config.web.enabled) {
      this.web = await startWebServer({ config: config.web, control: this, logger: logger.child({ component: 'web' }) }).catch((err: unknown) => {
        throw new PlantgateError('PG_ERR_WEB_LISTEN', `the status page cannot listen on ${config.web.host}:${config.web.port}: ${describeError(err)}. Is another plantgate or web server using it? Change web.port or stop the other one.`, undefined, { cause: err });
      });
    }
    for (const kind of Object.keys(sourceKinds) as SourceKindName[]) {
      for (const sourceConfig of config.sources[kind] as { name: string }[]) await this.startSource(kind, sourceConfig);
    }
    // Events held for a file of an inbox no longer configured can never be released; they would block their partitions.
    const inboxes = new Set((config.sources.filedrop as { name: string }[]).map((s) => s.name));
    for (const h of this.buffer.heldStreams()) {
      if (inboxes.has(h.connector)) continue;
      const removed = await this.buffer.discardHold(h.stream);
      logger.warn({ connector: h.connector, file: h.file, removed }, 'discarded the events held for a file of an inbox that is no longer configured; the file was never fully read, none of them was sent');
    }
    this.started = true;
    logger.info({ gatewayId: config.gateway.id, dataDir: this.dataDir, sources: this.sources.length, failed: this.failed.length, web: this.web?.url }, 'plantgate started');
    // After the sources listen: the fill's reads would delay them (resends are recognised meanwhile, by a read each).
    this.buffer.fillDedupeFilters();
  }

  /** A source that cannot start is reported and the rest keep running: one bad connector must not stop a plant's data. */
  private async startSource(kind: SourceKindName, sourceConfig: { name: string }): Promise<void> {
    const log = this.logger.child({ component: kind, connector: sourceConfig.name });
    try {
      const mod = (await sourceKinds[kind].load()) as SourceModule<unknown>;
      const source = mod.createSource(sourceConfig, {
        gatewayId: this.config.gateway.id,
        site: this.config.gateway.site,
        connector: sourceConfig.name,
        sink: this.buffer!.sinkFor(sourceConfig.name),
        logger: log,
        dataDir: this.dataDir,
      });
      await source.start();
      this.sources.push(source);
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'PG_ERR_SOURCE_START';
      this.failed.push({ name: sourceConfig.name, kind, error: { code, message: describeError(err), at: new Date().toISOString() } });
      log.error({ code, err: describeError(err) }, 'source failed to start; the others keep running');
    }
  }

  /** Stops intake, drains in-flight work within the configured deadline, closes the store. */
  async stop(): Promise<void> {
    const deadlineMs = this.config.gateway.shutdownDeadlineMs;
    this.logger.info({ deadlineMs }, 'plantgate stopping');
    await Promise.allSettled([...this.sources].reverse().map((s) => s.stop()));
    await this.uplinkImpl?.stop(deadlineMs);
    await this.web?.close();
    await this.buffer?.close();
    this.logger.info('plantgate stopped');
  }

  get uplink(): Uplink {
    return this.uplinkImpl!;
  }

  get deadLetters() {
    return this.buffer!.deadLetters;
  }

  get store(): BufferStore {
    return this.buffer!;
  }

  get webUrl(): string | undefined {
    return this.web?.url;
  }

  resumeUplink(): void {
    this.uplinkImpl?.resume();
  }

  status(): GatewayStatus {
    const failed: SourceStatus[] = this.failed.map((f) => ({ name: f.name, kind: f.kind, state: 'error', lastError: f.error, counters: {} }));
    return {
      gatewayId: this.config.gateway.id,
      site: this.config.gateway.site,
      version: VERSION,
      node: process.version,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      ready: this.started && this.failed.length === 0,
      buffer: this.buffer!.stats(),
      uplink: this.uplinkImpl!.status(),
      sources: [...this.sources.map((s) => s.status()), ...failed],
    };
  }
}
