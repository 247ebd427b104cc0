/**
 * One process of simulated agents for the rollout benchmark (`sim-fleet.ts` forks a few of them).
 * Each simulated agent is the real agent's `Connection` (dialing, hello, heartbeats every 2 s,
 * keepalive, redial with backoff) on its own HTTP/2 connection, with no container runtime behind
 * it: it acknowledges each new desired state at once, then reports every service of it healthy
 * with all replicas ready, as a real agent does once its containers pass their probes (at once,
 * or — with a spread — first "starting" and then healthy after a random delay up to the spread, as
 * probes pass at different moments on different hosts); a rollout's prefetch is answered
 * "present". Each ack's and each healthy report's time is kept per revision of the benchmark's
 * deployment and sent to the parent when it asks.
 *
 * Parent → child (IPC): {kind:'connected'} → {kind:'connected', count};
 *   {kind:'spread', ms} → {kind:'spread', ms};
 *   {kind:'acks', revision, waitMs} → {kind:'acks', revision, count, firstMs, lastMs, lastHealthyMs}
 *   once every agent here acked that revision (and reported it healthy), or after waitMs. The
 *   child exits when the IPC channel closes.
 */

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Connection } from '../../agent/src/connection.js';
import { mtlsCredentials } from '../../agent/src/enroll/client.js';
import { startTls } from '../../agent/src/enroll/start.js';
import { factsSummary } from '../../agent/src/facts.js';
import { createLogger, type Logger } from '../../common/log.js';
import { VERSION } from '../../common/version.js';
import {
  type DesiredState,
  type Prefetch,
  ServiceState,
  type StatusReport,
} from '../../proto/gen/fleet/v1/agent.js';

export interface SimConfig {
  address: string;
  /** A join token per node: each simulated agent enrolls and speaks mutual TLS, as production does. */
  joinTokens: Record<string, string>;
  /** Where each node's key and certificate go (a folder per node). */
  tlsDir: string;
  nodes: string[];
  labels: Record<string, string>;
  /** The deployment whose revisions the acks are counted for. */
  deployment: string;
  /**
   * The TLS benchmark's baseline only (tls.ts): no enrollment, an insecure channel, against the
   * plaintext control plane that benchmark builds in its own process. Nothing in fleet offers it.
   */
  plaintext?: boolean;
}

export type ToChild =
  | { kind: 'connected' }
  | { kind: 'connects'; sinceMs: number }
  | { kind: 'spread'; ms: number }
  | { kind: 'acks'; revision: number; waitMs: number };
export type FromChild =
  | { kind: 'connected'; count: number }
  | { kind: 'connects'; times: number[] }
  | { kind: 'spread'; ms: number }
  | ({ kind: 'acks'; revision: number } & AckStats);

/** Wall-clock ms with sub-ms resolution, comparable across processes of one machine. */
export const wallMs = () => performance.timeOrigin + performance.now();

interface AckStats {
  /** When each node acked (wall ms). */
  at: Record<string, number>;
  count: number;
  firstMs: number;
  lastMs: number;
  /** How many reported it healthy, and when the last did. */
  healthy: number;
  lastHealthyMs: number;
}

/** Every service of the desired state serving with all replicas ready, as a converged agent says. */
function healthyReport(d: DesiredState, serving = true): StatusReport {
  return {
    desiredVersion: d.version,
    services: d.deployments.flatMap((dep) =>
      dep.services.map((s) => ({
        deployment: dep.name,
        service: s.name,
        revision: dep.revision,
        state: !serving
          ? ServiceState.SERVICE_STATE_STARTING
          : s.health
            ? ServiceState.SERVICE_STATE_HEALTHY
            : ServiceState.SERVICE_STATE_RUNNING,
        containers: [],
        lastError: '',
        readyReplicas: serving ? s.replicas : 0,
        desiredReplicas: s.replicas,
        progress: '',
      })),
    ),
    observedAtMs: Date.now(),
    events: [],
    converged: serving,
  };
}

class SimAgents {
  private readonly conns: Connection[] = [];
  /** When each (re)connect completed (wall ms): the stream answered with a desired state. */
  readonly connectTimes: number[] = [];
  readonly acks = new Map<number, AckStats>();
  private readonly waiters: { revision: number; done: () => void }[] = [];
  /** Healthy reports follow the ack after a random delay up to this (0: at once). */
  spreadMs = 0;

  constructor(private readonly cfg: SimConfig) {}

  /** Enrolls every node (25 at a time), then dials each with its own certificate. */
  async start() {
    const log = createLogger('fleet-sim', process.env.FLEET_SIM_LOG_LEVEL === 'error' ? 'error' : 'warn');
    const nodes = this.cfg.nodes;
    for (let i = 0; i < nodes.length; i += 25)
      await Promise.all(nodes.slice(i, i + 25).map((node) => this.startOne(node, log)));
  }

  /**
   * Mutual TLS as the real agent starts it (`startTls`): the node's certificate when it enrolled
   * before (a benchmark's cached fleet), else an enrollment with its join token. The TLS
   * baseline: an insecure channel.
   */
  private async credentials(node: string, log: Logger): Promise<grpc.ChannelCredentials> {
    if (this.cfg.plaintext) return grpc.credentials.createInsecure();
    const token = this.cfg.joinTokens[node];
    const { tls } = await startTls({
      address: this.cfg.address,
      node,
      labels: this.cfg.labels,
      tlsDir: join(this.cfg.tlsDir, node),
      ...(token ? { joinToken: token } : {}),
      log,
    });
    return mtlsCredentials(tls, this.cfg.address);
  }

  private async startOne(node: string, log: Logger) {
    const credentials = await this.credentials(node, log);
    const facts = factsSummary('sim');
    {
      let version = '';
      let report: StatusReport | undefined;
      const conn: Connection = new Connection({
        address: this.cfg.address,
        credentials,
        node,
        log,
        channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
        hello: async () => ({ node, labels: this.cfg.labels, agentVersion: VERSION, facts }),
        latestReport: () => report,
        onConnect: () => this.connectTimes.push(wallMs()),
        onDesired: (d) => {
          conn.ack(d.version);
          if (d.version === version) return;
          version = d.version;
          this.note(d, 'ack', node);
          const healthy = () => {
            if (version !== d.version) return;
            report = healthyReport(d);
            conn.sendStatus(report);
            this.note(d, 'healthy');
          };
          if (this.spreadMs === 0) return healthy();
          report = healthyReport(d, false);
          conn.sendStatus(report);
          setTimeout(healthy, Math.random() * this.spreadMs);
        },
        onPrefetch: (p) => conn.sendPrefetchStatus(present(p)),
      });
      this.conns.push(conn);
      conn.start();
    }
  }

  connected(): number {
    return this.conns.filter((c) => c.connected).length;
  }

  /** Resolves once every agent here acked `revision` and reported it healthy, or after `waitMs`. */
  async acked(revision: number, waitMs: number): Promise<AckStats> {
    const all = () => (this.acks.get(revision)?.healthy ?? 0) >= this.conns.length;
    if (!all()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.waiters.push({
          revision,
          done: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    return (
      this.acks.get(revision) ?? { at: {}, count: 0, firstMs: 0, lastMs: 0, healthy: 0, lastHealthyMs: 0 }
    );
  }

  stop() {
    for (const c of this.conns) c.stop();
  }

  private note(d: DesiredState, what: 'ack' | 'healthy', node = '') {
    const revision = d.deployments.find((x) => x.name === this.cfg.deployment)?.revision;
    if (revision === undefined) return;
    const at = wallMs();
    const s = this.acks.get(revision) ?? {
      at: {},
      count: 0,
      firstMs: at,
      lastMs: at,
      healthy: 0,
      lastHealthyMs: 0,
    };
    if (what === 'ack') {
      s.count++;
      s.lastMs = at;
      s.at[node] = at;
    } else {
      s.healthy++;
      s.lastHealthyMs = at;
    }
    this.acks.set(revision, s);
    if (s.healthy < this.conns.length) return;
    for (const w of this.waiters.filter((x) => x.revision === revision)) w.done();
  }
}

function present(p: Prefetch) {
  return {
    deployment: p.deployment,
    revision: p.revision,
    images: p.images.map((image) => ({ image, state: 'present', bytesDone: 0, bytesTotal: 0, error: '' })),
  };
}

function main() {
  const file = process.env.FLEET_SIM_CONFIG_FILE;
  const cfg = JSON.parse(
    file ? readFileSync(file, 'utf8') : (process.env.FLEET_SIM_CONFIG ?? ''),
  ) as SimConfig;
  if (file) rmSync(file, { force: true });
  const agents = new SimAgents(cfg);
  const send = (m: FromChild) => process.send?.(m);
  process.on('message', (m: ToChild) => {
    if (m.kind === 'connected') send({ kind: 'connected', count: agents.connected() });
    else if (m.kind === 'connects')
      send({ kind: 'connects', times: agents.connectTimes.filter((t) => t >= m.sinceMs) });
    else if (m.kind === 'spread') {
      agents.spreadMs = m.ms;
      send({ kind: 'spread', ms: m.ms });
    } else
      void agents.acked(m.revision, m.waitMs).then((s) => send({ kind: 'acks', revision: m.revision, ...s }));
  });
  // The parent gone (finished, or killed): nothing here may outlive it.
  process.on('disconnect', () => {
    agents.stop();
    process.exit(0);
  });
  agents.start().catch((err: Error) => {
    process.stderr.write(`fleet-sim: ${err.message}\n`);
    process.exit(1);
  });
}

if (process.env.FLEET_SIM_CONFIG || process.env.FLEET_SIM_CONFIG_FILE) main();
