/**
 * Splits an X12 interchange into segments with their ordinal, line and column, so
 * every problem can name the segment a technician must look at. Delimiters come
 * from the ISA segment's fixed layout (X12.5): element separator at offset 3,
 * component separator at 104, segment terminator at 105. Line breaks after the
 * terminator (CRLF, LF) or none at all are accepted.
 */
import { FileParseError } from '../records.js';

export interface Segment {
  tag: string;
  /** elements[1] is the first element (X12 numbering: SE01 = elements[1]). */
  elements: string[];
  /** 1-based ordinal in the file. */
  ordinal: number;
  line: number;
  column: number;
  raw: string;
}

export interface Tokenized {
  segments: Segment[];
  elementSeparator: string;
  componentSeparator: string;
  segmentTerminator: string;
}

export function tokenize(text: string): Tokenized {
  const start = text.indexOf('ISA');
  if (start < 0 || text.slice(0, start).trim() !== '') {
    throw new FileParseError({ line: 1, column: 1, reason: 'not an X12 interchange: the file must start with an ISA segment' });
  }
  if (text.length < start + 106) throw new FileParseError({ segment: 'ISA (segment 1)', line: 1, reason: 'the ISA segment is shorter than its fixed 106 characters: the file is cut off or not X12' });
  const elementSeparator = text[start + 3]!;
  const componentSeparator = text[start + 104]!;
  const segmentTerminator = text[start + 105]!;
  if (/[A-Za-z0-9 ]/.test(elementSeparator) || elementSeparator === segmentTerminator) {
    throw new FileParseError({ segment: 'ISA (segment 1)', line: 1, reason: 'the ISA segment does not have the fixed X12 layout (element separator at position 4, terminator at 106)' });
  }

  const segments: Segment[] = [];
  let line = 1;
  let lineStart = 0;
  let pos = start;
  while (pos < text.length) {
    // Skip line breaks and blanks between segments.
    while (pos < text.length && (text[pos] === '\r' || text[pos] === '\n' || text[pos] === ' ')) {
      if (text[pos] === '\n') {
        line++;
        lineStart = pos + 1;
      }
      pos++;
    }
    if (pos >= text.length) break;
    let end = text.indexOf(segmentTerminator, pos);
    if (end < 0) end = text.length;
    const raw = text.slice(pos, end);
    const elements = raw.split(elementSeparator);
    const tag = elements[0]!.trim();
    segments.push({ tag, elements, ordinal: segments.length + 1, line, column: pos - lineStart + 1, raw });
    // A line break inside a segment (rare) still counts for the line numbers of later ones.
    for (let i = raw.indexOf('\n'); i >= 0; i = raw.indexOf('\n', i + 1)) {
      line++;
      lineStart = pos + i + 1;
    }
    pos = end + 1;
  }
  return { segments, elementSeparator, componentSeparator, segmentTerminator };
}

/** "SE (segment 23)" — how problems name a segment. */
export function segName(s: Segment): string {
  return `${s.tag} (segment ${s.ordinal})`;
}

export function el(s: Segment, n: number): string {
  return (s.elements[n] ?? '').trim();
}
