#!/usr/bin/env node
/**
 * plantgate CLI: run | check-config | status | dlq | export | opcua.
 * Exit codes: 0 ok, 1 failure at run time, 2 bad usage or bad config.
 */
import { parseArgs } from 'node:util';
import { ApiError } from './cli/api-client.js';
import { DLQ_USAGE, dlqCommand, exportCommand } from './cli/dlq.js';
import { statusCommand } from './cli/status.js';
import { DEFAULT_CONFIG_PATH, loadConfig, type LoadedConfig } from './config/load.js';
import { describeError, isPlantgateError } from './errors.js';
import { tuneHeap } from './heap.js';
import { createLogger } from './logger.js';
import { notifyReady } from './systemd.js';
import { VERSION } from './version.js';

const USAGE = `plantgate ${VERSION}
usage: plantgate [command] [--config FILE]
  run                      start the daemon (default)
  check-config [FILE]      validate a config file; print every problem with its key
  status [--json]          state of the running daemon
  dlq list | show ID | replay ID | delete ID
  export [--out FILE]      dead letters as JSON Lines
  opcua list | trust THUMBPRINT
Config defaults to ${DEFAULT_CONFIG_PATH}`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, out: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
  });
  if (values.version) return print(VERSION, 0);
  const [command = 'run', ...rest] = positionals;
  if (values.help || command === 'help') return print(USAGE, 0);
  const file = command === 'check-config' ? (rest[0] ?? values.config) : values.config;

  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(file ?? DEFAULT_CONFIG_PATH);
  } catch (err) {
    process.stderr.write(`${describeError(err)}\n`);
    return 2;
  }

  switch (command) {
    case 'check-config':
      return print(summary(loaded), 0);
    case 'run':
      return run(loaded);
    case 'status':
      return statusCommand(loaded.config, values.json === true);
    case 'dlq':
      return rest.length ? dlqCommand(loaded.config, rest) : print(DLQ_USAGE, 2);
    case 'export':
      return exportCommand(loaded.config, values.out);
    case 'opcua':
      // node-opcua takes seconds and ~90 MiB to load: only this command and an opcua source pay for it.
      return (await import('./cli/opcua-trust.js')).opcuaTrust(rest, loaded.config);
    default:
      process.stderr.write(`PG_ERR_CLI_USAGE: unknown command '${command}'\n${USAGE}\n`);
      return 2;
  }
}

function print(text: string, code: number): number {
  process.stdout.write(`${text}\n`);
  return code;
}

function summary({ config, file }: LoadedConfig): string {
  const sources = Object.entries(config.sources)
    .flatMap(([kind, list]) => (list as { name: string }[]).map((s) => `${s.name} (${kind})`))
    .join(', ');
  return `config ${file} is valid\n  gateway ${config.gateway.id}, site ${config.gateway.site}, data in ${config.gateway.dataDir}\n  uplink ${config.uplink.enabled ? config.uplink.url : 'disabled'}\n  web ${config.web.enabled ? `${config.web.host}:${config.web.port}` : 'disabled'}\n  sources: ${sources || 'none'}`;
}

async function run(loaded: LoadedConfig): Promise<number> {
  tuneHeap();
  const logger = createLogger(loaded.config.log.level);
  // lmdb-js can leave an internal promise rejection unhandled when the disk fills
  // (FIELD-NOTES). Report it; the commit path has already refused the data.
  process.on('unhandledRejection', (reason) => logger.error({ code: 'PG_ERR_BUFFER_COMMIT', err: describeError(reason) }, 'unhandled rejection (reported, not fatal)'));

  // Loaded here, not at the top, so check-config and the API commands stay quick.
  const { Gateway } = await import('./gateway.js');
  const gateway = new Gateway(loaded, logger);
  let stopping: Promise<void> | undefined;
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutdown requested');
    stopping = gateway.stop().finally(stopped);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  try {
    await gateway.start();
  } catch (err) {
    logger.fatal({ code: isPlantgateError(err) ? err.code : undefined, err: describeError(err) }, 'plantgate could not start');
    await gateway.stop().catch(() => undefined);
    logger.flush();
    return 1;
  }
  const stopNotify = notifyReady(logger, () => gateway.status().ready);
  await done;
  stopNotify();
  logger.flush();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof ApiError ? `${err.code}: ${err.message}` : describeError(err)}\n`);
    process.exitCode = 1;
  },
);
