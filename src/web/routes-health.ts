/**
 * Liveness and readiness for systemd checks, load balancers and the technician.
 * /healthz answers while the process serves requests at all. /readyz follows
 * GatewayStatus.ready and says what is missing. A full buffer is not "unready":
 * the gateway still holds and forwards what it has, and restarting it would not
 * help, so it is reported in the body but keeps 200.
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayControl, GatewayStatus } from '../status.js';

export interface Readiness {
  ready: boolean;
  /** What keeps the gateway from being ready, in words a technician reads. */
  notReady: string[];
  buffer: { accepting: boolean; fullReason?: string };
}

export function readiness(s: GatewayStatus): Readiness {
  const notReady: string[] = [];
  if (!s.ready) {
    if (s.uplink.state === 'stopped') notReady.push('uplink: stopped');
    for (const src of s.sources) {
      if (src.state === 'starting' || src.state === 'stopped' || src.state === 'error') {
        notReady.push(`source ${src.name} (${src.kind}): ${src.state}${src.lastError ? ` — ${src.lastError.code}: ${src.lastError.message}` : ''}`);
      }
    }
    // `ready` also covers start-up steps that leave no trace in the status.
    if (notReady.length === 0) notReady.push('gateway: starting');
  }
  const buffer: Readiness['buffer'] = { accepting: s.buffer.accepting };
  if (s.buffer.fullReason !== undefined) buffer.fullReason = s.buffer.fullReason;
  return { ready: s.ready, notReady, buffer };
}

export function healthRoutes(app: FastifyInstance, control: GatewayControl): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = readiness(control.status());
    return reply.code(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', ...r });
  });
}
