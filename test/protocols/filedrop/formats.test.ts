/** CSV, XML, JSON and JSON Lines inboxes, end to end through a real LMDB buffer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { data, firstProblem, openInbox } from './harness.js';

describe('filedrop formats', () => {
  it('reads a receipts CSV with BOM, CRLF, quoted commas and doubled quotes; SSCCs and lots stay strings', async (t) => {
    const inbox = await openInbox(t, {
      format: { kind: 'csv' },
      mapping: {
        type: 'goods.receipt',
        fields: {
          receipt: 'ReceiptNo',
          order: 'PO',
          sscc: { from: 'SSCC', required: true },
          item: 'Item',
          description: 'Description',
          lot: 'Lot',
          quantity: { from: 'Qty', as: 'number', required: true },
          unit: 'UoM',
          receivedAt: { from: 'ReceivedAt', as: 'date' },
          line: 'Line',
        },
        subjectField: 'receipt',
        timeField: 'receivedAt',
      },
    });
    inbox.drop('receipts-bom-crlf.csv');
    await inbox.waitSettled(1);
    assert.deepEqual(inbox.archived().map((n) => n.replace(/^\d{4}-\d{2}-\d{2}\//, '')), ['receipts-bom-crlf.csv']);
    const events = await inbox.events();
    assert.equal(events.length, 3);
    const [a, b, c] = events.map(data);
    assert.equal(a!['sscc'], '003123456789012345');
    assert.equal(a!['lot'], '00L4711');
    assert.equal(a!['description'], 'Bolt M8x40, zinc plated');
    assert.equal(b!['description'], 'Washer 8 mm "DIN 125"');
    assert.equal(c!['description'], 'Gasket, EPDM, 3" flange');
    assert.equal(c!['quantity'], 36.5);
    assert.equal(b!['quantity'], 2500);
    assert.equal(events[0]!['type'], 'goods.receipt');
    assert.equal(events[0]!['subject'], 'R-100234');
    assert.equal(events[0]!['time'], '2024-03-04T06:12:00.000Z');
    assert.equal(events[0]!['partitionkey'], 'site1/L1');
    assert.equal(events[2]!['partitionkey'], 'site1/L2');
    const file = a!['file'] as { name: string; sha256: string; record: number };
    assert.equal(file.name, 'receipts-bom-crlf.csv');
    assert.match(file.sha256, /^[0-9a-f]{64}$/);
    assert.equal(file.record, 1);
    assert.equal(events[0]!['id'], `fd:wms:${file.sha256.slice(0, 32)}:1`);
    assert.equal(Object.keys(a!).includes('ReceiptNo'), false, 'only mapped fields are passed on');
  });

  it('reads a European windows-1252 export: ; delimiter, decimal comma, thousands dot, dd.mm.yyyy, umlauts, bare quote', async (t) => {
    const inbox = await openInbox(t, {
      format: { kind: 'csv', delimiter: ';', encoding: 'windows-1252' },
      mapping: {
        type: 'inventory.movement',
        fields: {
          deliveryNote: 'Lieferschein',
          item: 'Artikel',
          description: 'Bezeichnung',
          lot: 'Charge',
          quantity: { from: 'Menge', as: 'number' },
          unit: 'Einheit',
          postedOn: { from: 'Buchungsdatum', as: 'date', format: 'dd.mm.yyyy' },
          location: 'Lagerort',
        },
        decimalSeparator: ',',
        thousandsSeparator: '.',
        utcOffset: '+01:00',
        timeField: 'postedOn',
        subject: '{deliveryNote}/{lot}',
      },
    });
    inbox.drop('bestand-de-1252.csv');
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.equal(events.length, 3);
    const d = events.map(data);
    assert.equal(d[0]!['quantity'], 1250.5);
    assert.equal(d[2]!['quantity'], 3000);
    assert.equal(d[0]!['lot'], '0001234');
    assert.equal(d[0]!['description'], 'Schraube 6" verzinkt');
    assert.equal(d[0]!['location'], 'Hauptlager Süd');
    assert.equal(d[1]!['location'], 'Außenlager Nord');
    assert.equal(d[2]!['description'], 'Dichtung Größe XL');
    assert.equal(d[0]!['postedOn'], '2024-03-03T23:00:00.000Z');
    assert.equal(events[0]!['time'], '2024-03-03T23:00:00.000Z');
    assert.equal(events[0]!['subject'], '80012345/0001234');
    assert.equal(events[0]!['partitionkey'], 'site1/wms', '{line} falls back to the connector name');
  });

  it('streams a large windows-1252 CSV across read blocks: umlauts, quoted line breaks and the line of a bad record stay exact', async (t) => {
    const inbox = await openInbox(t, {
      format: { kind: 'csv', delimiter: ';', encoding: 'windows-1252' },
      mapping: { type: 'inventory.movement', fields: { note: 'Lieferschein', text: 'Text', quantity: { from: 'Menge', as: 'number' } }, decimalSeparator: ',', subjectField: 'note' },
      badRecords: 'acceptGood',
    });
    const n = 9000; // ~500 KiB: many 64 KiB blocks, rows and characters cut at their edges
    const lines = ['Lieferschein;Text;Menge'];
    const expected: string[] = [];
    let badLine = 0;
    for (let i = 1; i <= n; i++) {
      const text = i % 7 === 0 ? `Größe ${i}\r\nzweite Zeile "ü"` : `Außenlager Süd ${i} ${'ä'.repeat((i % 40) + 1)}`;
      const quoted = i % 7 === 0 ? `"${text.replace(/"/g, '""')}"` : text;
      if (i === n - 3) {
        badLine = lines.reduce((sum, l) => sum + l.split('\r\n').length, 0) + 1;
        lines.push(`LS-${i};${quoted};viel`);
        continue;
      }
      lines.push(`LS-${i};${quoted};${i},5`);
      expected.push(text);
    }
    const iconv = (await import('iconv-lite')).default;
    inbox.drop('gross.csv', iconv.encode(lines.join('\r\n') + '\r\n', 'win1252'));
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.equal(events.length, n - 1);
    assert.deepEqual(events.map((e) => data(e)['text']), expected);
    assert.equal(data(events[6]!)['quantity'], 7.5);
    const problem = firstProblem(inbox, 'gross.csv');
    assert.equal(problem['line'], badLine);
    assert.equal(problem['raw'], `LS-${n - 3};Außenlager Süd ${n - 3} ${'ä'.repeat(((n - 3) % 40) + 1)};viel`);
  });

  it('reads an XML export with a default namespace, CDATA, attributes and repeated serials', async (t) => {
    const inbox = await openInbox(t, {
      format: { kind: 'xml', recordPath: '/ReceiptExport/Receipts/Receipt', arrays: ['Serial'] },
      mapping: {
        type: 'goods.receipt',
        fields: {
          receipt: '@id',
          order: 'Order',
          item: 'Item',
          description: 'Description',
          lot: 'Lot',
          quantity: { from: 'Quantity.#text', as: 'number' },
          unit: 'Quantity.@unit',
          receivedAt: { from: 'ReceivedAt', as: 'date' },
          serials: 'Serials.Serial',
          note: 'Note',
        },
        subjectField: 'receipt',
        timeField: 'receivedAt',
      },
    });
    inbox.drop('receipts-ns-cdata.xml');
    await inbox.waitSettled(1);
    const events = await inbox.events();
    assert.equal(events.length, 2);
    const [a, b] = events.map(data);
    assert.equal(a!['description'], 'Cable tie 200 mm <black> & UV resistant');
    assert.equal(b!['description'], 'Sleeve "heavy"');
    assert.deepEqual(a!['serials'], ['SN-0001', 'SN-0002', 'SN-0003']);
    assert.deepEqual(b!['serials'], ['SN-0100'], 'format.arrays keeps a single serial a list');
    assert.equal(a!['lot'], '0000451');
    assert.equal(a!['quantity'], 1000);
    assert.equal(a!['unit'], 'PCE');
    assert.equal(a!['note'], 'dock 4');
    assert.equal(events[0]!['subject'], 'R-5001');
    assert.equal(events[0]!['time'], '2024-03-04T05:45:00.000Z');
    assert.equal(events[1]!['partitionkey'], 'site1/wms');
  });

  it('honours the encoding of the XML declaration (ISO-8859-1) and a UTF-8 BOM', async (t) => {
    const inbox = await openInbox(t, { format: { kind: 'xml', recordPath: '/Bestand/Position' }, mapping: { type: 'inventory.movement', subjectField: 'Charge' } });
    const xml = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<Bestand><Position><Charge>0007</Charge><Ort>Außenlager Süd</Ort></Position></Bestand>\n';
    inbox.drop('latin1.xml', Buffer.from(xml, 'latin1'));
    inbox.drop('bom.xml', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml.replace('ISO-8859-1', 'UTF-8').replace('0007', '0008'), 'utf8')]));
    await inbox.waitSettled(2);
    const events = await inbox.events();
    assert.deepEqual(events.map((e) => [e['subject'], data(e)['Ort']]).sort(), [
      ['0007', 'Außenlager Süd'],
      ['0008', 'Außenlager Süd'],
    ]);
  });

  it('reads JSON (record path, also a document over many read blocks) and JSON Lines; without field mappings records pass through', async (t) => {
    const json = await openInbox(t, { format: { kind: 'json', recordPath: 'export.lines' }, mapping: { type: 'goods.receipt', subjectField: 'lot' } });
    json.drop('r.json', JSON.stringify({ export: { lines: [{ lot: '007', qty: 1, ts: 1 }, { lot: '008', qty: 2 }] } }));
    await json.waitSettled(1);
    const je = await json.events();
    assert.deepEqual(je.map((e) => e['subject']), ['007', '008']);
    assert.equal(data(je[1]!)['qty'], 2);

    // A document over several 64 KiB read blocks, read whole: every block's bytes must survive the next read.
    const lines = Array.from({ length: 3000 }, (_, i) => ({ lot: `L-${i}`, text: `Lager Süd ${'ä€'.repeat(i % 29)}`, qty: i }));
    json.drop('big.json', JSON.stringify({ export: { lines } }));
    await json.waitSettled(2);
    const big = await json.events(); // the two events above were taken already
    assert.equal(big.length, lines.length);
    assert.deepEqual(big.map((e) => ({ lot: data(e)['lot'], text: data(e)['text'], qty: data(e)['qty'] })), lines);

    const jsonl = await openInbox(t, { format: { kind: 'jsonl' }, mapping: { type: 'quality.result', timeField: 'at', fields: { at: { from: 'at', as: 'date' }, ok: { from: 'pass', as: 'boolean' } } } });
    jsonl.drop('q.jsonl', '{"at":"2024-03-04T10:00:00Z","pass":"ja"}\r\n\r\n{"at":"2024-03-04T10:01:00Z","pass":false}\n');
    await jsonl.waitSettled(1);
    const le = await jsonl.events();
    assert.deepEqual(le.map((e) => data(e)['ok']), [true, false]);
    assert.deepEqual(le.map((e) => e['time']), ['2024-03-04T10:00:00.000Z', '2024-03-04T10:01:00.000Z']);
  });
});
