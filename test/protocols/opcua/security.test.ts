/**
 * SignAndEncrypt / Basic256Sha256 with certificates in temp PKIs: an unknown server
 * certificate is rejected with a clear message until an operator trusts it.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { OPCUACertificateManager } from 'node-opcua';
import { convertPEMtoDER, exploreCertificate, makeSHA1Thumbprint } from 'node-opcua-crypto';
import { opcuaTrust, type CliOutput } from '../../../src/cli/opcua-trust.js';
import { parseConfig } from '../../../src/config/load.js';
import { createSource } from '../../../src/protocols/opcua/index.js';
import { pkiRoot } from '../../../src/protocols/opcua/pki.js';
import { waitFor } from '../../helpers/net.js';
import { contractBuffer } from '../../helpers/source-contract.js';
import { tempDir } from '../../helpers/tmp.js';
import { RecordingSink, context, opcuaConfig, sharedSim } from './helpers.js';

// strictUserPki: X.509 user certificates must be in the sim's trusted user PKI (anonymous and username still work).
const sim = sharedSim({ user: 'operator:pw-1', strictUserPki: true });

const HOME_PKI = join(homedir(), '.config', 'node-opcua-default-nodejs');

test('SignAndEncrypt/Basic256Sha256: unknown server certificate rejected until trusted with `plantgate opcua trust`, then the session opens', async (t) => {
  const homeBefore = existsSync(HOME_PKI);
  const server = await sim();
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const sink = new RecordingSink(buffer.sinkFor('plc1'));
  const cfg = opcuaConfig({
    endpointUrl: server.endpointUrl,
    securityMode: 'SignAndEncrypt',
    securityPolicy: 'Basic256Sha256',
    reconnectMinDelayMs: 200,
    reconnectMaxDelayMs: 400,
    publishingIntervalMs: 50,
    items: [{ nodeId: server.id('Machine.PartCount'), name: 'partCount', samplingIntervalMs: 50 }],
  });
  const source = createSource(cfg, context(sink, dataDir));
  t.after(() => source.stop());
  await source.start();

  let st = source.status();
  assert.equal(st.state, 'degraded');
  assert.equal(st.lastError?.code, 'PG_ERR_OPCUA_CERT_UNTRUSTED');
  const thumbprint = /thumbprint ([0-9a-f]{40})/.exec(st.lastError!.message)?.[1];
  assert.ok(thumbprint, `the message names the thumbprint: ${st.lastError!.message}`);
  assert.match(st.lastError!.message, /plantgate opcua trust [0-9a-f]{40}/);
  assert.match(st.lastError!.message, /subject .*NodeOPCUA/);

  // Still refused a while later: never trusted by default.
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(sink.committed.length, 0);

  // Our own certificate: created on first start, under the data dir, with the ApplicationUri we announce.
  const own = readFileSync(join(pkiRoot(dataDir), 'own', 'certs', 'client_certificate.pem'), 'latin1');
  const uri = exploreCertificate(convertPEMtoDER(own)).tbsCertificate.extensions?.subjectAltName?.uniformResourceIdentifier?.[0];
  assert.match(String(uri), /^urn:.*:plantgate:test-gw$/);

  const lines: string[] = [];
  const io: CliOutput = { out: (l) => lines.push(l), err: (l) => lines.push(l) };
  const { config } = parseConfig(`gateway:\n  dataDir: ${JSON.stringify(dataDir)}\n`);
  assert.equal(await opcuaTrust(['list'], config, io), 0);
  assert.ok(lines.some((l) => l.startsWith('rejected') && l.includes(thumbprint)), lines.join('\n'));
  assert.equal(await opcuaTrust(['trust', 'deadbeefdead'], config, io), 1);
  assert.equal(await opcuaTrust(['trust', thumbprint], config, io), 0);
  assert.ok(existsSync(join(pkiRoot(dataDir), 'trusted', 'certs')));

  await waitFor(() => sink.committed.length >= 2, 'data changes over the encrypted session once trusted', 15_000);
  st = source.status();
  assert.equal(st.state, 'running');
  const details = st.details as { servers: { securityMode: string; securityPolicy: string }[] };
  assert.equal(details.servers[0]!.securityMode, 'SignAndEncrypt');
  assert.equal(existsSync(HOME_PKI), homeBefore, 'nothing written to the home directory');
});

test('security None opens without any certificate exchange and reports usage errors of the CLI', async (t) => {
  const server = await sim();
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const sink = new RecordingSink(buffer.sinkFor('plc1'));
  const source = createSource(opcuaConfig({ endpointUrl: server.endpointUrl, items: [{ nodeId: server.id('Machine.State') }] }), context(sink, dataDir));
  t.after(() => source.stop());
  await source.start();
  assert.equal(source.status().state, 'running');
  await waitFor(() => sink.committed.length >= 1, 'a data change', 10_000);
  const lines: string[] = [];
  const { config } = parseConfig(`gateway:\n  dataDir: ${JSON.stringify(dataDir)}\n`);
  assert.equal(await opcuaTrust(['bogus'], config, { out: (l) => lines.push(l), err: (l) => lines.push(l) }), 2);
  assert.match(lines.join('\n'), /PG_ERR_CLI_USAGE: usage: plantgate opcua list/);
});

test('username identity: a wrong password is reported as a refused identity, the right one opens the session', async (t) => {
  const server = await sim();
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const wrong = createSource(
    opcuaConfig({ endpointUrl: server.endpointUrl, reconnectMinDelayMs: 5000, user: { type: 'username', username: 'operator', password: 'nope' }, items: [{ nodeId: server.id('Machine.State') }] }),
    context(buffer.sinkFor('plc1'), dataDir),
  );
  t.after(() => wrong.stop());
  await wrong.start();
  assert.equal(wrong.status().lastError?.code, 'PG_ERR_OPCUA_CONNECT');
  assert.match(wrong.status().lastError!.message, /refused the user identity.*sources\.opcua\[\]\.user/s);
  await wrong.stop();

  const sink = new RecordingSink(buffer.sinkFor('plc1'));
  const right = createSource(
    opcuaConfig({ endpointUrl: server.endpointUrl, user: { type: 'username', username: 'operator', password: 'pw-1' }, items: [{ nodeId: server.id('Machine.State') }] }),
    context(sink, dataDir),
  );
  t.after(() => right.stop());
  await right.start();
  assert.equal(right.status().state, 'running');
  await waitFor(() => sink.committed.length >= 1, 'a data change with the username session', 10_000);
});

/** A user certificate and key made in a temp PKI of its own (what an operator gets from the plant's CA or creates for plantgate). */
async function userCertificate(t: TestContext, cn: string): Promise<{ certificateFile: string; privateKeyFile: string; der: Buffer; thumbprint: string }> {
  const dir = tempDir(t, 'pg-opcua-user-');
  const cm = new OPCUACertificateManager({ rootFolder: join(dir, 'pki'), automaticallyAcceptUnknownCertificate: false });
  await cm.initialize();
  const certificateFile = join(dir, 'user.pem');
  await cm.createSelfSignedCertificate({ applicationUri: `urn:plantgate-test:user:${cn}`, subject: `/CN=${cn}/O=plantgate-test`, dns: [], outputFile: certificateFile, startDate: new Date(), validity: 30 });
  await cm.dispose();
  const der = convertPEMtoDER(readFileSync(certificateFile, 'latin1'));
  return { certificateFile, privateKeyFile: cm.privateKey, der, thumbprint: makeSHA1Thumbprint(der).toString('hex') };
}

test('X.509 user identity: refused with the cause while the server does not trust the certificate, the session opens once it does; a key that does not match is named', async (t) => {
  const server = await sim();
  const dataDir = tempDir(t);
  const buffer = await contractBuffer(t, dataDir);
  const [alice, mallory] = await Promise.all([userCertificate(t, 'plantgate-line1'), userCertificate(t, 'mallory')]);
  const x509 = (u: { certificateFile: string; privateKeyFile: string }, extra: Record<string, unknown> = {}) =>
    opcuaConfig({
      endpointUrl: server.endpointUrl,
      reconnectMinDelayMs: 100,
      reconnectMaxDelayMs: 200,
      user: { type: 'certificate', certificateFile: u.certificateFile, privateKeyFile: u.privateKeyFile },
      items: [{ nodeId: server.id('Machine.State') }],
      ...extra,
    });

  // Untrusted by the server: refused, and the message says which certificate and why.
  const sink = new RecordingSink(buffer.sinkFor('plc1'));
  const source = createSource(x509(alice), context(sink, dataDir));
  t.after(() => source.stop());
  await source.start();
  let st = source.status();
  assert.equal(st.state, 'degraded');
  assert.equal(st.lastError?.code, 'PG_ERR_OPCUA_CONNECT');
  assert.match(st.lastError!.message, /refused the user identity/);
  assert.match(st.lastError!.message, /BadIdentityTokenRejected/);
  assert.ok(st.lastError!.message.includes(alice.thumbprint), `the message names the user certificate's thumbprint: ${st.lastError!.message}`);
  assert.match(st.lastError!.message, /CN=plantgate-line1/);
  assert.match(st.lastError!.message, /trusted in the server's user PKI/);
  assert.equal(sink.committed.length, 0);

  // The server's operator trusts it: the running source opens the session on its next attempt, as that user.
  await server.trustUserCertificate(alice.der);
  await waitFor(() => sink.committed.length >= 1, 'a data change over the X.509 session', 10_000);
  st = source.status();
  assert.equal(st.state, 'running');
  assert.ok((await server.stats()).identities.includes(`x509:${alice.thumbprint}`), 'the server sees a session of that user certificate');

  // Another certificate, never trusted by the server: refused, naming that one.
  const other = createSource(x509(mallory, { reconnectMinDelayMs: 5000 }), context(buffer.sinkFor('plc1'), dataDir, 'plc2'));
  t.after(() => other.stop());
  await other.start();
  assert.equal(other.status().lastError?.code, 'PG_ERR_OPCUA_CONNECT');
  assert.ok(other.status().lastError!.message.includes(mallory.thumbprint), other.status().lastError!.message);
  assert.match(other.status().lastError!.message, /BadIdentityTokenRejected/);
  await other.stop();

  // The trusted certificate with a key that is not its own: named before anything is sent.
  const mismatched = createSource(x509({ certificateFile: alice.certificateFile, privateKeyFile: mallory.privateKeyFile }, { reconnectMinDelayMs: 5000 }), context(buffer.sinkFor('plc1'), dataDir, 'plc3'));
  t.after(() => mismatched.stop());
  await mismatched.start();
  assert.equal(mismatched.status().lastError?.code, 'PG_ERR_OPCUA_CONNECT');
  assert.match(mismatched.status().lastError!.message, /does not match/);
  await mismatched.stop();

  // A file that is not there.
  const missing = createSource(x509({ certificateFile: join(dataDir, 'nope.pem'), privateKeyFile: mallory.privateKeyFile }, { reconnectMinDelayMs: 5000 }), context(buffer.sinkFor('plc1'), dataDir, 'plc4'));
  t.after(() => missing.stop());
  await missing.start();
  assert.match(missing.status().lastError!.message, /user certificate .*nope\.pem/);
  await missing.stop();
});
