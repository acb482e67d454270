/**
 * node-opcua prints warnings and errors with console-style calls (coloured,
 * multi-line), which would break the JSON log lines journald gets. This module
 * routes them into pino as `component: node-opcua`. It is imported before
 * node-opcua itself so even its load-time warnings are caught; lines logged
 * before a source handed over its logger are kept (up to 100) and then flushed.
 */
import { format } from 'node:util';
import { setErrorLogger, setWarningLogger } from 'node-opcua-debug';
import type { Logger } from 'pino';

type Level = 'warn' | 'error';
const MAX_EARLY_LINES = 100;
let target: Logger | undefined;
const early: [Level, string][] = [];

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

function forward(level: Level) {
  return (...args: unknown[]): void => {
    const msg = format(...args).replace(ANSI, '').trim();
    if (!msg) return;
    if (target) target[level](msg);
    else if (early.length < MAX_EARLY_LINES) early.push([level, msg]);
  };
}

setWarningLogger(forward('warn'));
setErrorLogger(forward('error'));

/** Sends node-opcua's own log lines to this logger from now on (the first caller wins: the hook is process-wide). */
export function bridgeNodeOpcuaLogs(logger: Logger): void {
  if (target) return;
  target = logger.child({ component: 'node-opcua' });
  for (const [level, msg] of early.splice(0)) target[level](msg);
}
