/**
 * `plantgate opcua list` and `plantgate opcua trust <thumbprint>`: the operator's
 * side of the OPC UA trust workflow. Works on the PKI folder alone, so it runs
 * while the daemon runs; the daemon's certificate manager watches trusted/ and
 * its reconnect loop opens the session on the next attempt.
 */
import type { Config } from '../config/schema.js';
import { findRejected, listCertificates, pkiRoot, trustRejected, type CertificateInfo } from '../protocols/opcua/pki.js';

export interface CliOutput {
  out(line: string): void;
  err(line: string): void;
}

const stdio: CliOutput = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) };

const USAGE = 'usage: plantgate opcua list | plantgate opcua trust <thumbprint>';

/** Returns the process exit code: 0 done, 1 nothing matched, 2 usage error. */
export async function opcuaTrust(args: string[], config: Config, io: CliOutput = stdio): Promise<number> {
  const root = pkiRoot(config.gateway.dataDir);
  const [verb, thumbprint] = args;
  if (verb === 'list') {
    const certs = listCertificates(root);
    if (certs.length === 0) io.out(`no server certificates in ${root} yet (trusted/certs and rejected/ are empty)`);
    for (const c of certs) io.out(line(c));
    return 0;
  }
  if (verb === 'trust' && thumbprint) {
    const matches = findRejected(root, thumbprint);
    if (matches.length === 0) {
      io.err(`PG_ERR_CLI_USAGE: no rejected certificate with thumbprint ${thumbprint} in ${root}/rejected; run 'plantgate opcua list' to see them`);
      return 1;
    }
    if (matches.length > 1) {
      io.err(`PG_ERR_CLI_USAGE: thumbprint ${thumbprint} is ambiguous (${matches.length} certificates); give more digits`);
      return 1;
    }
    const target = trustRejected(matches[0]!, root);
    io.out(`trusted ${matches[0]!.subject} (${matches[0]!.thumbprint}) → ${target}`);
    io.out('a running plantgate opens the session on its next reconnect attempt');
    return 0;
  }
  io.err(`PG_ERR_CLI_USAGE: ${USAGE}`);
  return 2;
}

function line(c: CertificateInfo): string {
  return `${c.store.padEnd(8)}  ${c.thumbprint}  ${c.subject}${c.applicationUri ? `  ${c.applicationUri}` : ''}${c.notAfter ? `  valid until ${c.notAfter.slice(0, 10)}` : ''}`;
}
