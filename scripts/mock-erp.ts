/**
 * `npm run mock-erp [-- --port 8088 --host 127.0.0.1]`: runs the mock ERP
 * (scripts/mock-erp/server.ts) until SIGINT/SIGTERM. Prints its events URL on
 * the first line of stdout, so scripts can wait for it.
 */
import { parseArgs } from 'node:util';
import { startMockErp } from './mock-erp/server.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '8088' }, host: { type: 'string', default: '127.0.0.1' } },
  strict: true,
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be 0..65535, got ${values.port}`);
  process.exit(2);
}

const erp = await startMockErp({ host: values.host!, port });
process.stdout.write(`${erp.url}\n`);
process.stderr.write(`mock ERP: POST ${erp.url}; GET ${erp.baseUrl}/_report; POST ${erp.baseUrl}/_faults; POST ${erp.baseUrl}/_reset\n`);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void erp.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
