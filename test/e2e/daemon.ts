/** Runs the real daemon (dist/src/main.js) as a child process for whole-gateway tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

const MAIN = new URL('../../src/main.js', import.meta.url).pathname;

export interface Daemon {
  proc: ChildProcess;
  /** Log lines (parsed JSON) seen so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): Promise<number | string>;
}

export function writeConfig(dir: string, yaml: string): string {
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** Starts the daemon and waits for its 'plantgate started' line. */
export async function startDaemon(t: Pick<TestContext, 'after'>, configFile: string, timeoutMs = 20_000): Promise<Daemon> {
  const proc = spawn(process.execPath, [MAIN, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let buf = '';
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start within ${timeoutMs} ms; stderr: ${stderr}; last logs: ${JSON.stringify(logs.slice(-5))}`)), timeoutMs);
    proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry['msg'] === 'plantgate started') {
            clearTimeout(timer);
            resolve();
          }
        } catch {
          // not a log line
        }
      }
    });
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code}) before starting; stderr: ${stderr}; last logs: ${JSON.stringify(logs.slice(-5))}`));
    });
  });
  await started;
  return {
    proc,
    logs,
    exited,
    kill: (signal = 'SIGTERM') => {
      proc.kill(signal);
      return exited;
    },
  };
}

/** A daemon config for e2e tests: embedded broker with two mappings, web off, quick retries. */
export function gatewayYaml(dir: string, mqttPort: number, erpUrl: string, extra = ''): string {
  return `
gateway: { id: e2e-gw, site: plant9, dataDir: ${dir}/data, shutdownDeadlineMs: 3000 }
log: { level: info }
web: { enabled: false }
uplink:
  url: ${erpUrl}
  maxBatchEvents: 100
  retry: { minDelayMs: 50, maxDelayMs: 500 }
sources:
  mqttBroker:
    - name: mes
      port: ${mqttPort}
      mappings:
        - topic: plant/{site}/{line}/completion
          type: production.completion
          idField: eventId
          subjectField: workOrder
        - topic: plant/{site}/{line}/state
          type: machine.state
${extra}`;
}
