/**
 * Bench helpers for child processes: spawn the real daemon with a temp config,
 * wait for one of its JSON log lines, sample its memory (/proc/<pid>/status
 * RssAnon = private memory, RssFile = mapped files such as the LMDB map) and
 * CPU (/proc/<pid>/stat utime+stime), run a helper script as a child and read
 * its JSON result. Everything binds 127.0.0.1; every wait has a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/main.js, seen from dist/scripts/bench/. */
export const DAEMON_MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));
/** Linux's USER_HZ; /proc/<pid>/stat counts CPU in these ticks. */
const CLOCK_TICKS_PER_S = 100;
const MAX_LOG_LINES = 10_000;

export function benchScript(name: string): string {
  return fileURLToPath(new URL(`./${name}.js`, import.meta.url));
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `plantgate-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A port nothing listens on right now (bound to 0, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Polls until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (!alive()) throw new Error(`process exited before listening on port ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- /proc sampling ----

export interface MemSample {
  anonKiB: number;
  fileKiB: number;
}

export function memOf(pid: number): MemSample | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const anon = /RssAnon:\s+(\d+)\s*kB/.exec(s);
    const file = /RssFile:\s+(\d+)\s*kB/.exec(s);
    return { anonKiB: anon ? Number(anon[1]) : 0, fileKiB: file ? Number(file[1]) : 0 };
  } catch {
    return undefined; // gone, or not Linux
  }
}

/** CPU time (user + system, all threads) in ms. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ')' of the command name; utime and stime are fields 14 and 15.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** The machine's CPU time so far (/proc/stat, all CPUs, in ticks): busy and total. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    // idle and iowait are the 4th and 5th: the rest is work (user, nice, system, irq, softirq, steal).
    return { busy: total - fields[3]! - fields[4]!, total };
  } catch {
    return undefined;
  }
}

/** Samples a process's memory every `everyMs` and its CPU between start and stop, and how busy the machine was. */
export class Sampler {
  peakAnonKiB = 0;
  peakFileKiB = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly cpu0: number;
  private readonly machine0 = machineTicks();
  private readonly t0 = performance.now();

  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    this.cpu0 = cpuMsOf(pid) ?? 0;
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    const m = memOf(this.pid);
    if (!m) return;
    this.peakAnonKiB = Math.max(this.peakAnonKiB, m.anonKiB);
    this.peakFileKiB = Math.max(this.peakFileKiB, m.fileKiB);
  }

  /** Stops sampling; returns CPU used as a share of one core over the window, and the machine's busy share (all CPUs, every process). */
  stop(): { cpuMs: number; wallMs: number; cores: number; machineBusy: number; peakAnonMiB: number; peakFileMiB: number } {
    clearInterval(this.timer);
    this.sample();
    const cpuMs = (cpuMsOf(this.pid) ?? this.cpu0) - this.cpu0;
    const wallMs = performance.now() - this.t0;
    const m = machineTicks();
    const machineBusy = m && this.machine0 && m.total > this.machine0.total ? (m.busy - this.machine0.busy) / (m.total - this.machine0.total) : Number.NaN;
    return { cpuMs, wallMs, cores: cpuMs / wallMs, machineBusy, peakAnonMiB: this.peakAnonKiB / 1024, peakFileMiB: this.peakFileKiB / 1024 };
  }
}

/** Bytes a directory takes on disk (allocated blocks, so sparse files count as stored). */
export function diskUsage(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) total += diskUsage(p);
    else total += statSync(p).blocks * 512;
  }
  return total;
}

// ---- the daemon as a child ----

export interface DaemonChild {
  proc: ChildProcess;
  pid: number;
  /** performance.now() just before spawn. */
  spawnedAt: number;
  logs: Record<string, unknown>[];
  stderr(): string;
  alive(): boolean;
  /** Resolves with performance.now() when a log line with this msg appears. */
  waitForLog(msg: string, timeoutMs: number): Promise<{ at: number; entry: Record<string, unknown> }>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code or signal. */
  stop(graceMs?: number): Promise<number | string>;
}

export function writeDaemonConfig(dir: string, yaml: string): string {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, yaml);
  return file;
}

export function spawnDaemon(configFile: string, opts: { nodeArgs?: string[]; cwd?: string } = {}): DaemonChild {
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), DAEMON_MAIN, 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  if (proc.pid === undefined) throw new Error('could not spawn the daemon');
  const logs: Record<string, unknown>[] = [];
  const waiters: { msg: string; resolve: (v: { at: number; entry: Record<string, unknown> }) => void }[] = [];
  let stderr = '';
  let buf = '';
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  proc.stdout!.on('data', (chunk: Buffer) => {
    const at = performance.now();
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (logs.length < MAX_LOG_LINES) logs.push(entry);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.msg === entry['msg']) waiters.splice(i, 1)[0]!.resolve({ at, entry });
      }
    }
  });
  proc.stderr!.on('data', (c: Buffer) => {
    if (stderr.length < 64 * 1024) stderr += c.toString();
  });
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  return {
    proc,
    pid: proc.pid,
    spawnedAt,
    logs,
    stderr: () => stderr,
    alive,
    waitForLog: (msg, timeoutMs) => {
      const seen = logs.find((e) => e['msg'] === msg);
      if (seen) return Promise.reject(new Error(`log line '${msg}' was already seen; wait for it before it arrives`));
      const found = new Promise<{ at: number; entry: Record<string, unknown> }>((resolve, reject) => {
        waiters.push({ msg, resolve });
        void exited.then((code) => reject(new Error(`daemon exited (${code}) before logging '${msg}'; stderr: ${stderr.slice(0, 2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`)));
      });
      return withTimeout(found, timeoutMs, `the daemon to log '${msg}'`);
    },
    stop: async (graceMs = 15_000) => {
      if (!alive()) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// ---- helper scripts as children ----

export interface ChildRun<T> {
  pid: number;
  /** The last JSON line the child printed on stdout. */
  result: Promise<T>;
  kill(): void;
}

/** Runs dist/scripts/bench/<name>.js with a JSON argument; its last stdout line is its JSON result. */
export function runChild<T>(name: string, arg: unknown, timeoutMs: number, nodeArgs: string[] = []): ChildRun<T> {
  const proc = spawn(process.execPath, [...nodeArgs, benchScript(name), JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`could not spawn ${name}`);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.length > 1024 * 1024) out = out.slice(-64 * 1024);
  });
  proc.stderr!.on('data', (c: Buffer) => {
    if (err.length < 64 * 1024) err += c.toString();
  });
  const done = new Promise<T>((resolve, reject) => {
    proc.once('exit', (code, signal) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`${name} exited with ${code ?? signal}: ${err.slice(0, 2000) || last}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${name} printed no JSON result; stdout: ${last.slice(0, 500)}; stderr: ${err.slice(0, 1000)}`));
      }
    });
  });
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  const result = withTimeout(done, timeoutMs, name).catch((e: unknown) => {
    kill();
    throw e;
  });
  return { pid: proc.pid, result, kill };
}

/** A long-running helper child that prints one JSON line when ready (e.g. bare-broker). */
export async function startServerChild(name: string, arg: unknown, timeoutMs: number): Promise<{ pid: number; ready: Record<string, unknown>; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [benchScript(name), JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`could not spawn ${name}`);
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => {
    if (err.length < 64 * 1024) err += c.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const ready = await withTimeout(
      new Promise<Record<string, unknown>>((resolve, reject) => {
        let out = '';
        proc.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          const nl = out.indexOf('\n');
          if (nl >= 0) {
            try {
              resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
            } catch {
              reject(new Error(`${name} printed ${out.slice(0, 200)}`));
            }
          }
        });
        void exited.then(() => reject(new Error(`${name} exited before it was ready: ${err.slice(0, 2000)}`)));
      }),
      timeoutMs,
      `${name} to be ready`,
    );
    return { pid: proc.pid, ready, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ---- numbers ----

/** Value at quantile q (0..1) of an ascending sorted array (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

export function round(v: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function fmtInt(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}
