/**
 * systemd readiness and watchdog (Type=notify). Node cannot send to a unix
 * datagram socket, so the notification goes through systemd-notify; the unit
 * sets NotifyAccess=all for that reason. Outside systemd (no NOTIFY_SOCKET) this
 * does nothing.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

function notify(state: string, logger: Logger): void {
  if (!process.env['NOTIFY_SOCKET']) return;
  execFile('systemd-notify', [`--pid=${process.pid}`, state], (err) => {
    if (err) logger.warn({ err: err.message, state }, 'systemd-notify failed');
  });
}

/** Reports READY=1 and, when systemd set WATCHDOG_USEC, pings at half the interval while `healthy()` holds. */
export function notifyReady(logger: Logger, healthy: () => boolean): () => void {
  notify('READY=1', logger);
  const usec = Number(process.env['WATCHDOG_USEC'] ?? 0);
  if (!usec) return () => notify('STOPPING=1', logger);
  const timer = setInterval(() => {
    let ok = false;
    try {
      ok = healthy();
    } catch {
      // Stopping (the store may already be closed): no ping; systemd is told STOPPING=1.
    }
    if (ok) notify('WATCHDOG=1', logger);
  }, Math.max(1000, usec / 2000));
  timer.unref();
  return () => {
    clearInterval(timer);
    notify('STOPPING=1', logger);
  };
}
