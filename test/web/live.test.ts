import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { waitFor } from '../helpers/net.js';
import { fakeGateway, startTestServer } from './fake-control.js';

type Message = { type: string; [k: string]: any };

/** Opens the live feed and collects every message it receives. */
async function listen(t: { after(fn: () => unknown): void }, url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; messages: Message[] }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/live`, { headers });
  const messages: Message[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as Message));
  t.after(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('websocket did not open within 5 s')), 5000);
    ws.once('open', () => (clearTimeout(timer), resolve()));
    ws.once('error', (err) => (clearTimeout(timer), reject(err)));
  });
  return { ws, messages };
}

describe('web: live feed', () => {
  it('pushes status on connect, then every second', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const { messages } = await listen(t, server.url);
    await waitFor(() => messages.length >= 1, 'the first status', 3000);
    assert.equal(messages[0]!.type, 'status');
    assert.equal(messages[0]!['status'].buffer.pendingEvents, 4321);
    gw.status.buffer.pendingEvents = 12;
    const next = await waitFor(() => messages.find((m) => m.type === 'status' && m['status'].buffer.pendingEvents === 12), 'a status with the new pending count', 3000);
    assert.ok(next);
  });

  it('forwards uplink events as they happen', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const { messages } = await listen(t, server.url);
    await waitFor(() => messages.length >= 1, 'the first status', 3000);

    gw.uplink.emit('delivered', { partition: 'plant-a/line1', batchId: 'b-1', events: 100, status: 200 });
    gw.uplink.emit('rejected', { partition: 'plant-a/line1', seq: 77, code: 'PG_ERR_UPLINK_REJECTED', reason: 'unknown material' });
    gw.uplink.emit('retry', { partition: 'plant-a/line2', batchId: 'b-2', attempts: 3, delayMs: 4000, code: 'PG_ERR_UPLINK_TRANSIENT', message: '503', status: 503 });
    gw.uplink.emit('alarm', { code: 'PG_ERR_UPLINK_AUTH', message: 'ERP answered 401', since: '2026-11-26T10:00:00.000Z' });
    gw.uplink.emit('alarm', undefined);
    gw.uplink.emit('state', 'paused');

    await waitFor(() => messages.some((m) => m.type === 'state'), 'the state event', 3000);
    const events = messages.filter((m) => m.type !== 'status');
    assert.deepEqual(events, [
      { type: 'delivered', partition: 'plant-a/line1', batchId: 'b-1', events: 100, status: 200 },
      { type: 'rejected', partition: 'plant-a/line1', seq: 77, code: 'PG_ERR_UPLINK_REJECTED', reason: 'unknown material' },
      { type: 'retry', partition: 'plant-a/line2', batchId: 'b-2', attempts: 3, delayMs: 4000, code: 'PG_ERR_UPLINK_TRANSIENT', message: '503', status: 503 },
      { type: 'alarm', alarm: { code: 'PG_ERR_UPLINK_AUTH', message: 'ERP answered 401', since: '2026-11-26T10:00:00.000Z' } },
      { type: 'alarm', alarm: null },
      { type: 'state', state: 'paused' },
    ]);
  });

  it('unsubscribes from the uplink when the last client leaves, and on server close', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    assert.equal(gw.uplink.listeners(), 0, 'no listeners before anyone watches');
    const a = await listen(t, server.url);
    const b = await listen(t, server.url);
    await waitFor(() => a.messages.length && b.messages.length, 'both clients greeted', 3000);
    assert.equal(gw.uplink.listeners(), 5, 'one listener per event kind, shared by all clients');
    a.ws.close();
    await waitFor(() => a.ws.readyState === WebSocket.CLOSED, 'client a closed', 3000);
    assert.equal(gw.uplink.listeners(), 5, 'b still listens');
    b.ws.close();
    await waitFor(() => gw.uplink.listeners() === 0, 'listeners removed after the last client left', 3000);

    const c = await listen(t, server.url);
    await waitFor(() => gw.uplink.listeners() === 5, 'resubscribed for a new client', 3000);
    const closed = new Promise<void>((resolve) => c.ws.once('close', () => resolve()));
    await server.close();
    await closed;
    assert.equal(gw.uplink.listeners(), 0, 'server close leaves no listener behind');
  });

  it('refuses the feed to pages from another origin', async (t) => {
    const server = await startTestServer(t, fakeGateway().control);
    await assert.rejects(listen(t, server.url, { origin: 'http://evil.example' }), /403/);
    const ok = await listen(t, server.url, { origin: server.url });
    await waitFor(() => ok.messages.length >= 1, 'status for the same origin', 3000);
  });

  it('closes the socket of a refused upgrade, so the server still shuts down', async (t) => {
    const server = await startTestServer(t, fakeGateway().control);
    await assert.rejects(listen(t, server.url, { origin: 'http://evil.example' }), /403/);
    const wrongPath = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/nowhere`);
    t.after(() => wrongPath.terminate());
    await assert.rejects(new Promise((_resolve, reject) => wrongPath.once('error', reject)), /404/);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise((_resolve, reject) => (timer = setTimeout(() => reject(new Error('server.close() hung on a refused upgrade')), 3000)));
    await Promise.race([server.close(), deadline]).finally(() => clearTimeout(timer));
  });

  it('shuts down within its grace period even while a client holds a request open', async (t) => {
    const server = await startTestServer(t, fakeGateway().control);
    // A request that never completes: fastify waits for it at close; the grace period ends that wait.
    const socket = connect(server.port, '127.0.0.1');
    t.after(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await server.close();
    const took = Date.now() - started;
    assert.ok(took < 10_000, `close() returned after ${took} ms`);
    await waitFor(() => socket.destroyed || socket.readableEnded, 'the held connection to be closed', 5000);
  });
});
