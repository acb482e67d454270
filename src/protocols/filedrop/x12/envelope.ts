/**
 * Envelope validation (X12.5/X12.6): ISA…IEA, GS…GE, ST…SE nesting, counts and
 * control numbers, each problem naming its segment. node-x12 (strict) validates
 * the same interchange as a second opinion; it accepts a missing IEA and does not
 * say which segment is wrong, which is why these checks come first (FIELD-NOTES).
 */
import { X12Parser } from 'node-x12';
import { FileParseError } from '../records.js';
import { el, segName, type Segment } from './segments.js';

export interface Transaction {
  set: string;
  control: string;
  /** ST … SE inclusive. */
  segments: Segment[];
  interchange: { control: string; sender: string; receiver: string; date: string; time: string };
  group: { control: string; functionalId: string; version: string };
}

export function validateEnvelope(segments: Segment[], text: string, allowedSets: readonly string[]): Transaction[] {
  const out: Transaction[] = [];
  let i = 0;
  const fail = (s: Segment | undefined, element: string | undefined, reason: string): never => {
    throw new FileParseError({
      ...(s ? { segment: segName(s), line: s.line, column: element ?? s.column, raw: s.raw } : {}),
      reason,
    });
  };
  const last = segments[segments.length - 1];
  while (i < segments.length) {
    const isa = segments[i]!;
    if (isa.tag !== 'ISA') fail(isa, undefined, `expected an ISA segment (a new interchange) but found ${isa.tag}`);
    const interchange = { control: el(isa, 13), sender: el(isa, 6), receiver: el(isa, 8), date: el(isa, 9), time: el(isa, 10) };
    let groups = 0;
    i++;
    while (i < segments.length && segments[i]!.tag === 'GS') {
      const gs = segments[i]!;
      const group = { control: el(gs, 6), functionalId: el(gs, 1), version: el(gs, 8) };
      let sets = 0;
      i++;
      while (i < segments.length && segments[i]!.tag === 'ST') {
        const st = segments[i]!;
        const start = i;
        i++;
        while (i < segments.length && !['SE', 'ST', 'GE', 'IEA', 'GS', 'ISA'].includes(segments[i]!.tag)) i++;
        const se = segments[i];
        if (!se || se.tag !== 'SE') fail(se ?? last, undefined, `transaction set ${el(st, 1)} control ${el(st, 2)} (${segName(st)}) has no SE trailer before ${se ? se.tag : 'the end of the file'}`);
        const count = i - start + 1;
        if (el(se!, 1) !== String(count)) {
          fail(se, 'SE01', `SE01 says the transaction set has ${el(se!, 1)} segments but it has ${count} (ST to SE inclusive): segments are missing or the count is wrong`);
        }
        if (el(se!, 2) !== el(st, 2)) fail(se, 'SE02', `SE02 control number ${el(se!, 2)} does not match ST02 ${el(st, 2)} of ${segName(st)}`);
        if (!allowedSets.includes(el(st, 1))) {
          fail(st, 'ST01', `transaction set ${el(st, 1)} is not accepted by this inbox (accepted: ${allowedSets.join(', ')})`);
        }
        out.push({ set: el(st, 1), control: el(st, 2), segments: segments.slice(start, i + 1), interchange, group });
        sets++;
        i++;
      }
      const ge = segments[i];
      if (!ge || ge.tag !== 'GE') fail(ge ?? last, undefined, `functional group ${group.control} (${segName(gs)}) has no GE trailer${ge ? `; found ${ge.tag}` : ' (file cut off?)'}`);
      if (el(ge!, 1) !== String(sets)) fail(ge, 'GE01', `GE01 says the group has ${el(ge!, 1)} transaction sets but it has ${sets}`);
      if (el(ge!, 2) !== group.control) fail(ge, 'GE02', `GE02 control number ${el(ge!, 2)} does not match GS06 ${group.control} of ${segName(gs)}`);
      groups++;
      i++;
    }
    const iea = segments[i];
    if (!iea || iea.tag !== 'IEA') fail(iea ?? last, undefined, `interchange ${interchange.control} has no IEA trailer${iea ? `; found ${iea.tag}` : ': the file is incomplete (cut off during transfer?)'}`);
    if (el(iea!, 1) !== String(groups)) fail(iea, 'IEA01', `IEA01 says the interchange has ${el(iea!, 1)} functional groups but it has ${groups}`);
    if (el(iea!, 2) !== interchange.control) fail(iea, 'IEA02', `IEA02 control number ${el(iea!, 2)} does not match ISA13 ${interchange.control}`);
    i++;
  }
  if (out.length === 0) fail(segments[0], undefined, 'the interchange holds no transaction sets');

  // Second opinion from node-x12 in strict mode (element and segment structure).
  try {
    new X12Parser(true).parse(text);
  } catch (err) {
    fail(undefined, undefined, `X12 parser: ${(err as Error).message}`);
  }
  return out;
}
