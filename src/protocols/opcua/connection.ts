/**
 * One server's connection lifecycle: client → secure channel → session →
 * subscription, supervised by one loop.
 *
 * Recovery strategy: recreate, never repair in place. node-opcua's own reconnect
 * is switched off (connectionStrategy.maxRetry = 0); when the channel closes, the
 * keep-alive watch fires or the subscription is terminated, everything of that
 * cycle is torn down (subscription, session, client) and rebuilt after a backoff.
 * Why: each cycle owns its objects, so monitored items can never be duplicated
 * and nothing accumulates across hours of reconnects. Nothing is lost by not
 * transferring subscriptions: a recreated subscription delivers every item's
 * current value, and trigger groups rely on the PLC holding its trigger raised
 * until the handshake, not on notifications.
 */
import { readFileSync } from 'node:fs';
import {
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  UserTokenType,
  type ClientSession,
  type ClientSubscription,
  type UserIdentityInfo,
} from 'node-opcua';
import { certificateMatchesPrivateKey, convertPEMtoDER, keyOperationsFromPrivateKey, readPrivateKey, split_der } from 'node-opcua-crypto';
import type { Logger } from 'pino';
import { PlantgateError, describeError } from '../../errors.js';
import type { OpcuaConfigType, OpcuaUserConfig } from './config.js';
import { describeCertificate, pkiRoot, rejectedMatching, type OwnIdentity } from './pki.js';
import { sleepUnless } from './retry.js';

export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'stopped';

export interface ConnectionHooks {
  /** Called on every new session with its fresh subscription: create monitored items here. */
  onSession(session: ClientSession, subscription: ClientSubscription): Promise<void>;
  /** Called when a session is gone (before teardown); stop using it. */
  onSessionLost(): void;
  onError(err: PlantgateError): void;
}

export interface ConnectionStats {
  state: ConnectionState;
  endpointUrl: string;
  securityMode: string;
  securityPolicy: string;
  sessions: number;
  reconnects: number;
  keepAliveTimeouts: number;
  /** Monitored items on the current subscription (data items + one per trigger group); 0 while not connected. */
  monitoredItems: number;
  connectedSince?: string;
  lastKeepAliveAt?: string;
}

const TEARDOWN_STEP_MS = 2000;

export class ServerConnection {
  state: ConnectionState = 'idle';
  private stopping = false;
  private loop?: Promise<void>;
  private client?: OPCUAClient;
  private session?: ClientSession;
  private subscription?: ClientSubscription;
  private lost?: (reason: Error) => void;
  private lastSeen = 0;
  private sessions = 0;
  private reconnects = 0;
  private keepAliveTimeouts = 0;
  private connectedSince?: Date;
  private firstAttempt?: Promise<void>;
  /** Bumped by every teardown; an establishment started in an older cycle stops at its next step. */
  private cycle = 0;

  constructor(
    private readonly cfg: OpcuaConfigType,
    private readonly identity: OwnIdentity,
    private readonly dataDir: string,
    private readonly hooks: ConnectionHooks,
    private readonly logger: Logger,
  ) {}

  /** Starts the supervision loop; resolves after the first attempt (success or failure). */
  start(): Promise<void> {
    let done!: () => void;
    this.firstAttempt = new Promise<void>((r) => (done = r));
    this.loop = this.run(done);
    return this.firstAttempt;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.lost?.(new Error('stopping'));
    await this.loop;
    this.state = 'stopped';
  }

  stats(): ConnectionStats {
    return {
      state: this.state,
      endpointUrl: this.cfg.endpointUrl,
      securityMode: this.cfg.securityMode,
      securityPolicy: this.cfg.securityPolicy,
      sessions: this.sessions,
      reconnects: this.reconnects,
      keepAliveTimeouts: this.keepAliveTimeouts,
      monitoredItems: this.subscription ? Object.keys(this.subscription.monitoredItems).length : 0,
      ...(this.connectedSince ? { connectedSince: this.connectedSince.toISOString() } : {}),
      ...(this.lastSeen ? { lastKeepAliveAt: new Date(this.lastSeen).toISOString() } : {}),
    };
  }

  private async run(firstDone: () => void): Promise<void> {
    let delay = this.cfg.reconnectMinDelayMs;
    while (!this.stopping) {
      let lostReason: Error | undefined;
      this.state = this.sessions === 0 && this.reconnects === 0 ? 'connecting' : 'reconnecting';
      try {
        const lostPromise = new Promise<Error>((resolve) => (this.lost = resolve));
        // A loss or stop() during establishment ends the attempt at once; its objects are torn down below.
        await Promise.race([this.establish(this.cycle), lostPromise.then((e) => Promise.reject(e))]);
        firstDone();
        delay = this.cfg.reconnectMinDelayMs;
        lostReason = await lostPromise;
      } catch (err) {
        if (!this.stopping) this.hooks.onError(await this.classify(err));
      }
      firstDone();
      this.hooks.onSessionLost();
      await this.teardown(lostReason !== undefined && !this.stopping);
      if (this.stopping) break;
      if (lostReason) {
        this.reconnects++;
        this.hooks.onError(new PlantgateError('PG_ERR_OPCUA_CONNECT', `connection to ${this.cfg.endpointUrl} lost: ${lostReason.message}; reconnecting`));
      }
      this.state = 'reconnecting';
      // Full jitter on the upper half, so many gateways do not reconnect in step after a server restart.
      await sleepUnless(delay / 2 + Math.random() * (delay / 2), () => this.stopping);
      delay = Math.min(delay * 2, this.cfg.reconnectMaxDelayMs);
    }
    this.state = 'stopped';
  }

  private async establish(cycle: number): Promise<void> {
    const cfg = this.cfg;
    // After each await: a teardown in between (loss, stop) makes this attempt stale.
    const current = () => {
      if (cycle !== this.cycle) throw new Error('connection attempt superseded');
    };
    // Read on every attempt: a replaced user certificate is picked up by the next reconnect.
    // A file or key problem is ours to report, before anything goes to the server.
    const user = userIdentity(cfg.user);
    const client = OPCUAClient.create({
      applicationName: 'plantgate',
      applicationUri: this.identity.applicationUri,
      clientName: `plantgate:${cfg.name}`,
      clientCertificateManager: this.identity.certificateManager,
      certificateFile: this.identity.certificateFile,
      privateKeyFile: this.identity.privateKeyFile,
      securityMode: MessageSecurityMode[cfg.securityMode],
      securityPolicy: SecurityPolicy[cfg.securityPolicy],
      endpointMustExist: false,
      // Reconnection is ours (see module header): one attempt per cycle.
      connectionStrategy: { maxRetry: 0, initialDelay: cfg.reconnectMinDelayMs, maxDelay: cfg.reconnectMaxDelayMs },
      keepSessionAlive: true,
      keepAliveInterval: cfg.keepAliveIntervalMs,
      requestedSessionTimeout: cfg.sessionTimeoutMs,
      defaultTransactionTimeout: cfg.requestTimeoutMs,
    });
    this.client = client;
    const onLost = (why: string) => () => this.lost?.(new Error(why));
    client.on('connection_lost', onLost('secure channel closed'));
    client.on('close', onLost('secure channel closed'));
    await withTimeout(client.connect(cfg.endpointUrl), cfg.requestTimeoutMs * 2, 'connect');
    current();
    const session = await withTimeout(client.createSession(user), cfg.requestTimeoutMs, 'createSession');
    current();
    this.session = session;
    session.on('keepalive_failure', onLost('session keep-alive failed'));
    session.on('session_closed', onLost('session closed by the server'));
    const publishing = cfg.publishingIntervalMs;
    const keepAliveCount = Math.max(1, Math.ceil(cfg.keepAliveIntervalMs / publishing));
    const subscription = await withTimeout(
      session.createSubscription2({
        requestedPublishingInterval: publishing,
        requestedMaxKeepAliveCount: keepAliveCount,
        requestedLifetimeCount: keepAliveCount * 6,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
      }),
      cfg.requestTimeoutMs,
      'createSubscription',
    );
    current();
    this.subscription = subscription;
    this.lastSeen = Date.now();
    subscription.on('keepalive', () => (this.lastSeen = Date.now()));
    subscription.on('received_notifications', () => (this.lastSeen = Date.now()));
    subscription.on('terminated', onLost('subscription terminated'));
    await withTimeout(this.hooks.onSession(session, subscription), cfg.requestTimeoutMs * 3, 'creating monitored items');
    current();
    this.sessions++;
    this.connectedSince = new Date();
    this.state = 'connected';
    this.logger.info({ endpointUrl: cfg.endpointUrl, securityMode: cfg.securityMode }, 'OPC UA session open');
    this.watchKeepAlive(subscription);
  }

  /** Keep-alive watch: a subscription silent for twice its keep-alive period means the server or the path is gone. */
  private watchKeepAlive(subscription: ClientSubscription): void {
    const periodMs = Math.max(this.cfg.keepAliveIntervalMs, subscription.publishingInterval * subscription.maxKeepAliveCount);
    const timer = setInterval(() => {
      if (this.subscription !== subscription) return clearInterval(timer);
      if (Date.now() - this.lastSeen > 2 * periodMs + 1000) {
        this.keepAliveTimeouts++;
        clearInterval(timer);
        this.lost?.(new Error(`no keep-alive for ${Date.now() - this.lastSeen} ms`));
      }
    }, Math.min(periodMs, 1000));
    timer.unref();
  }

  private async teardown(channelGone: boolean): Promise<void> {
    const { client, session, subscription } = this;
    this.cycle++;
    this.subscription = undefined;
    this.session = undefined;
    this.client = undefined;
    this.lost = undefined;
    this.connectedSince = undefined;
    if (!channelGone) {
      // Politely free the server's resources; a dead channel would only make us wait.
      if (subscription) await withTimeout(subscription.terminate(), TEARDOWN_STEP_MS, 'terminate').catch(() => undefined);
      if (session) await withTimeout(session.close(true), TEARDOWN_STEP_MS, 'closeSession').catch(() => undefined);
    }
    if (client) {
      client.removeAllListeners();
      await withTimeout(client.disconnect(), TEARDOWN_STEP_MS, 'disconnect').catch(() => undefined);
    }
  }

  private async classify(err: unknown): Promise<PlantgateError> {
    if (err instanceof PlantgateError) return err;
    const text = describeError(err);
    if (/certificate verification failed|BadCertificateUntrusted|BadCertificate/i.test(text)) {
      const cert = rejectedMatching(pkiRoot(this.dataDir), await this.fetchServerCertificate());
      const who = cert ? ` (thumbprint ${cert.thumbprint}, subject ${cert.subject})` : '';
      return new PlantgateError(
        'PG_ERR_OPCUA_CERT_UNTRUSTED',
        `server certificate of ${this.cfg.endpointUrl} is not trusted${who}; it was recorded in ${pkiRoot(this.dataDir)}/rejected. ` +
          `If this is the right server, run: plantgate opcua trust ${cert?.thumbprint ?? '<thumbprint>'}`,
        { endpointUrl: this.cfg.endpointUrl, ...(cert ? { thumbprint: cert.thumbprint, subject: cert.subject } : {}) },
        { cause: err },
      );
    }
    if (/BadIdentityToken|BadUserAccessDenied|BadUserSignatureInvalid/i.test(text)) {
      const user = this.cfg.user;
      if (user?.type === 'certificate') {
        // Name the certificate and the usual cause: the server's user PKI does not trust it (BadIdentityTokenRejected).
        const cert = userCertificateInfo(user.certificateFile);
        return new PlantgateError(
          'PG_ERR_OPCUA_CONNECT',
          `server ${this.cfg.endpointUrl} refused the user identity: ${text}; the X.509 user certificate ${user.certificateFile}` +
            `${cert ? ` (thumbprint ${cert.thumbprint}, subject ${cert.subject})` : ''} must be trusted in the server's user PKI ` +
            `(and its user allowed to connect); check sources.opcua[].user`,
          { endpointUrl: this.cfg.endpointUrl, certificateFile: user.certificateFile, ...(cert ? { thumbprint: cert.thumbprint, subject: cert.subject } : {}) },
          { cause: err },
        );
      }
      return new PlantgateError('PG_ERR_OPCUA_CONNECT', `server ${this.cfg.endpointUrl} refused the user identity: ${text}; check sources.opcua[].user`, undefined, { cause: err });
    }
    return new PlantgateError('PG_ERR_OPCUA_CONNECT', `cannot open a session on ${this.cfg.endpointUrl}: ${text}`, { endpointUrl: this.cfg.endpointUrl }, { cause: err });
  }

  /** The certificate the server announces for our security settings (a discovery call in mode None). */
  private async fetchServerCertificate(): Promise<Buffer | undefined> {
    const client = OPCUAClient.create({
      applicationName: 'plantgate',
      applicationUri: this.identity.applicationUri,
      clientCertificateManager: this.identity.certificateManager,
      certificateFile: this.identity.certificateFile,
      privateKeyFile: this.identity.privateKeyFile,
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 0 },
    });
    try {
      await withTimeout(client.connect(this.cfg.endpointUrl), this.cfg.requestTimeoutMs, 'connect');
      const endpoints = await withTimeout(client.getEndpoints(), this.cfg.requestTimeoutMs, 'getEndpoints');
      const mode = MessageSecurityMode[this.cfg.securityMode];
      const match = endpoints.find((e) => e.securityMode === mode && e.securityPolicyUri === SecurityPolicy[this.cfg.securityPolicy]) ?? endpoints[0];
      return match?.serverCertificate ?? undefined;
    } catch {
      return undefined;
    } finally {
      await withTimeout(client.disconnect(), TEARDOWN_STEP_MS, 'disconnect').catch(() => undefined);
    }
  }
}

function userIdentity(user: OpcuaUserConfig | undefined): UserIdentityInfo {
  if (!user || user.type === 'anonymous') return { type: UserTokenType.Anonymous };
  if (user.type === 'username') return { type: UserTokenType.UserName, userName: user.username, password: user.password };
  const userError = (what: string, err?: unknown) =>
    new PlantgateError('PG_ERR_OPCUA_CONNECT', `X.509 user identity: ${what}; check sources.opcua[].user`, { certificateFile: user.certificateFile, privateKeyFile: user.privateKeyFile }, err ? { cause: err } : undefined);
  let certificateData: Buffer;
  try {
    certificateData = readUserCertificate(user.certificateFile);
  } catch (err) {
    throw userError(`cannot read the user certificate ${user.certificateFile}: ${describeError(err)}`, err);
  }
  let privateKey: ReturnType<typeof readPrivateKey>;
  try {
    privateKey = readPrivateKey(user.privateKeyFile);
  } catch (err) {
    throw userError(`cannot read the private key ${user.privateKeyFile} of the user certificate: ${describeError(err)}`, err);
  }
  // A key that is not the certificate's would only show as BadUserSignatureInvalid from the server.
  if (!certificateMatchesPrivateKey(certificateData, privateKey)) {
    throw userError(`the private key ${user.privateKeyFile} does not match the user certificate ${user.certificateFile}`);
  }
  return { type: UserTokenType.Certificate, certificateData, keyOperations: keyOperationsFromPrivateKey(privateKey) };
}

/** The user certificate (PEM or DER; the first of a chain), as DER. */
function readUserCertificate(file: string): Buffer {
  const raw = readFileSync(file);
  const pem = raw.toString('latin1');
  const der = pem.includes('-----BEGIN CERTIFICATE-----') ? convertPEMtoDER(pem) : raw;
  const first = split_der(der)[0];
  if (!first) throw new Error('no certificate in the file');
  return first;
}

function userCertificateInfo(file: string): { thumbprint: string; subject: string } | undefined {
  try {
    return describeCertificate(readUserCertificate(file), file, 'trusted');
  } catch {
    return undefined;
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
