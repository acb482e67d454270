/** X12 004010 944 / 945 / 947 inboxes: mapping to events and envelope rejections. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { data, firstProblem, openInbox, readReport } from './harness.js';

const x12 = { format: { kind: 'x12' as const }, mapping: { utcOffset: 'Z' } };

describe('filedrop X12', () => {
  it('944 with LX loops and CRLF: one goods.receipt per W07 with header context, lots, serials, SSCC', async (t) => {
    const inbox = await openInbox(t, x12);
    inbox.drop('944-lx-crlf.x12');
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.equal(events.length, 2);
    assert.deepEqual(events.map((e) => e['type']), ['goods.receipt', 'goods.receipt']);
    assert.equal(events[0]!['subject'], 'WR-88001');
    assert.equal(events[0]!['time'], '2024-03-04T00:00:00.000Z');
    const [a, b] = events.map(data);
    assert.equal(a!['depositorOrderNumber'], '4500012345');
    assert.equal(a!['shipmentId'], 'SHP-5521');
    assert.deepEqual(a!['warehouse'], { name: 'DC North', idQualifier: '9', id: '0012345670001', address: { street: 'Hafenstrasse 12', city: 'Hamburg', state: '', postalCode: '20457', country: 'DE' } });
    assert.equal((a!['depositor'] as { name: string }).name, 'ACME Components GmbH');
    assert.deepEqual(a!['references'], { BM: 'BOL-77812' });
    assert.equal((a!['dates'] as Record<string, string>)['09'], '2024-03-04T06:45:00.000Z');
    assert.equal(a!['lineNumber'], '1');
    assert.equal(a!['quantity'], 120);
    assert.equal(a!['unit'], 'CA');
    assert.equal(a!['upc'], '012345678905');
    assert.deepEqual(a!['productIds'], { VN: 'MAT-1001', BP: 'BUY-1001' });
    assert.equal(a!['sku'], 'MAT-1001');
    assert.equal(a!['lot'], 'LOT-A1');
    assert.deepEqual(a!['serials'], ['SER-0001', 'SER-0002']);
    assert.equal(a!['description'], 'Bolt M8x40 zinc');
    assert.equal(b!['lot'], 'LOT-B7', 'lot from N9*LT');
    assert.deepEqual(b!['sscc'], ['003123456789012369'], 'SSCC from MAN*GM (leading application identifier 00 removed)');
    assert.equal((a!['x12'] as Record<string, unknown>)['interchange'], '000004711');
  });

  it('944 without LX loops and without line breaks', async (t) => {
    const inbox = await openInbox(t, x12);
    inbox.drop('944-flat-nobreaks.x12');
    await inbox.waitSettled(1);
    const d = (await inbox.events()).map(data);
    assert.deepEqual(d.map((x) => [x['lineNumber'], x['sku'], x['quantity'], x['lot']]), [
      ['1', 'MAT-3001', 10, 'L-300'],
      ['2', 'MAT-3002', 5, 'L-301'],
    ]);
  });

  it('945 with MAN packs: one shipment.confirmation per W12, SSCC per pack, time from G62*11', async (t) => {
    const inbox = await openInbox(t, x12);
    inbox.drop('945-packs-crlf.x12');
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.equal(events.length, 3);
    assert.equal(events[0]!['type'], 'shipment.confirmation');
    assert.equal(events[0]!['subject'], 'SHP-10001');
    assert.equal(events[0]!['time'], '2024-03-04T15:30:00.000Z');
    const d = events.map(data);
    assert.deepEqual(d.map((x) => [x['sku'], x['quantity'], x['lot'], (x['sscc'] as string[]).join()]), [
      ['MAT-1001', 10, 'LOT-A1', '003123456789000011'],
      ['MAT-1002', 4, 'LOT-A2', '003123456789000011'],
      ['MAT-2040', 6, 'LOT-B7', '003123456789000028'],
    ]);
    assert.deepEqual(d[0]!['serials'], ['SER-9001']);
    assert.equal(d[2]!['quantityDifference'], 2);
    assert.equal(d[0]!['depositorOrderNumber'], 'SO-900123');
    assert.equal(d[0]!['purchaseOrderNumber'], 'PO-777');
    assert.equal((d[0]!['parties'] as Record<string, { name: string }>)['ST']!.name, 'Customer Plant 2');
  });

  it('947 without line breaks, two transaction sets: one inventory.adjustment per W19', async (t) => {
    const inbox = await openInbox(t, x12);
    inbox.drop('947-nobreaks.x12');
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.deepEqual(events.map((e) => e['type']), Array(3).fill('inventory.adjustment'));
    assert.deepEqual(events.map((e) => e['subject']), ['ADJ-5001', 'ADJ-5001', 'ADJ-5002']);
    const d = events.map(data);
    assert.deepEqual(d.map((x) => [x['reasonCode'], x['quantity'], x['lot'] ?? null]), [
      ['AU', -5, 'LOT-A1'],
      ['07', -2, null],
      ['56', 12, 'LOT-B9'],
    ]);
    assert.equal(d[0]!['depositorAdjustmentNumber'], 'DADJ-77');
  });

  it('rejects a 945 with a wrong SE count, naming the segment; nothing reaches the buffer', async (t) => {
    const inbox = await openInbox(t, x12);
    inbox.drop('945-wrong-se.x12');
    await inbox.waitSettled(1);
    assert.deepEqual(inbox.errors(), ['945-wrong-se.x12', '945-wrong-se.x12.error.json']);
    const report = readReport(inbox, '945-wrong-se.x12');
    const p = (report['problems'] as Record<string, unknown>[])[0]!;
    assert.equal(p['segment'], 'SE (segment 20)');
    assert.equal(p['column'], 'SE01');
    assert.equal(p['line'], 20);
    assert.equal(p['raw'], 'SE*20*0102');
    assert.match(String(p['reason']), /SE01 says the transaction set has 20 segments but it has 18/);
    assert.equal(report['outcome'], 'rejected');
    assert.equal(inbox.buffer.stats().pendingEvents, 0);
    assert.equal(inbox.source.status().counters['filesRejected'], 1);
  });

  it('rejects an interchange without IEA (cut off in transfer)', async (t) => {
    const inbox = await openInbox(t, x12);
    inbox.drop('944-no-iea.x12');
    await inbox.waitSettled(1);
    const p = firstProblem(inbox, '944-no-iea.x12');
    assert.match(String(p['reason']), /no IEA trailer.*incomplete/);
    assert.equal(inbox.buffer.stats().pendingEvents, 0);
  });

  it('rejects a transaction set the inbox does not accept', async (t) => {
    const inbox = await openInbox(t, { format: { kind: 'x12', transactionSets: ['944'] } });
    inbox.drop('947-nobreaks.x12');
    await inbox.waitSettled(1);
    const p = firstProblem(inbox, '947-nobreaks.x12');
    assert.match(String(p['reason']), /transaction set 947 is not accepted by this inbox/);
  });
});
