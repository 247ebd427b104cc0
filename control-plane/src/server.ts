import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import Fastify from 'fastify';
import { createLogger, type Logger } from '../../common/log.js';
import { VERSION } from '../../common/version.js';
import { DEFAULT_VOLUME_ROOTS } from '../../common/volumes.js';
import { AgentServiceService } from '../../proto/gen/fleet/v1/agent.js';
import { api } from './api/app.js';
import { ensureBootstrapToken } from './auth/tokens.js';
import { CountsRepo } from './db/counts.js';
import { Store } from './db/store.js';
import { Deployer } from './deployer.js';
import { DesiredStates } from './desired/cache.js';
import { agentPortCredentials, agentService } from './grpc/agent-service.js';
import { CertificateAuthenticator } from './grpc/auth.js';
import { AgentHub } from './grpc/hub.js';
import { PreflightRequests } from './grpc/preflight.js';
import { DEFAULT_SILENCE_MS, LivenessTracker } from './ingest/liveness.js';
import { AgentRecorder } from './ingest/recorder.js';
import { createControlPlaneMetrics } from './metrics.js';
import { type Ca, caPaths, loadOrCreateCa, type PkiDeps } from './pki/ca.js';
import { Enrollment } from './pki/enrollment.js';
import { trustAnchor } from './pki/identity.js';
import { serverNames } from './pki/issue.js';
import { JoinTokens } from './pki/join-token.js';
import { loadOrIssueServerCertificate, type ServerCredentials, serverCertPaths } from './pki/server-cert.js';
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
}

export interface RunningServer {
  httpUrl: string;
  grpcAddress: string;
  /** The CA file (`DATA_DIR/ca.crt`): what agents pin through join tokens and clients pass as --ca-file. */
  caFile: string;
  /** SHA-256 over the CA's DER (the `K10<hash>` of join tokens). */
  caFingerprint: string;
  /** The server's own certificate and key, issued from the CA (reusable for the REST API's TLS). */
  serverCertFile: string;
  serverKeyFile: string;
  tls: { caPem: string; certPem: string; keyPem: string };
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
function wire(store: Store, ca: Ca, opts: ServerOptions, log: Logger, secrets: Secrets) {
  const desired = new DesiredStates(store.deployments, secrets.value);
  const auth = new CertificateAuthenticator({
    anchor: trustAnchor(ca.der),
    binding: (node) => store.nodeKeys.get(node),
    clock: { now: Date.now },
  });
  const hub = new AgentHub({
    auth,
    desired,
    log: log.child({ component: 'hub' }),
    onRefused: (r) => store.events.add({ ...r, kind: 'agent.refused' }),
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
  const recorder = new AgentRecorder(store);
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
  const counts = new CountsRepo(store.db);
  const metrics = createControlPlaneMetrics({
    agentsConnected: () => hub.connectedNodes().length,
    nodesOnline: () => liveness.onlineCount(),
    nodesTotal: () => counts.nodes(),
    rolloutsByState: () => counts.rolloutsByState(),
  });
  hub.subscribe(metrics.onHubEvent);
  store.observeTransactions(metrics.observeTransaction);
  return { hub, service, joinTokens, recorder, deployer, rollouts, liveness, metrics };
}

/** The CA and the server's certificate for its names (loopback, host name, listen hosts, extras). */
async function loadPki(opts: ServerOptions): Promise<{ ca: Ca; server: ServerCredentials }> {
  const { ca } = await loadOrCreateCa(opts.dataDir, pkiDeps);
  const listenHosts = [opts.grpcListen, opts.listen]
    .map((a) => splitHostPort(a).host)
    .filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::');
  const names = serverNames(hostname(), [...listenHosts, ...(opts.tlsNames ?? [])]);
  const server = await loadOrIssueServerCertificate(opts.dataDir, ca, { names, deps: pkiDeps });
  return { ca, server };
}

/** The control plane process: SQLite store, gRPC hub for agents, REST API for users. */
export async function runServer(opts: ServerOptions): Promise<RunningServer> {
  const log = createLogger('fleet-server');
  mkdirSync(opts.dataDir, { recursive: true });
  const store = Store.open(join(opts.dataDir, 'fleet.db'));
  store.nodes.resetConnections();
  const { ca, server } = await loadPki(opts);
  const tls = { caPem: ca.certPem, certPem: server.certPem, keyPem: server.keyPem };
  const { keyring, source: secretsKey } = loadKeyring(opts.dataDir);
  const secrets = new Secrets(store, keyring);
  const wired = wire(store, ca, opts, log, secrets);
  const { hub, service, joinTokens, recorder, deployer, rollouts, liveness, metrics } = wired;
  // Rollouts that were running when the process stopped go on from the batch they were in.
  rollouts.resume();
  const adminTokenFile = join(opts.dataDir, 'admin-token');
  if (ensureBootstrapToken(store, adminTokenFile, { now: Date.now }))
    log.warn({ file: adminTokenFile }, 'no admin token existed: wrote the bootstrap admin token');

  const grpcServer = new grpc.Server({
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    // A bigger message is refused with RESOURCE_EXHAUSTED before it is decoded.
    'grpc.max_receive_message_length': opts.grpcMaxMessageBytes ?? 4 * 1024 * 1024,
  });
  grpcServer.addService(AgentServiceService, service);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(opts.grpcListen, agentPortCredentials(tls), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );

  const app = Fastify({
    loggerInstance: log.child({ component: 'api' }),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
  });
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
    adminTokenFile,
    async close() {
      await app.close();
      rollouts.stop();
      recorder.flush();
      hub.shutdown();
      liveness.stop();
      // Agent streams never end on their own: cut them; agents keep enforcing and reconnect later.
      grpcServer.forceShutdown();
      store.close();
    },
  };
}
