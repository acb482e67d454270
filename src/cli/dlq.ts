/** `plantgate dlq list | show <id> | replay <id> | delete <id>` and `plantgate export`, through the daemon's API. */
import { writeFileSync } from 'node:fs';
import type { DeadLetter } from '../buffer/types.js';
import type { Config } from '../config/schema.js';
import { api } from './api-client.js';

type Out = (line: string) => void;
const stdout: Out = (l) => process.stdout.write(`${l}\n`);
const PAGE = 500;

export const DLQ_USAGE = 'usage: plantgate dlq list | show <id> | replay <id> | delete <id>';

export async function dlqCommand(config: Config, args: string[], out: Out = stdout): Promise<number> {
  const [verb, idArg] = args;
  const id = Number(idArg);
  if (verb === 'list') {
    const page = await api<{ count: number; items: DeadLetter[] }>(config, 'GET', `/api/dead-letters?limit=${PAGE}`);
    out(`${page.count} dead letter(s)`);
    for (const d of page.items) out(`${d.dlid}\t${d.at}\t${d.connector}\t${d.code}\t${d.event ? `event ${String(d.event['id'])}` : 'raw'}\t${d.reason}`);
    return 0;
  }
  if (!['show', 'replay', 'delete'].includes(verb ?? '') || !Number.isInteger(id)) {
    out(DLQ_USAGE);
    return 2;
  }
  if (verb === 'show') {
    const d = await api<DeadLetter>(config, 'GET', `/api/dead-letters/${id}`);
    out(JSON.stringify({ ...d, ...(d.raw ? { rawText: Buffer.from(d.raw, 'base64').toString('utf8') } : {}) }, null, 2));
  } else if (verb === 'replay') {
    const r = await api<{ sequence: number; partition: string }>(config, 'POST', `/api/dead-letters/${id}/replay`);
    out(`dead letter ${id} committed again as sequence ${r.sequence} in partition ${r.partition}`);
  } else {
    await api(config, 'DELETE', `/api/dead-letters/${id}`);
    out(`dead letter ${id} deleted`);
  }
  return 0;
}

/** Writes every dead letter as JSON Lines (to a file, or stdout) for a support case or a bulk fix. */
export async function exportCommand(config: Config, file: string | undefined, out: Out = stdout): Promise<number> {
  const lines: string[] = [];
  let after = 0;
  for (;;) {
    const page = await api<{ items: DeadLetter[] }>(config, 'GET', `/api/dead-letters?limit=${PAGE}&after=${after}`);
    // List pages leave raw payloads out (rawBytes only); fetch those entries whole.
    for (const d of page.items) lines.push(JSON.stringify((d as { rawBytes?: number }).rawBytes ? await api<DeadLetter>(config, 'GET', `/api/dead-letters/${d.dlid}`) : d));
    if (page.items.length < PAGE) break;
    after = page.items[page.items.length - 1]!.dlid;
  }
  if (file) {
    writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '');
    out(`exported ${lines.length} dead letter(s) to ${file}`);
  } else {
    for (const l of lines) out(l);
  }
  return 0;
}
