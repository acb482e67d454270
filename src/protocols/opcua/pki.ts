/**
 * plantgate's OPC UA PKI: one folder per gateway, `<dataDir>/opcua/pki`, in the
 * layout of OPC UA Part 12 / node-opcua-pki:
 *
 *   own/certs/client_certificate.pem   our application instance certificate
 *   own/private/private_key.pem        its key
 *   trusted/certs/                     server certificates the operator trusted
 *   rejected/                          server certificates seen and refused
 *
 * Invariants: an unknown server certificate is never trusted automatically; it
 * lands in rejected/ and the operator moves it to trusted/certs/ (by hand or with
 * `plantgate opcua trust <thumbprint>`). Nothing is written outside this folder:
 * node-opcua defaults to the home directory when it is given no manager.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';
import { convertPEMtoDER, exploreCertificate, makeSHA1Thumbprint, split_der } from 'node-opcua-crypto';

export interface OwnIdentity {
  certificateManager: OPCUACertificateManager;
  certificateFile: string;
  privateKeyFile: string;
  /** The ApplicationUri inside our certificate; the client must announce exactly this. */
  applicationUri: string;
}

export interface CertificateInfo {
  thumbprint: string;
  subject: string;
  applicationUri?: string;
  notAfter?: string;
  file: string;
  store: 'trusted' | 'rejected';
}

export function pkiRoot(dataDir: string): string {
  return join(dataDir, 'opcua', 'pki');
}

/** Our own ApplicationUri when we create the certificate; an existing certificate's own URI wins. */
export function defaultApplicationUri(gatewayId: string): string {
  return `urn:${hostname()}:plantgate:${gatewayId}`;
}

/**
 * Opens the PKI (creating folders, key and certificate on first start) and returns
 * the identity the client must use. The manager is shared by the connections of a
 * connector across reconnects; dispose it once when the source stops.
 */
export async function openOwnIdentity(dataDir: string, gatewayId: string): Promise<OwnIdentity> {
  const rootFolder = pkiRoot(dataDir);
  mkdirSync(rootFolder, { recursive: true });
  const certificateManager = new OPCUACertificateManager({ rootFolder, automaticallyAcceptUnknownCertificate: false });
  await certificateManager.initialize();
  const certificateFile = join(certificateManager.rootDir, 'own', 'certs', 'client_certificate.pem');
  if (!existsSync(certificateFile)) {
    await certificateManager.createSelfSignedCertificate({
      applicationUri: defaultApplicationUri(gatewayId),
      dns: [hostname()],
      outputFile: certificateFile,
      subject: `/CN=plantgate-${gatewayId}/O=plantgate`,
      startDate: new Date(),
      validity: 365 * 10,
    });
  }
  const info = describeCertificate(readDer(certificateFile), certificateFile, 'trusted');
  return {
    certificateManager,
    certificateFile,
    privateKeyFile: certificateManager.privateKey,
    applicationUri: info.applicationUri ?? defaultApplicationUri(gatewayId),
  };
}

function readDer(file: string): Buffer {
  const text = readFileSync(file);
  const s = text.toString('latin1');
  return s.includes('-----BEGIN CERTIFICATE-----') ? convertPEMtoDER(s) : text;
}

export function thumbprintOf(der: Buffer): string {
  const first = split_der(der)[0] ?? der;
  return makeSHA1Thumbprint(first).toString('hex');
}

export function describeCertificate(der: Buffer, file: string, store: CertificateInfo['store']): CertificateInfo {
  const first = split_der(der)[0] ?? der;
  const thumbprint = thumbprintOf(first);
  try {
    const tbs = exploreCertificate(first).tbsCertificate;
    const subject = formatName(tbs.subject as unknown as { entries?: { oid: string; name?: string; value: unknown }[] } & Record<string, unknown>);
    const uri = tbs.extensions?.subjectAltName?.uniformResourceIdentifier?.[0];
    return {
      thumbprint,
      subject,
      file,
      store,
      ...(uri ? { applicationUri: uri } : {}),
      notAfter: tbs.validity.notAfter.toISOString(),
    };
  } catch {
    return { thumbprint, subject: '(unreadable certificate)', file, store };
  }
}

const SHORT_NAMES: Record<string, string> = {
  commonName: 'CN',
  organizationName: 'O',
  organizationalUnitName: 'OU',
  localityName: 'L',
  stateOrProvinceName: 'ST',
  countryName: 'C',
  domainComponent: 'DC',
};

/** A distinguished name as `CN=Press1, O=ACME` (RFC 4514 order: most specific first). */
function formatName(name: ({ entries?: { oid: string; name?: string; value: unknown }[] } & Record<string, unknown>) | undefined): string {
  if (!name) return '';
  const entries = Array.isArray(name.entries)
    ? [...name.entries].reverse().map((e) => [e.name ?? e.oid, e.value] as const)
    : Object.entries(name).filter(([, v]) => typeof v === 'string');
  return entries.map(([k, v]) => `${SHORT_NAMES[k] ?? k}=${String(v)}`).join(', ');
}

/** Certificates in trusted/certs and rejected/, for `plantgate opcua list` and the status page. */
export function listCertificates(root: string): CertificateInfo[] {
  const out: CertificateInfo[] = [];
  for (const [store, dir] of [
    ['trusted', join(root, 'trusted', 'certs')],
    ['rejected', join(root, 'rejected')],
  ] as const) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      if (!/\.(pem|der|crt|cer)$/i.test(name)) continue;
      const file = join(dir, name);
      try {
        out.push(describeCertificate(readDer(file), file, store));
      } catch {
        out.push({ thumbprint: '?', subject: '(unreadable file)', file, store });
      }
    }
  }
  return out;
}

/** Finds a rejected certificate by its thumbprint (or an unambiguous prefix of at least 8 hex digits). */
export function findRejected(root: string, thumbprint: string): CertificateInfo[] {
  const want = thumbprint.toLowerCase().replace(/[^0-9a-f]/g, '');
  if (want.length < 8) return [];
  return listCertificates(root).filter((c) => c.store === 'rejected' && c.thumbprint.startsWith(want));
}

/** Moves a rejected certificate to trusted/certs, as the OPC UA PKI layout defines; a running client picks it up. */
export function trustRejected(cert: CertificateInfo, root: string): string {
  const dir = join(root, 'trusted', 'certs');
  mkdirSync(dir, { recursive: true });
  const target = join(dir, cert.file.split(/[\\/]/).pop()!);
  renameSync(cert.file, target);
  return target;
}

/** The rejected certificate node-opcua recorded for this server certificate, if any. */
export function rejectedMatching(root: string, serverCertificate: Buffer | undefined): CertificateInfo | undefined {
  if (!serverCertificate || serverCertificate.length === 0) return undefined;
  const tp = thumbprintOf(serverCertificate);
  return listCertificates(root).find((c) => c.thumbprint === tp) ?? describeCertificate(serverCertificate, '(not recorded)', 'rejected');
}
