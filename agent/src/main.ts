import type { Server } from 'node:http';
import { join } from 'node:path';
import { systemClock } from '../../common/clock.js';
import { createLogger, type Logger } from '../../common/log.js';
import { withTimeout } from '../../common/timeout.js';
import { VERSION } from '../../common/version.js';
import type { DesiredState, NodePreview } from '../../proto/gen/fleet/v1/agent.js';
import { Connection } from './connection.js';
import type { dockerAdapter } from './docker/index.js';
import { type AgentTls, mtlsCredentials } from './enroll/client.js';
import type { NodeKey } from './enroll/keys.js';
import { Renewer } from './enroll/renewer.js';
import { startTls } from './enroll/start.js';
import { collectHost } from './facts/host.js';
import { FactsReporter } from './facts/reporter.js';
import { factsSummary } from './facts.js';
import type { GpuInfo } from './gpu/assign.js';
import { ExecFileRunner, GpuCollector } from './gpu/collector.js';
import { httpProbe } from './health/probe.js';
import { Prober } from './health/prober.js';
import { type AgentMetrics, createAgentMetrics, serveMetrics } from './metrics.js';
import { Prefetcher } from './prefetch/prefetcher.js';
import { withSharedPulls } from './prefetch/shared-pulls.js';
import { FileProbe } from './preflight/files.js';
import { PreflightGate } from './preflight/gate.js';
import { runPreflight } from './preflight/run.js';
import { readFleetApiKeys } from './proxy/keys.js';
import { Reconciler } from './reconcile/loop.js';
import { RestartHistoryFile } from './restart-store.js';
import type { ContainerRuntime } from './runtime.js';
import type { SecretFiles } from './secrets/files.js';
import { intake } from './secrets/intake.js';
import { buildDocker, loadPersisted } from './startup.js';
import { StateStore } from './state-store.js';

export interface AgentOptions {
  node: string;
  labels: Record<string, string>;
  server: string;
  /** A join token (K10…), used only when the node has no valid certificate yet. */
  joinToken?: string;
  stateDir: string;
  dockerSocket: string;
  resyncMs: number;
  heartbeatMs: number;
  /** How often a held (failing) desired state is checked again. */
  preflightRetryMs: number;
  /** Free space Docker's filesystem must have before an image is pulled. */
  minFreeDiskBytes: number;
  gpuIntervalMs: number;
  hostIntervalMs: number;
  /** nvidia-smi binary (name on PATH or a path) */
  nvidiaSmi: string;
  /** host:port for GET /metrics; empty to serve none */
  metricsListen: string;
  /** Host directories containers may mount (`--volume-roots`); default DEFAULT_VOLUME_ROOTS. */
  volumeRoots?: readonly string[];
}

export interface RunningAgent {
  reconciler: Reconciler;
  connection: Connection;
  facts: FactsReporter;
  metricsUrl?: string;
  stop(): Promise<void>;
}

/** Parts wired to each other in both directions: set once built, read only after the agent started. */
interface Late {
  reconciler?: Reconciler;
  prefetcher?: Prefetcher;
  connection?: Connection;
  gate?: PreflightGate;
  facts?: FactsReporter;
  /** `fleet apply --check --diff`: what a proposed state would change for one deployment here. */
  preview?: (d: DesiredState, deployment: string) => Promise<NodePreview>;
}

type DockerAdapter = ReturnType<typeof dockerAdapter>;
type Check = (d: DesiredState, hashWaitMs?: number) => ReturnType<typeof runPreflight>;

/**
 * The agent process: wiring only. It enforces the persisted desired state from the first
 * second, before (and whether or not) the control plane answers.
 */
export async function runAgent(opts: AgentOptions): Promise<RunningAgent> {
  const log = createLogger('fleet-agent').child({ node: opts.node });
  const { tls, key, tlsDir } = await startIdentity(opts, log);
  const store = new StateStore(join(opts.stateDir, opts.node));
  const late: Late = {};
  const { docker, secrets, logins } = buildDocker(opts, log);
  const gpuCollector = new GpuCollector({ runner: new ExecFileRunner(), binary: opts.nvidiaSmi });
  const prober = new Prober({
    probe: httpProbe,
    // The prober logs each change itself; a change is a reason to look again.
    onChange: () => late.reconciler?.trigger('health'),
    log: log.child({ component: 'health' }),
  });
  // One pull per image at a time, whether the reconciler or a rollout's prefetch asks.
  const runtime = withSharedPulls(docker.runtime);
  const reconciler = buildReconciler(opts, log, { ...docker, runtime }, prober, gpuCollector, late);
  late.reconciler = reconciler;
  // `fleet apply --check --diff` only: the preview (and its diff library) loads when first asked.
  late.preview = async (d, deployment) =>
    (await import('./preview/run.js')).previewDeployment(d, deployment, {
      node: opts.node,
      runtime,
      health: (id) => prober.get(id),
      gpus: () => gpusOf(gpuCollector),
      proxy: { currentConfig: (dep) => docker.proxyDriver.currentConfig(dep), readApiKeys: readFleetApiKeys },
    });
  const prefetcher = new Prefetcher({
    runtime,
    clock: systemClock,
    send: (s) => late.connection?.sendPrefetchStatus(s) ?? false,
    log: log.child({ component: 'prefetch' }),
  });
  late.prefetcher = prefetcher;
  const events = watchDocker(docker, reconciler, log);
  const check = preflightCheck(opts, docker.runtime, late);
  const gate = buildGate(opts, log, { store, secrets }, check, late);
  late.gate = gate;
  const connection = buildConnection(opts, tls, log, docker.runtime, check, late, (d) =>
    intake(d, secrets, logins, log),
  );
  late.connection = connection;
  const renewer = buildRenewer(opts, { tls, key, tlsDir }, connection, log);
  const metrics = createAgentMetrics(opts.node, {
    reconcileRounds: () => reconciler.rounds,
    restartsIssued: () => reconciler.restarts,
    lastReportAtMs: () => connection.lastReportAtMs ?? 0,
    connected: () => connection.connected ?? false,
  });
  const facts = new FactsReporter({
    gpu: gpuCollector,
    host: () => collectHost(() => docker.runtime.info(), reconciler.mountedHostPaths()),
    containers: () => docker.runtime.list(),
    send: (f) => connection.sendFacts(f),
    log: log.child({ component: 'facts' }),
    metrics,
    gpuIntervalMs: opts.gpuIntervalMs,
    hostIntervalMs: opts.hostIntervalMs,
  });
  late.facts = facts;
  const served = await serveAgentMetrics(opts, metrics.registry, log);
  const persisted = loadPersisted(store, log, secrets);
  if (persisted) {
    logins.learn(persisted);
    log.info({ version: persisted.version.slice(0, 12) }, 'enforcing persisted desired state');
    reconciler.setDesired(persisted);
  }
  reconciler.start();
  connection.start();
  renewer.start();
  // Facts never delay the agent's start: the first collection runs in the background.
  void facts.start();
  return {
    reconciler,
    connection,
    facts,
    metricsUrl: served?.url,
    async stop() {
      events.stop();
      prober.stop();
      facts.stop();
      gate.stop();
      prefetcher.stop();
      renewer.stop();
      connection.stop();
      served?.server.close();
      await reconciler.stop();
    },
  };
}

/**
 * The node's certificate, enrolling with the join token first when it has none (or an expired
 * one). Before anything else: without an identity there is nothing to connect with.
 */
async function startIdentity(opts: AgentOptions, log: Logger) {
  const tlsDir = join(opts.stateDir, opts.node, 'tls');
  try {
    const got = await startTls({
      address: opts.server,
      node: opts.node,
      labels: opts.labels,
      tlsDir,
      joinToken: opts.joinToken,
      log: log.child({ component: 'enroll' }),
    });
    return { ...got, tlsDir };
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot start without a certificate');
    throw err;
  }
}

/** Renews the certificate over the live connection and switches the connection to it. */
function buildRenewer(
  opts: AgentOptions,
  id: { tls: AgentTls; key: NodeKey; tlsDir: string },
  connection: Connection,
  log: Logger,
) {
  return new Renewer({
    node: opts.node,
    ...id,
    renew: (csrPem) => connection.renew(csrPem),
    switchTo: (next) => connection.useCredentials(mtlsCredentials(next, opts.server)),
    log: log.child({ component: 'renew' }),
  });
}

function buildReconciler(
  opts: AgentOptions,
  log: Logger,
  docker: Pick<DockerAdapter, 'proxyDriver'> & { runtime: ContainerRuntime },
  prober: Prober,
  gpuCollector: GpuCollector,
  late: Late,
): Reconciler {
  return new Reconciler({
    node: opts.node,
    runtime: docker.runtime,
    log: log.child({ component: 'reconcile' }),
    report: (r) => late.connection?.sendStatus(r) ?? false,
    resyncMs: opts.resyncMs,
    preflight: () => late.gate?.latest(),
    health: prober,
    proxy: { driver: docker.proxyDriver, readApiKeys: readFleetApiKeys },
    gpus: () => gpusOf(gpuCollector),
    volumeRoots: opts.volumeRoots,
    restartHistory: new RestartHistoryFile(
      join(opts.stateDir, opts.node),
      log.child({ component: 'reconcile' }),
    ),
  });
}

/**
 * Exits are answered when Docker announces them, not at the next resync; after the daemon
 * itself restarted (the stream broke and came back), everything is looked at again.
 */
function watchDocker(docker: DockerAdapter, reconciler: Reconciler, log: Logger) {
  return docker.watchEvents({
    log: log.child({ component: 'docker-events' }),
    onEvent: (e) => {
      if (e.action === 'die' && e.role !== 'proxy') reconciler.containerExited(e.id, e.exitCode, e.atMs);
      else if (e.action === 'die' || e.action === 'oom' || e.action === 'destroy')
        reconciler.trigger(`docker ${e.action}`);
    },
    onReconnect: () => reconciler.trigger('docker reconnected'),
  });
}

/** The preflight checks of a desired state on this node. */
function preflightCheck(opts: AgentOptions, runtime: DockerAdapter['runtime'], late: Late): Check {
  const fileProbe = new FileProbe();
  return (d, hashWaitMs) =>
    runPreflight(d, {
      hashWaitMs,
      runtime,
      files: fileProbe,
      minFreeDiskBytes: opts.minFreeDiskBytes,
      volumeRoots: opts.volumeRoots,
      // Waits (boundedly) for the first GPU and disk collection after a start.
      facts: async () => {
        await Promise.race([late.facts?.whenReady(), new Promise((r) => setTimeout(r, 10_000).unref())]);
        return late.facts?.latest();
      },
    });
}

/** Every new desired state passes the preflight checks before it is persisted and replaces what runs. */
function buildGate(
  opts: AgentOptions,
  log: Logger,
  { store, secrets }: { store: StateStore; secrets: SecretFiles },
  check: Check,
  late: Late,
) {
  // Secret files of the state before are kept one change longer: a proxy still serving it mounts them.
  let previous: DesiredState | undefined;
  return new PreflightGate({
    check: (d) => check(d),
    log: log.child({ component: 'preflight' }),
    retryMs: opts.preflightRetryMs,
    changed: () => late.reconciler?.trigger('preflight'),
    apply: (d) => {
      try {
        store.save(d);
      } catch (err) {
        // Enforce it anyway; it is simply not remembered across an agent restart until a save works.
        log.error({ err: (err as Error).message }, 'persisting the desired state failed');
      }
      log.info(
        { version: d.version.slice(0, 12), deployments: d.deployments.map((x) => `${x.name}@${x.revision}`) },
        'desired state applied',
      );
      late.reconciler?.setDesired(d);
      late.connection?.ack(d.version);
      secrets.prune([...(previous ? [previous] : []), d]);
      previous = d;
    },
  });
}

function buildConnection(
  opts: AgentOptions,
  tls: AgentTls,
  log: Logger,
  runtime: DockerAdapter['runtime'],
  check: Check,
  late: Late,
  absorb: (d: DesiredState) => DesiredState,
): Connection {
  return new Connection({
    address: opts.server,
    credentials: mtlsCredentials(tls, opts.server),
    node: opts.node,
    log: log.child({ component: 'connection' }),
    heartbeatMs: opts.heartbeatMs,
    hello: async () => ({
      node: opts.node,
      labels: opts.labels,
      agentVersion: VERSION,
      facts: factsSummary(
        await withTimeout(runtime.version(), 2_000, 'docker version').catch(() => 'unreachable'),
      ),
    }),
    latestReport: () => late.reconciler?.latestReport(),
    onConnect: () => late.facts?.resend(),
    // Every new desired state passes the preflight checks before it replaces what runs.
    onDesired: (raw) => {
      const d = absorb(raw);
      if (d.version === late.reconciler?.desiredVersion) {
        late.gate?.drop();
        late.connection?.ack(d.version);
        return;
      }
      late.gate?.offer(d);
    },
    // The control plane waits 10 s for an answer: a long model hash answers "still hashing".
    onPreflight: async (raw, deployment) => {
      const d = absorb(raw);
      const [result, preview] = await Promise.all([
        check(d, 8_000),
        deployment ? late.preview?.(d, deployment) : undefined,
      ]);
      return { result, ...(preview ? { preview } : {}) };
    },
    onPrefetch: (p) => late.prefetcher?.handle(p),
  });
}

/** GET /metrics when asked for; metrics are worth a log line, not the workloads. */
async function serveAgentMetrics(
  opts: AgentOptions,
  registry: AgentMetrics['registry'],
  log: Logger,
): Promise<{ server: Server; url: string } | undefined> {
  if (!opts.metricsListen) return undefined;
  const i = opts.metricsListen.lastIndexOf(':');
  try {
    const server = await serveMetrics(
      registry,
      opts.metricsListen.slice(0, i),
      Number(opts.metricsListen.slice(i + 1)),
    );
    const a = server.address() as { address: string; port: number };
    const url = `http://${a.address}:${a.port}/metrics`;
    log.info({ metricsUrl: url }, 'serving metrics');
    return { server, url };
  } catch (err) {
    // The agent runs on without them.
    log.error({ err: (err as Error).message, listen: opts.metricsListen }, 'cannot serve metrics');
    return undefined;
  }
}

/** The node's GPUs as the planner places replicas on them (none when nvidia-smi has not answered). */
function gpusOf(c: GpuCollector): GpuInfo[] {
  return (c.last?.gpus ?? []).map((g) => ({
    uuid: g.uuid,
    index: g.index,
    ...(g.memoryTotalMiB !== null ? { memoryTotalMib: g.memoryTotalMiB } : {}),
    ...(g.memoryFreeMiB !== null ? { memoryFreeMib: g.memoryFreeMiB } : {}),
    migMode: g.migMode === 'enabled',
  }));
}
