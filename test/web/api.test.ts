import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fakeGateway, startTestServer } from './fake-control.js';

async function json(res: Response): Promise<Record<string, any>> {
  return (await res.json()) as Record<string, any>;
}

describe('web: health', () => {
  it('healthz answers while the server runs; readyz follows status().ready and explains', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);

    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal((await json(ready))['ready'], true);

    gw.status.ready = false;
    gw.status.sources[1]!.state = 'error';
    const notReady = await fetch(`${server.url}/readyz`);
    assert.equal(notReady.status, 503);
    const body = await json(notReady);
    assert.equal(body['ready'], false);
    assert.equal(body['notReady'].length, 1);
    assert.match(body['notReady'][0], /mes-broker.*error.*PG_ERR_MQTT_PAYLOAD/);
  });

  it('a full buffer is reported but does not make the gateway unready', async (t) => {
    const gw = fakeGateway();
    gw.status.buffer.accepting = false;
    gw.status.buffer.fullReason = 'free disk below 1 GiB';
    const server = await startTestServer(t, gw.control);
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual((await json(res))['buffer'], { accepting: false, fullReason: 'free disk below 1 GiB' });
  });
});

describe('web: JSON API', () => {
  it('GET /api/status returns the gateway status', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const res = await fetch(`${server.url}/api/status`);
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body['gatewayId'], 'gw-test-01');
    assert.equal(body['buffer']['pendingEvents'], 4321);
    assert.equal(body['buffer']['deadLetters'], 2);
    assert.equal(body['uplink']['partitions'].length, 2);
    assert.deepEqual(body['sources'][0]['details'], gw.status.sources[0]!.details, 'kind-specific details pass through unchanged');
  });

  it('lists dead letters in dlid order with count and pages with after', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const all = await json(await fetch(`${server.url}/api/dead-letters`));
    assert.equal(all['count'], 2);
    assert.deepEqual(all['items'].map((d: { dlid: number }) => d.dlid), [17, 42]);
    assert.equal(all['nextAfter'], undefined);
    assert.equal(all['items'][0]['raw'], undefined, 'the list leaves the bytes to the detail route');
    assert.equal(all['items'][0]['rawBytes'], '<count>12</count>'.length);

    const first = await json(await fetch(`${server.url}/api/dead-letters?limit=1`));
    assert.deepEqual(first['items'].map((d: { dlid: number }) => d.dlid), [17]);
    assert.equal(first['nextAfter'], 17);
    const second = await json(await fetch(`${server.url}/api/dead-letters?limit=1&after=${first['nextAfter']}`));
    assert.deepEqual(second['items'].map((d: { dlid: number }) => d.dlid), [42]);
    assert.equal(second['count'], 2);
  });

  it('rejects bad parameters with 400 and a code', async (t) => {
    const server = await startTestServer(t, fakeGateway().control);
    for (const path of ['/api/dead-letters?limit=0', '/api/dead-letters?limit=abc', '/api/dead-letters?after=-1', '/api/dead-letters/abc', '/api/dead-letters/0']) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 400, path);
      const body = await json(res);
      assert.equal(body['code'], 'PG_ERR_WEB_BAD_REQUEST', path);
      assert.equal(typeof body['message'], 'string');
    }
  });

  it('gets one dead letter with its raw bytes; 404 with a code when missing', async (t) => {
    const server = await startTestServer(t, fakeGateway().control);
    const one = await json(await fetch(`${server.url}/api/dead-letters/17`));
    assert.equal(Buffer.from(one['raw'], 'base64').toString(), '<count>12</count>');
    assert.deepEqual(one['context'], { topic: 'plant/line2/count', clientId: 'plc-7' });
    const missing = await fetch(`${server.url}/api/dead-letters/999`);
    assert.equal(missing.status, 404);
    assert.equal((await json(missing))['code'], 'PG_ERR_DLQ_NOT_FOUND');
  });

  it('replays an event (200), refuses raw payloads (409) and unknown ids (404)', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const ok = await fetch(`${server.url}/api/dead-letters/42/replay`, { method: 'POST' });
    assert.equal(ok.status, 200);
    assert.deepEqual(await json(ok), { dlid: 42, replayed: true, sequence: 1001, partition: 'plant-a/line1' });
    assert.deepEqual(gw.deadLetters.replayed, [42]);

    const raw = await fetch(`${server.url}/api/dead-letters/17/replay`, { method: 'POST' });
    assert.equal(raw.status, 409);
    const body = await json(raw);
    assert.equal(body['code'], 'PG_ERR_DLQ_NOT_REPLAYABLE');
    assert.match(body['message'], /raw bytes/);

    const gone = await fetch(`${server.url}/api/dead-letters/42/replay`, { method: 'POST' });
    assert.equal(gone.status, 404);
    assert.equal((await json(gone))['code'], 'PG_ERR_DLQ_NOT_FOUND');
  });

  it('deletes a dead letter; a second delete is 404', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const del = await fetch(`${server.url}/api/dead-letters/17`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual(await json(del), { dlid: 17, deleted: true });
    assert.equal(gw.deadLetters.count(), 1);
    const again = await fetch(`${server.url}/api/dead-letters/17`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal((await json(again))['code'], 'PG_ERR_DLQ_NOT_FOUND');
  });

  it('resumes the uplink', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const res = await fetch(`${server.url}/api/uplink/resume`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal((await json(res))['resumed'], true);
    assert.equal(gw.control.resumed, 1);
  });

  it('maps unexpected errors to 500 without leaking them, and unknown routes to 404', async (t) => {
    const gw = fakeGateway();
    gw.control.deadLetters.remove = async () => {
      throw new Error('disk on fire at /var/lib/secret');
    };
    const server = await startTestServer(t, gw.control);
    const res = await fetch(`${server.url}/api/dead-letters/17`, { method: 'DELETE' });
    assert.equal(res.status, 500);
    const body = await json(res);
    assert.equal(body['code'], 'PG_ERR_WEB_INTERNAL');
    assert.doesNotMatch(body['message'], /secret/);

    const nowhere = await fetch(`${server.url}/api/nowhere`);
    assert.equal(nowhere.status, 404);
    assert.equal((await json(nowhere))['code'], 'PG_ERR_WEB_NOT_FOUND');
  });

  it('refuses state changes from another origin (a page elsewhere on the network)', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const cross = await fetch(`${server.url}/api/dead-letters/17`, { method: 'DELETE', headers: { origin: 'http://evil.example' } });
    assert.equal(cross.status, 403);
    assert.equal((await json(cross))['code'], 'PG_ERR_WEB_FORBIDDEN_ORIGIN');
    assert.equal(gw.deadLetters.count(), 2);
    const same = await fetch(`${server.url}/api/dead-letters/17`, { method: 'DELETE', headers: { origin: server.url } });
    assert.equal(same.status, 200);
  });

  it('serves the status page with a strict content security policy', async (t) => {
    const server = await startTestServer(t, fakeGateway().control);
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const html = await page.text();
    assert.match(html, /<script type="module" src="app.js"/);
    assert.doesNotMatch(html, /https?:\/\//, 'no external resources');
    for (const [file, type] of [['app.js', /javascript/], ['dead-letters.js', /javascript/], ['format.js', /javascript/], ['style.css', /text\/css/]] as const) {
      const res = await fetch(`${server.url}/${file}`);
      assert.equal(res.status, 200, file);
      assert.match(res.headers.get('content-type') ?? '', type);
      assert.doesNotMatch(await res.text(), /https?:\/\/(?!localhost)/, `${file}: no external resources`);
    }
  });
});
