/**
 * The status page in a real Chromium (playwright-core, Debian's /usr/bin/chromium):
 * what a technician sees, the Replay/Delete buttons, live updates over the
 * websocket and the "connection lost" banner. Skipped where Chromium is missing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createLogger } from '../../src/logger.js';
import { startWebServer } from '../../src/web/server.js';
import { fakeGateway, startTestServer, type FakeGateway } from './fake-control.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Screenshots of each state: kept in PLANTGATE_SCREENSHOTS (a folder) when set, else in a temp dir removed afterwards. */
const SHOTS = process.env['PLANTGATE_SCREENSHOTS'] ?? mkdtempSync(join(tmpdir(), 'plantgate-shots-'));
if (!process.env['PLANTGATE_SCREENSHOTS']) after(() => rmSync(SHOTS, { recursive: true, force: true }));
const shot = (name: string): string => join(SHOTS, `status${name}.png`);

async function launch(t: { after(fn: () => unknown): void }): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  return browser;
}

/** Opens the page and records anything the browser complains about (CSP violations, script errors). */
async function open(browser: Browser, url: string, viewport = { width: 1366, height: 768 }): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport });
  page.setDefaultTimeout(5000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  await page.goto(url);
  return { page, problems };
}

function alarm(gw: FakeGateway): void {
  gw.status.uplink.state = 'paused';
  gw.status.uplink.alarm = { code: 'PG_ERR_UPLINK_AUTH', message: 'the ERP answered 401 Unauthorized to the configured credentials', since: new Date().toISOString() };
  gw.uplink.emit('alarm', gw.status.uplink.alarm);
}

describe('web: status page in Chromium', () => {
  before(() => assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is needed for the page tests: apt-get install chromium (.ci/run does)`));

  it('shows the buffer and dead letters, replays and deletes, follows live updates, notices a lost gateway', async (t) => {
    const gw = fakeGateway();
    const server = await startTestServer(t, gw.control);
    const browser = await launch(t);
    const { page, problems } = await open(browser, server.url);

    // At a glance: who, how much is waiting, what is wrong.
    await page.locator('#pending', { hasText: '4,321' }).waitFor();
    assert.equal(await page.locator('#gw-id').textContent(), 'gw-test-01');
    assert.equal(await page.locator('#overall').textContent(), 'DEGRADED');
    assert.match((await page.locator('#buffer-kv').textContent()) ?? '', /Held: file being read \(wms-receipts\)\s*receipts-0815\.csv · plant-a\/wms wait until it is read to the end/);
    const refusedRow = page.locator('#dead-letters tr[data-dlid="42"]');
    await refusedRow.waitFor();
    assert.match((await refusedRow.textContent()) ?? '', /material M-100 unknown in plant A/);
    assert.match((await refusedRow.textContent()) ?? '', /ev-42/);
    const rawRow = page.locator('#dead-letters tr[data-dlid="17"]');
    assert.equal(await rawRow.locator('[data-action="replay"]').count(), 0, 'no Replay for a raw payload');
    assert.match((await page.locator('#sources').textContent()) ?? '', /mes-broker[\s\S]*payload on plant\/line2\/count is not JSON/);
    // Kind-specific details, rendered generically; they stay open across the 1 s refresh.
    const broker = page.locator('#sources article', { hasText: 'mes-broker' });
    await broker.locator('summary').click();
    await page.waitForTimeout(1500);
    assert.equal(await broker.locator('details').getAttribute('open'), '', 'details stay open across refreshes');
    assert.match((await broker.locator('details').textContent()) ?? '', /listening\s*0\.0\.0\.0:1883[\s\S]*plant\/\+\/count/);
    await page.evaluate('window.scrollTo(0, 0)'); // the sticky header would otherwise sit mid-page in a full-page shot
    await page.screenshot({ path: shot(''), fullPage: true });

    // Detail view: the raw payload decoded as text.
    await rawRow.getByRole('button', { name: 'View' }).click();
    await page.locator('#dl-detail-payload', { hasText: '<count>12</count>' }).waitFor();
    assert.match((await page.locator('#dl-detail-kv').textContent()) ?? '', /plant\/line2\/count/);
    await page.screenshot({ path: shot('-detail') });
    await page.locator('#dl-detail').getByRole('button', { name: 'Close' }).click();

    // Replay: the API is called and the row goes.
    const replayCall = page.waitForRequest((r) => r.url().endsWith('/api/dead-letters/42/replay') && r.method() === 'POST');
    await refusedRow.getByRole('button', { name: 'Replay' }).click();
    await replayCall;
    await refusedRow.waitFor({ state: 'detached' });
    assert.deepEqual(gw.deadLetters.replayed, [42]);
    await page.locator('#dl-message', { hasText: 'replayed' }).waitFor();

    // Delete asks first.
    page.once('dialog', (d) => void d.accept());
    await rawRow.getByRole('button', { name: 'Delete' }).click();
    await rawRow.waitFor({ state: 'detached' });
    assert.equal(gw.deadLetters.count(), 0);
    await page.locator('#dl-empty').waitFor({ state: 'visible' });

    // Live: a status change and an uplink alarm arrive without a reload.
    gw.status.buffer.pendingEvents = 99;
    await page.locator('#pending', { hasText: /^99$/ }).waitFor();
    alarm(gw);
    await page.locator('#overall', { hasText: 'ALARM' }).waitFor();
    await page.locator('#uplink-alarm', { hasText: 'PG_ERR_UPLINK_AUTH' }).waitFor();
    assert.equal(await page.locator('#resume').isVisible(), true);
    const resumeCall = page.waitForRequest((r) => r.url().endsWith('/api/uplink/resume'));
    await page.locator('#resume').click();
    await resumeCall;
    await page.locator('#uplink-kv', { hasText: 'resume requested' }).waitFor();
    assert.equal(gw.control.resumed, 1);
    await page.screenshot({ path: shot('-alarm'), fullPage: true });

    // The gateway goes away: the page says so instead of showing stale figures as current.
    await server.close();
    await page.locator('#lost').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#overall').textContent(), 'NO CONNECTION');
    await page.screenshot({ path: shot('-lost') });
    assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(p)), []);
  });

  it('reads on a tablet, and reconnects when the gateway comes back', async (t) => {
    const first = await startTestServer(t, fakeGateway().control);
    const browser = await launch(t);
    const { page, problems } = await open(browser, first.url, { width: 768, height: 1024 });
    await page.locator('#pending', { hasText: '4,321' }).waitFor();
    // A string: the test is compiled without the DOM library.
    const overflow = (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
    assert.ok(overflow <= 0, `no sideways scrolling on a tablet (overflow ${overflow}px)`);
    const lastError = await page.locator('#partitions td.bad').boundingBox();
    assert.ok(lastError && lastError.x + lastError.width <= 768, 'partition errors wrap instead of running off the screen');
    const replay = await page.locator('#dead-letters tr[data-dlid="42"]').getByRole('button', { name: 'Replay' }).boundingBox();
    assert.ok(replay && replay.x + replay.width <= 768, `Replay within reach on a tablet (right edge ${replay && replay.x + replay.width}px)`);
    await page.screenshot({ path: shot('-tablet'), fullPage: true });

    // Gateway restart: the page notices, then picks the feed up again by itself.
    await first.close();
    await page.locator('#lost').waitFor({ state: 'visible' });
    const gw = fakeGateway();
    gw.status.buffer.pendingEvents = 5;
    const second = await startWebServer({ config: { host: '127.0.0.1', port: first.port }, control: gw.control, logger: createLogger('silent') });
    t.after(() => second.close());
    await page.locator('#pending', { hasText: /^5$/ }).waitFor({ timeout: 10_000 });
    await page.locator('#lost').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#conn').textContent(), 'live');
    assert.deepEqual(problems.filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection/.test(p)), []);
  });

  it('shows plant data as text, never as markup', async (t) => {
    const gw = fakeGateway([
      { dlid: 5, at: '2026-11-26T10:00:00.000Z', connector: 'mes', code: 'PG_ERR_MQTT_PAYLOAD', reason: '<img src=x onerror="window.__pwned=1"><b>bold</b>', raw: Buffer.from('<script>window.__pwned=2</script>').toString('base64') },
    ]);
    gw.status.sources[0]!.details = { note: '<i>italic</i>' };
    const server = await startTestServer(t, gw.control);
    const browser = await launch(t);
    const { page, problems } = await open(browser, server.url);
    const row = page.locator('#dead-letters tr[data-dlid="5"]');
    await row.waitFor();
    assert.equal(await row.locator('td.reason').textContent(), '<img src=x onerror="window.__pwned=1"><b>bold</b>');
    assert.equal(await row.locator('img, b').count(), 0);
    await row.getByRole('button', { name: 'View' }).click();
    await page.locator('#dl-detail-payload', { hasText: '<script>window.__pwned=2</script>' }).waitFor();
    await page.keyboard.press('Escape');
    await page.locator('#sources summary').first().click();
    await page.locator('#sources', { hasText: '<i>italic</i>' }).waitFor();
    assert.equal(await page.evaluate('window.__pwned ?? 0'), 0);
    assert.deepEqual(problems, []);
  });
});
