import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { Server as HttpsServer } from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import Fastify from 'fastify';
import { createLogger, type Logger } from '../../common/log.js';
import { VERSION } from '../../common/version.js';
import { DEFAULT_VOLUME_ROOTS } from '../../common/volumes.js';
import { api } from './api/app.js';
import { refuseLargeBodiesEarly } from './api/errors.js';
import { ensureBootstrapToken } from './auth/tokens.js';
import { CountsRepo } from './db/counts.js';
import { Store } from './db/store.js';
import { Deployer } from './deployer.js';
import { DesiredStates } from './desired/cache.js';
import { agentPortCredentials, agentService, type ServerIdentity } from './grpc/agent-service.js';
import {
  type AgentAuthenticator,
  CertificateAuthenticator,
  type CertificateAuthenticatorDeps,
} from './grpc/auth.js';
import { AgentServiceWire } from './grpc/encoded.js';
import { AgentHub } from './grpc/hub.js';
import { PreflightRequests } from './grpc/preflight.js';
import { cachedFor, reconnectWindowMs } from './grpc/reconnect.js';
import { DEFAULT_SILENCE_MS, LivenessTracker } from './ingest/liveness.js';
import { AgentRecorder } from './ingest/recorder.js';
import { type ControlPlaneMetrics, createControlPlaneMetrics } from './metrics.js';
import { type Ca, caPaths, loadOrCreateCa, type PkiDeps } from './pki/ca.js';
import { Enrollment } from './pki/enrollment.js';
import { trustAnchor } from './pki/identity.js';
import { serverNames } from './pki/issue.js';
import { JoinTokens } from './pki/join-token.js';
import { loadOrIssueServerCertificate, serverCertPaths } from './pki/server-cert.js';
import { type CertAndKey, restFiles, ServerCertificateKeeper } from './pki/server-tls.js';
import { warmPlaybookValidator } from './playbook/schema-errors.js';
import { Housekeeping, type Scheduler, scheduleHousekeeping } from './retention/housekeeping.js';
import { DEFAULT_HOUSEKEEPING_CRON, type RetentionPolicy, retentionPolicy } from './retention/policy.js';
import { PrefetchTracker } from './rollout/prefetch.js';
import { RolloutRunner } from './rollout/runner.js';
import { DeploymentWatcher, nodeProgress } from './rollout/watcher.js';
import { loadKeyring } from './secrets/keyring.js';
import { Secrets } from './secrets/service.js';

export interface ServerOptions {
  dataDir: string;
  /** host:port for the REST API */
  listen: string;
  /** host:port for agents' gRPC streams */
  grpcListen: string;
  /** Extra DNS names or addresses for the server certificate (beyond loopback, the host name, the listen hosts). */
  tlsNames?: readonly string[];
  /**
   * The REST API's certificate (PEM chain) and key from files (`--tls-cert`/`--tls-key`), checked
   * at start; without them it serves the certificate the control plane issues from its CA.
   */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Lifetime of the server's self-issued certificate (default 90 days; tests shorten it to see reissues). */
  serverCertLifetimeMs?: number;
  /** Lifetime of the agent certificates this control plane issues (default 30 days; tests shorten it). */
  agentCertLifetimeMs?: number;
  /** Largest REST request body in bytes (413 above it); default 1 MiB. */
  bodyLimit?: number;
  /** Largest gRPC message an agent may send in bytes (RESOURCE_EXHAUSTED above it); default 4 MiB. */
  grpcMaxMessageBytes?: number;
  /** REST requests per minute per API token; default 600. */
  rateLimitPerMinute?: number;
  /** Host directories playbooks may bind-mount (model directories). */
  volumeRoots?: readonly string[];
  /** How long an open agent stream may stay silent before its node counts offline. */
  agentSilenceMs?: number;
  /** How long history is kept (`--retain-*`); what is not given keeps its default. */
  retention?: Partial<RetentionPolicy>;
  /** When the housekeeping pass runs (a node-cron expression; default hourly). */
  housekeepingCron?: string;
  /** What runs the housekeeping schedule (default node-cron; tests inject one). */
  scheduler?: Scheduler;
}

export interface RunningServer {
  /** The REST API's URL: https:// (`MUTUAL_TLS`, the only transport outside the TLS benchmark). */
  httpUrl: string;
  grpcAddress: string;
  /** The CA file (`DATA_DIR/ca.crt`): what agents pin through join tokens and clients pass as --ca-file. */
  caFile: string;
  /** SHA-256 over the CA's DER (the `K10<hash>` of join tokens). */
  caFingerprint: string;
  /** The server's own certificate and key, issued from the CA and reissued while it runs. */
  serverCertFile: string;
  serverKeyFile: string;
  /** The CA and the self-issued certificate and key as they were at start. */
  tls: { caPem: string; certPem: string; keyPem: string };
  /** What the REST API serves: the files given, or the self-issued certificate. */
  restCertificate: 'files' | 'self-issued';
  /** DATA_DIR/admin-token: the bootstrap admin token, written on the first start (0600). */
  adminTokenFile: string;
  close(): Promise<void>;
}

const pkiDeps: PkiDeps = { now: Date.now, random: (n) => new Uint8Array(randomBytes(n)) };

function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const port = Number(addr.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`invalid address ${addr}`);
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

/** The parts of the control plane and how they listen to each other; built once, here. */
function wire(
  store: Store,
  ca: Ca,
  opts: ServerOptions,
  log: Logger,
  transport: Transport,
  secrets: Secrets,
) {
  const desired = new DesiredStates(store.deployments, secrets.value);
  const counts = new CountsRepo(store.db);
  const auth = transport.agentAuth({
    anchor: trustAnchor(ca.der),
    binding: (node) => store.nodeKeys.get(node),
    clock: { now: Date.now },
  });
  const hub = new AgentHub({
    auth,
    desired,
    log: log.child({ component: 'hub' }),
    onRefused: (r) => store.events.add({ ...r, kind: 'agent.refused' }),
    reconnectWindowMs: cachedFor(10_000, () => reconnectWindowMs(counts.nodes())),
  });
  const joinTokens = new JoinTokens(store.joinTokens, ca.fingerprint, pkiDeps);
  const enrollment = new Enrollment({
    store,
    ca,
    joinTokens,
    pki: pkiDeps,
    agentCertLifetimeMs: opts.agentCertLifetimeMs,
  });
  const service = agentService({ hub, auth, enrollment });
  const recorder = new AgentRecorder(store, undefined, (err) =>
    log.error({ err }, 'agent liveness not written (heartbeats are kept for the next try)'),
  );
  const liveness = new LivenessTracker(undefined, opts.agentSilenceMs ?? DEFAULT_SILENCE_MS);
  liveness.onChange(recorder.onLiveness);
  const preflight = new PreflightRequests(hub);
  const watcher = new DeploymentWatcher(nodeProgress(store, hub, desired));
  const prefetch = new PrefetchTracker({
    link: hub,
    isActive: (deployment, revision) => {
      const r = store.rollouts.latest(deployment);
      return r?.revision === revision && (r.state === 'running' || r.state === 'paused');
    },
  });
  const rollouts = new RolloutRunner({
    store,
    desired,
    push: (nodes) => hub.push(nodes),
    // Online means the stream is open and the agent not silent (liveness, in memory).
    isOnline: (node) => liveness.isOnline(node),
    log: log.child({ component: 'rollout' }),
    prefetch,
  });
  const deployer = new Deployer(
    store,
    {
      push: (nodes) => hub.push(nodes),
      rollouts,
      waitTaken: (nodes, timeoutMs) => watcher.waitTaken(nodes, timeoutMs),
      preflight: (node, state, timeoutMs, previewDeployment) =>
        preflight.ask(node, state, timeoutMs, previewDeployment),
    },
    {
      desired,
      parseOptions: { volumeRoots: opts.volumeRoots ?? DEFAULT_VOLUME_ROOTS, secrets: secrets.info },
    },
  );
  // Order matters: a hello is recorded before the deployer re-evaluates the node's groups (which
  // reads its labels), and both happen before the hub sends the node its desired state.
  hub.subscribe(recorder.onHubEvent);
  // After the recorder: a node's first online transition updates the row its hello created.
  hub.subscribe(liveness.onHubEvent);
  hub.subscribe(deployer.onHubEvent);
  hub.subscribe(preflight.onHubEvent);
  hub.subscribe(watcher.onHubEvent);
  hub.subscribe(prefetch.onHubEvent);
  // Last: a rollout looks at what the recorder has just stored.
  hub.subscribe(rollouts.onHubEvent);
  const metrics = createControlPlaneMetrics({
    agentsConnected: () => hub.connectedNodes().length,
    nodesOnline: () => liveness.onlineCount(),
    nodesTotal: () => counts.nodes(),
    rolloutsByState: () => counts.rolloutsByState(),
  });
  hub.subscribe(metrics.onHubEvent);
  store.observeTransactions(metrics.observeTransaction);
  store.observeBatchErrors((err) => log.error({ err }, 'a group commit of agent reports failed'));
  return { hub, service, joinTokens, recorder, deployer, rollouts, liveness, metrics };
}

/** The retention job on its schedule; its passes count in the metrics. Stopped by `close`. */
function startHousekeeping(store: Store, opts: ServerOptions, log: Logger, metrics: ControlPlaneMetrics) {
  const job = new Housekeeping({
    store,
    policy: retentionPolicy(opts.retention),
    log: log.child({ component: 'housekeeping' }),
    onPass: metrics.observeRetention,
  });
  return scheduleHousekeeping(job, opts.housekeepingCron ?? DEFAULT_HOUSEKEEPING_CRON, opts.scheduler);
}

/** The CA and the server's certificate for its names (loopback, host name, listen hosts, extras). */
async function loadPki(
  opts: ServerOptions,
  log: Logger,
): Promise<{ ca: Ca; keeper: ServerCertificateKeeper }> {
  const { ca } = await loadOrCreateCa(opts.dataDir, pkiDeps);
  const listenHosts = [opts.grpcListen, opts.listen]
    .map((a) => splitHostPort(a).host)
    .filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::');
  const names = serverNames(hostname(), [...listenHosts, ...(opts.tlsNames ?? [])]);
  const issue = () =>
    loadOrIssueServerCertificate(opts.dataDir, ca, {
      names,
      deps: pkiDeps,
      lifetimeMs: opts.serverCertLifetimeMs,
    });
  const keeper = new ServerCertificateKeeper(await issue(), {
    issue,
    now: Date.now,
    onRenewed: ({ notAfterMs }) =>
      log.info({ notAfter: new Date(notAfterMs).toISOString() }, 'reissued the server certificate'),
    onError: (err, retryInMs) =>
      log.error({ err: err.message, retryInMs }, 'could not reissue the server certificate; retrying'),
  });
  return { ca, keeper };
}

/** The agent port: keepalive for long-lived streams, the message size limit, TLS credentials. */
async function listenAgentPort(
  opts: ServerOptions,
  service: grpc.UntypedServiceImplementation,
  credentials: grpc.ServerCredentials,
): Promise<{ grpcServer: grpc.Server; grpcPort: number }> {
  const grpcServer = new grpc.Server({
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    // A bigger message is refused with RESOURCE_EXHAUSTED before it is decoded.
    'grpc.max_receive_message_length': opts.grpcMaxMessageBytes ?? 4 * 1024 * 1024,
  });
  grpcServer.addService(AgentServiceWire, service);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(opts.grpcListen, credentials, (err, port) => (err ? reject(err) : resolve(port))),
  );
  return { grpcServer, grpcPort };
}

/** The REST server: TLS as the transport says, the body limit (413, before the body when announced). */
function restApp(opts: ServerOptions, log: Logger, https: { cert: string; key: string } | null) {
  const bodyLimit = opts.bodyLimit ?? 1024 * 1024;
  const app = Fastify({ loggerInstance: log.child({ component: 'api' }), bodyLimit, https });
  refuseLargeBodiesEarly(app.server, bodyLimit);
  return app;
}

/** The control plane process: SQLite store, gRPC hub for agents, REST API for users. */
export function runServer(opts: ServerOptions): Promise<RunningServer> {
  return startControlPlane(opts, MUTUAL_TLS);
}

/**
 * How the control plane's ports are secured and how an agent call proves its node. Production has
 * exactly one, `MUTUAL_TLS`: `runServer` (and so `fleet server`) knows no other, and no flag or
 * setting chooses one. The TLS benchmark (test/bench/tls.ts) builds a plaintext one of its own and
 * passes it to `startControlPlane`, to measure what TLS costs on otherwise the same code.
 */
export interface Transport {
  /** The agent port's credentials, serving the control plane's certificate as it is reissued. */
  agentPort(caPem: string, identity: ServerIdentity): grpc.ServerCredentials;
  /** Who an agent call comes from. */
  agentAuth(deps: CertificateAuthenticatorDeps): AgentAuthenticator;
  /** The REST listener's TLS key and certificate (null: none). */
  restTls(cert: CertAndKey): { cert: string; key: string } | null;
}

/** Mutual TLS on the agent port, identity from the client certificate; HTTPS on the REST port. */
export const MUTUAL_TLS: Transport = {
  agentPort: agentPortCredentials,
  agentAuth: (deps) => new CertificateAuthenticator(deps),
  restTls: (c) => ({ cert: c.certPem, key: c.keyPem }),
};

/** The control plane with `transport`; see `runServer`. */
export async function startControlPlane(opts: ServerOptions, transport: Transport): Promise<RunningServer> {
  const log = createLogger('fleet-server');
  // Bad certificate files stop the start before anything is created or listens.
  const files = restFiles(opts.tlsCertFile, opts.tlsKeyFile);
  mkdirSync(opts.dataDir, { recursive: true });
  const store = Store.open(join(opts.dataDir, 'fleet.db'));
  store.nodes.resetConnections();
  const { ca, keeper } = await loadPki(opts, log);
  const tls = { caPem: ca.certPem, ...keeper.current() };
  const { keyring, source: secretsKey } = loadKeyring(opts.dataDir);
  const secrets = new Secrets(store, keyring);
  const wired = wire(store, ca, opts, log, transport, secrets);
  const { hub, service, joinTokens, recorder, deployer, rollouts, liveness, metrics } = wired;
  // Rollouts that were running when the process stopped go on from the batch they were in.
  rollouts.resume();
  const housekeeping = startHousekeeping(store, opts, log, metrics);
  const adminTokenFile = join(opts.dataDir, 'admin-token');
  if (ensureBootstrapToken(store, adminTokenFile, { now: Date.now }))
    log.warn({ file: adminTokenFile }, 'no admin token existed: wrote the bootstrap admin token');

  const { grpcServer, grpcPort } = await listenAgentPort(
    opts,
    service,
    transport.agentPort(ca.certPem, keeper),
  );

  const app = restApp(opts, log, transport.restTls(files ?? keeper.current()));
  if (app.server instanceof HttpsServer && !files) {
    const server = app.server;
    keeper.onChange((c) => server.setSecureContext(transport.restTls(c) ?? {}));
  }
  keeper.start();
  await app.register(api, {
    store,
    deployer,
    rollouts,
    metrics,
    joinTokens,
    secrets,
    rateLimitPerMinute: opts.rateLimitPerMinute,
    version: VERSION,
    // Online, not merely holding a stream: a silent agent is not connected.
    connectedAgents: () => liveness.onlineCount(),
  });
  const { host, port } = splitHostPort(opts.listen);
  const httpUrl = await app.listen({ host, port });
  setImmediate(warmPlaybookValidator);
  const grpcHost = splitHostPort(opts.grpcListen).host;
  const grpcAddress = `${grpcHost.includes(':') ? `[${grpcHost}]` : grpcHost}:${grpcPort}`;
  const caFile = caPaths(opts.dataDir).cert;
  log.info(
    {
      httpUrl,
      grpcAddress,
      dataDir: opts.dataDir,
      caFile,
      caFingerprint: ca.fingerprint,
      secretsKey,
      restCertificate: files ? { file: opts.tlsCertFile, sha256: files.fingerprint256 } : 'self-issued',
      version: VERSION,
    },
    'control plane started',
  );

  return {
    httpUrl,
    grpcAddress,
    caFile,
    caFingerprint: ca.fingerprint,
    serverCertFile: serverCertPaths(opts.dataDir).cert,
    serverKeyFile: serverCertPaths(opts.dataDir).key,
    tls,
    restCertificate: files ? 'files' : 'self-issued',
    adminTokenFile,
    async close() {
      keeper.stop();
      await app.close();
      rollouts.stop();
      recorder.flush();
      hub.shutdown();
      liveness.stop();
      housekeeping.stop();
      // Agent streams never end on their own: cut them; agents keep enforcing and reconnect later.
      grpcServer.forceShutdown();
      store.close();
    },
  };
}
