/**
 * The WMS file-drop source: one inbox folder per connector. Polls the inbox,
 * reads each complete file (scanner.ts) through its format reader, commits every
 * record (ingest.ts), then archives it — the file-drop form of "acknowledge only
 * after commit". Files are read one at a time, oldest first; a refused commit or
 * IO error stops the round and retries the same file later, so order is kept.
 */
import { access, mkdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeError, isPlantgateError } from '../../errors.js';
import type { Source, SourceContext, SourceState, SourceStatus } from '../source.js';
import { withDefaults, type FiledropConfigType, type ResolvedFiledropConfig } from './config.js';
import { ingestFile, type IngestOptions } from './ingest.js';
import { compileMapping } from './mapping.js';
import { readerFor } from './readers.js';
import { Scanner, type ReadyFile } from './scanner.js';

export const KIND = 'filedrop';
const MAX_RETRY_MS = 60_000;

interface PendingFile {
  since: string;
  attempts: number;
  retryAt: number;
  lastError?: { code: string; message: string };
}

export function createSource(config: FiledropConfigType, ctx: SourceContext): Source {
  return new FiledropSource(withDefaults(config), ctx);
}

export class FiledropSource implements Source {
  readonly kind = KIND;
  readonly name: string;
  private state: SourceState = 'stopped';
  private readonly inbox: string;
  private readonly archiveDir: string;
  private readonly errorDir: string;
  private readonly scanner: Scanner;
  private readonly ingest: Omit<IngestOptions, 'signal'>;
  private abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, PendingFile>();
  private lastError: SourceStatus['lastError'];
  private readonly counters = { filesArchived: 0, filesRejected: 0, filesPartial: 0, recordsCommitted: 0, recordsDuplicate: 0, recordsBad: 0, retries: 0 };
  private lastFile: { name: string; outcome: string; at: string; detail?: string } | undefined;

  constructor(
    private readonly config: ResolvedFiledropConfig,
    private readonly ctx: SourceContext,
  ) {
    this.name = ctx.connector || config.name;
    this.inbox = resolve(config.path);
    this.archiveDir = resolve(config.archiveDir ?? join(this.inbox, 'archive'));
    this.errorDir = resolve(config.errorDir ?? join(this.inbox, 'error'));
    const c = config.completion;
    this.scanner = new Scanner({ path: this.inbox, include: config.include, ignore: config.ignore, mode: c.mode, quietMs: c.quietMs, markerSuffixes: c.markerSuffixes });
    const defaultType = config.format.kind === 'x12' ? undefined : config.mapping.type;
    this.ingest = {
      connector: this.name,
      reader: readerFor(config.format, config.mapping.utcOffset),
      map: compileMapping(config.mapping, { connector: this.name, site: ctx.site, ...(defaultType ? { defaultType } : {}) }),
      sink: ctx.sink,
      badRecords: config.badRecords,
      archiveDir: this.archiveDir,
      errorDir: this.errorDir,
      chunkRecords: config.chunkRecords,
      maxChunksInFlight: config.maxChunksInFlight,
      maxReportedProblems: config.maxReportedProblems,
    };
  }

  async start(): Promise<void> {
    this.state = 'starting';
    this.abort = new AbortController();
    try {
      await mkdir(this.inbox, { recursive: true });
      this.state = 'running';
    } catch (err) {
      // The next rounds retry; a technician sees why on the status page.
      this.fail('PG_ERR_FILE_IO', `inbox ${this.inbox} is not usable: ${describeError(err)}`);
    }
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.round;
    this.state = 'stopped';
  }

  status(): SourceStatus {
    const s: SourceStatus = {
      name: this.name,
      kind: KIND,
      state: this.state,
      counters: { ...this.counters, filesPending: this.pending.size, filesWaiting: this.scanner.waiting },
      details: {
        inbox: this.inbox,
        archive: this.archiveDir,
        error: this.errorDir,
        format: this.config.format.kind,
        completion: this.config.completion.mode,
        pending: [...this.pending].map(([name, p]) => ({ name, since: p.since, attempts: p.attempts, retryAt: new Date(p.retryAt).toISOString(), lastError: p.lastError })),
        lastFile: this.lastFile,
        lastError: this.lastError,
      },
    };
    if (this.lastError) s.lastError = this.lastError;
    return s;
  }

  private schedule(ms: number): void {
    if (this.abort.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.round = this.runRound().finally(() => this.schedule(this.config.pollMs));
    }, ms);
  }

  private async runRound(): Promise<void> {
    if (!(await this.discardOrphanHolds())) return;
    let ready: ReadyFile[];
    try {
      ready = await this.scanner.scan();
    } catch (err) {
      this.fail('PG_ERR_FILE_IO', `cannot list inbox ${this.inbox}: ${describeError(err)}`);
      return;
    }
    let healthy = true;
    for (const f of ready) {
      if (this.abort.signal.aborted) return;
      const p = this.pending.get(f.name);
      if (p && p.retryAt > Date.now()) {
        healthy = false;
        break; // keep the order: later files wait for this one
      }
      if (!(await this.processFile(f))) {
        healthy = false;
        break;
      }
    }
    if (healthy && this.pending.size === 0 && this.state === 'degraded') this.state = 'running';
  }

  /**
   * A file read only in part (the gateway stopped mid-file) resumes under its hold; a hold
   * whose file has left the inbox (removed, or moved to error/ just before a crash) can
   * never complete, so its events are discarded. False if the buffer failed.
   */
  private async discardOrphanHolds(): Promise<boolean> {
    const holds = this.ctx.sink.holds;
    if (!holds) return true;
    try {
      for (const h of holds.list()) {
        if (await access(join(this.inbox, h.file)).then(() => true, () => false)) continue;
        const removed = await holds.discard(h.stream);
        this.ctx.logger.warn({ code: 'PG_ERR_FILE_IO', connector: this.name, file: h.file, removed }, 'a file read in part left the inbox before it was complete; the events read from it were discarded, none was sent');
      }
      return true;
    } catch (err) {
      this.fail('PG_ERR_BUFFER_COMMIT', `cannot discard the events held for a file that left the inbox: ${describeError(err)}`);
      return false;
    }
  }

  /** False when the file must be retried later (and later files wait). */
  private async processFile(f: ReadyFile): Promise<boolean> {
    const log = this.ctx.logger.child({ component: 'filedrop', connector: this.name, file: f.name });
    try {
      const r = await ingestFile(f.path, f.name, { ...this.ingest, signal: this.abort.signal });
      // The file has moved on: its markers go before it is counted, so a count seen means the inbox is clean.
      if (r.kind === 'archived' || r.kind === 'rejected') await Promise.all(f.markers.map((m) => unlink(join(this.inbox, m)).catch(() => undefined)));
      const at = new Date().toISOString();
      switch (r.kind) {
        case 'stopped':
          return false;
        case 'changed':
          this.scanner.forget(f.name);
          log.warn({ code: 'PG_ERR_FILE_PARSE' }, 'file changed while it was read; it will be read again once complete');
          return false;
        case 'rejected':
          this.counters.filesRejected++;
          this.counters.recordsBad += r.bad;
          this.lastFile = { name: f.name, outcome: 'rejected', at, detail: r.reason };
          this.lastError = { code: 'PG_ERR_FILE_PARSE', message: `${f.name} rejected: ${r.reason}`, at };
          log.warn({ code: 'PG_ERR_FILE_PARSE', report: r.reportPath, bad: r.bad }, `file rejected to error/: ${r.reason}`);
          break;
        case 'archived':
          this.counters.filesArchived++;
          this.counters.recordsCommitted += r.committed;
          this.counters.recordsDuplicate += r.duplicates;
          this.counters.recordsBad += r.bad;
          if (r.reportPath) this.counters.filesPartial++;
          this.lastFile = { name: f.name, outcome: r.reportPath ? 'partial' : 'archived', at, detail: `${r.committed} committed, ${r.duplicates} already known, ${r.bad} bad` };
          log.info({ records: r.records, committed: r.committed, duplicates: r.duplicates, bad: r.bad, dest: r.dest }, 'file archived');
          break;
      }
      this.pending.delete(f.name);
      this.scanner.forget(f.name);
      return true;
    } catch (err) {
      return this.retryLater(f, err, log);
    }
  }

  private retryLater(f: ReadyFile, err: unknown, log: SourceContext['logger']): boolean {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      this.pending.delete(f.name); // removed by someone else meanwhile: nothing to keep
      return true;
    }
    const code = isPlantgateError(err) ? err.code : 'PG_ERR_FILE_IO';
    const why = isPlantgateError(err, 'PG_ERR_BUFFER_FULL') ? 'the buffer is full' : ioText(err);
    const p = this.pending.get(f.name) ?? { since: new Date().toISOString(), attempts: 0, retryAt: 0 };
    p.attempts++;
    const delay = Math.min(this.config.retryMs * 2 ** Math.min(p.attempts - 1, 10), Math.max(MAX_RETRY_MS, this.config.retryMs));
    p.retryAt = Date.now() + delay;
    p.lastError = { code, message: why };
    this.pending.set(f.name, p);
    this.counters.retries++;
    const message = `${f.name} stays in the inbox and is retried in ${Math.round(delay / 1000)} s: ${why}`;
    log.warn({ code, attempts: p.attempts }, message);
    this.fail(code, message);
    return false;
  }

  private fail(code: string, message: string): void {
    this.lastError = { code, message, at: new Date().toISOString() };
    if (this.state !== 'stopped') this.state = 'degraded';
  }
}

/** "EACCES: permission denied, open '…'" — node's message already starts with the code. */
function ioText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code && typeof e.message === 'string' && e.message.startsWith(e.code) ? e.message : describeError(err);
}
