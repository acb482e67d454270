/**
 * XML reader on saxes (streaming; only the current record is held). Elements are
 * matched by local name, so a default namespace or prefixes do not matter. A record
 * element becomes an object: child elements by local name (repeated ones, or those
 * listed in format.arrays, as arrays), attributes as `@name`, text (CDATA included)
 * as the value of a leaf or `#text` of a mixed element. The encoding named in the
 * XML declaration (ISO-8859-1, windows-1252, ...) is honoured; default UTF-8.
 */
import iconv from 'iconv-lite';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import type { FiledropFormat } from './config.js';
import { FileParseError, type ReadItem, type RecordReader } from './records.js';

type XmlOptions = Extract<FiledropFormat, { kind: 'xml' }>;

interface Node {
  name: string;
  attrs: Record<string, string>;
  children: Record<string, unknown>;
  text: string;
  hasChildren: boolean;
}

export function xmlReader(opts: XmlOptions): RecordReader {
  const path = opts.recordPath.split('/').filter(Boolean);
  const arrays = new Set(opts.arrays ?? []);

  return async function* read(input): AsyncIterable<ReadItem[]> {
    const parser = new SaxesParser({ xmlns: true, position: true });
    let queue: ReadItem[] = [];
    const stack: string[] = [];
    let nodes: Node[] = []; // open elements inside the current record (nodes[0] = the record)
    let position = 0;
    let recordLine = 0;
    let failure: Error | undefined;

    parser.on('error', (err) => {
      failure ??= err;
    });
    parser.on('opentag', (tag: SaxesTagNS) => {
      stack.push(tag.local);
      if (nodes.length === 0) {
        if (stack.length !== path.length || !stack.every((n, i) => n === path[i])) return;
        recordLine = parser.line;
      }
      const attrs: Record<string, string> = {};
      for (const a of Object.values(tag.attributes)) if (a.prefix !== 'xmlns' && a.local !== 'xmlns') attrs[`@${a.local}`] = a.value;
      nodes.push({ name: tag.local, attrs, children: {}, text: '', hasChildren: false });
    });
    const onText = (t: string) => {
      if (nodes.length) nodes[nodes.length - 1]!.text += t;
    };
    parser.on('text', onText);
    parser.on('cdata', onText);
    parser.on('closetag', () => {
      stack.pop();
      const node = nodes.pop();
      if (!node) return;
      const value = toValue(node);
      const parent = nodes[nodes.length - 1];
      if (parent) {
        parent.hasChildren = true;
        const prev = parent.children[node.name];
        if (prev === undefined) parent.children[node.name] = arrays.has(node.name) ? [value] : value;
        // toValue never returns an array, so an array here is a list this reader built.
        else if (Array.isArray(prev)) prev.push(value);
        else parent.children[node.name] = [prev, value];
        return;
      }
      position++;
      const fields = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : { '#text': value };
      queue.push({ record: { position, where: { line: recordLine }, fields, raw: JSON.stringify(fields) } });
      nodes = [];
    });

    let decoder: ReturnType<typeof iconv.getDecoder> | undefined;
    const drain = function* (): Generator<ReadItem[]> {
      if (!queue.length) return;
      yield queue;
      queue = [];
    };
    for await (const chunk of input) {
      if (!decoder) {
        const declared = /^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']/.exec(chunk.subarray(0, 200).toString('latin1'))?.[1];
        const encoding = declared && iconv.encodingExists(declared) ? declared : 'utf8';
        decoder = iconv.getDecoder(encoding); // strips a UTF-8 BOM
      }
      parser.write(decoder.write(chunk));
      if (failure) throw xmlError(failure, parser);
      yield* drain();
    }
    parser.write(decoder?.end() ?? '');
    parser.close();
    if (failure) throw xmlError(failure, parser);
    yield* drain();
    if (position === 0 && !failure) {
      // An empty export is legal, but a wrong recordPath is the usual cause: say so.
      throw new FileParseError({ reason: `no element at ${opts.recordPath} (format.recordPath): the file holds no records or the path is wrong` });
    }
  };
}

function toValue(n: Node): unknown {
  const hasAttrs = Object.keys(n.attrs).length > 0;
  const text = n.text.trim();
  if (!n.hasChildren && !hasAttrs) return text;
  const out: Record<string, unknown> = { ...n.attrs, ...n.children };
  if (text) out['#text'] = text;
  return out;
}

function xmlError(err: Error, parser: SaxesParser): FileParseError {
  // saxes prefixes messages with "file:line:column: "; keep the reason only.
  const reason = err.message.replace(/^[^:]*:\d+:\d+: /, '');
  return new FileParseError({ line: parser.line, column: parser.column + 1, reason: `not well-formed XML: ${reason}` });
}
