/**
 * Issue 12, performance: what TLS costs fleet, measured side by side in one run.
 *
 * Two control planes in this process, wired by the same `startControlPlane`: one with production's
 * `MUTUAL_TLS` (HTTPS REST, mutual TLS for agents, identity from the client certificate), and one
 * with `PLAINTEXT`, a transport that exists only in this file (REST over HTTP, an insecure agent
 * port, the node taken from `x-fleet-node`). Nothing in fleet can select it. Each gets its own
 * simulated agents (sim-fleet: the real agent `Connection` in child processes, one HTTP/2
 * connection each; over mutual TLS after enrolling, or over the insecure channel).
 *
 * 1. apply → running: `POST /v1/apply` on a fresh connection (as a CLI run makes one, TLS
 *    handshake included) until every agent acked and reported the revision healthy (serial 100%,
 *    min_healthy_time 0). push → ack: per node, the rollout's push (its `pushedMs`) to the agent's
 *    ack. Applies alternate between the two control planes, so both see the same machine.
 * 2. Enrollment: one agent at a time (key, GetCa, CA check, CSR, Enroll), and how long N agents
 *    took to enroll and connect in (1).
 * 3. 1,000 agents reconnecting at once: the control plane restarts (same ports, same data
 *    folder) and every agent redials (full jitter, capped at 10 s); the control plane's CPU from
 *    its start until all are back (the agents say so, then the control plane counts them online), per reconnect, TLS against plaintext.
 *
 * BENCH_TLS_AGENTS (200), BENCH_TLS_APPLIES (20 per side), BENCH_TLS_ENROLL (50),
 * BENCH_TLS_STORM (1000), BENCH_SIM_PROCS (2).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { enroll } from '../../agent/src/enroll/client.js';
import { parseJoinToken } from '../../common/join-token.js';
import { createLogger } from '../../common/log.js';
import type { AuthenticatedCall, AuthResult } from '../../control-plane/src/grpc/auth.js';
import {
  MUTUAL_TLS,
  type RunningServer,
  startControlPlane,
  type Transport,
} from '../../control-plane/src/server.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { wallMs } from './sim-agents.js';
import { SimFleet, simPlaybook } from './sim-fleet.js';
import { fmt, median, quantile } from './stats.js';

const AGENTS = Number(process.env.BENCH_TLS_AGENTS ?? 200);
const APPLIES = Number(process.env.BENCH_TLS_APPLIES ?? 20);
const ENROLLS = Number(process.env.BENCH_TLS_ENROLL ?? 50);
const STORM = Number(process.env.BENCH_TLS_STORM ?? 1000);
const PROCS = Number(process.env.BENCH_SIM_PROCS ?? 2);
const DEPLOYMENT = 'tlsbench';

/** The baseline: no TLS anywhere, the node named by the caller. For this benchmark only. */
const PLAINTEXT: Transport = {
  agentPort: () => grpc.ServerCredentials.createInsecure(),
  agentAuth: () => ({
    authenticate(call: AuthenticatedCall): AuthResult {
      const node = String(call.metadata.get('x-fleet-node')[0] ?? '');
      if (!node) return { ok: false, reason: 'no-certificate', message: 'no x-fleet-node' };
      return {
        ok: true,
        identity: { node, keyFingerprint: '', serial: '', notAfterMs: Number.MAX_SAFE_INTEGER },
      };
    },
  }),
  restTls: () => null,
};

type Side = 'tls' | 'plain';
const TRANSPORTS: Record<Side, Transport> = { tls: MUTUAL_TLS, plain: PLAINTEXT };

/** One control plane of the benchmark, restartable on the same ports and data. */
class Plane {
  server!: RunningServer;
  admin = '';
  ca?: string;
  private opts!: Parameters<typeof startControlPlane>[0];

  constructor(
    readonly side: Side,
    readonly dir: string,
  ) {}

  async start() {
    if (!this.opts) {
      this.opts = {
        dataDir: join(this.dir, this.side),
        listen: `127.0.0.1:${await freePort()}`,
        grpcListen: `127.0.0.1:${await freePort()}`,
        rateLimitPerMinute: 1_000_000,
      };
    }
    this.server = await startControlPlane(this.opts, TRANSPORTS[this.side]);
    this.admin = readFileSync(this.server.adminTokenFile, 'utf8').trim();
    this.ca = this.side === 'tls' ? this.server.tls.caPem : undefined;
  }

  /** One REST call on a fresh connection (a CLI run's cost: TCP, and for TLS the handshake). */
  call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const url = new URL(path, this.server.httpUrl);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${this.admin}` };
    if (data) headers['content-type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const r = request(url, { method, headers, ca: this.ca, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : {}) as T }),
        );
      });
      r.on('error', reject);
      r.end(data);
    });
  }

  async joinTokens(nodes: readonly string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    if (this.side === 'plain') return out;
    for (let i = 0; i < nodes.length; i += 20)
      await Promise.all(
        nodes.slice(i, i + 20).map(async (n) => {
          const r = await this.call<{ token: string }>('POST', '/v1/join-tokens', {
            labels: { group: 'sim' },
          });
          if (r.status !== 200) throw new Error(`join token: HTTP ${r.status}`);
          out[n] = r.body.token;
        }),
      );
    return out;
  }

  /** N simulated agents for this control plane, all connected; and how long that took. */
  async fleet(n: number): Promise<{ sim: SimFleet; connectMs: number }> {
    const t0 = performance.now();
    const sim = new SimFleet(
      n,
      {
        address: this.server.grpcAddress,
        joinTokens: await this.joinTokens(SimFleet.names(n)),
        // One folder per side: a node enrolling again keeps its key, so its name binding holds.
        tlsDir: join(this.dir, `${this.side}-agents`),
        labels: { group: 'sim' },
        deployment: DEPLOYMENT,
        plaintext: this.side === 'plain',
      },
      PROCS,
    );
    await sim.allConnected(300_000);
    return { sim, connectMs: performance.now() - t0 };
  }

  /** CPU seconds of this process (both planes share it; only one is busy at a time here). */
  static cpuS() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }

  async connectedAgents(): Promise<number> {
    return (await this.call<{ agentsConnected: number }>('GET', '/healthz')).body.agentsConnected;
  }
}

const playbook = (i: number) => simPlaybook(DEPLOYMENT, i, '0s');

interface Sample {
  /** apply → every agent reported the revision healthy */
  applyToRunningMs: number;
  /** apply → the rollout succeeded (its updatedMs, ms resolution) */
  applyToSucceededMs: number;
  pushToAckMs: number[];
}

/** One apply on `plane` until every agent acked and reported healthy; per-node push → ack. */
async function oneApply(plane: Plane, sim: SimFleet, i: number): Promise<Sample> {
  const t0 = wallMs();
  const res = await plane.call<{ revision: number; rollout?: number; message?: string }>(
    'POST',
    '/v1/apply',
    {
      source: playbook(i),
      file: `tls-${i}.yaml`,
    },
  );
  if (res.status !== 200 || res.body.rollout === undefined)
    throw new Error(`${plane.side} apply ${i}: HTTP ${res.status} ${res.body.message}`);
  const acks = await sim.acked(res.body.revision, 60_000);
  if (acks.healthy < sim.size)
    throw new Error(`${plane.side} apply ${i}: ${acks.healthy}/${sim.size} healthy`);
  // The rollout judges the reports and succeeds (what `fleet apply` waits for); then the next apply.
  type View = { state: string; updatedMs: number; nodes: { node: string; pushedMs: number }[] };
  const path = `/v1/deployments/${DEPLOYMENT}/rollouts/${res.body.rollout}`;
  const rollout = await waitFor(
    `${plane.side} rollout ${res.body.rollout} succeeded`,
    async () => {
      const r = await plane.call<View>('GET', path);
      return r.body.state === 'succeeded' ? r.body : undefined;
    },
    60_000,
    20,
  );
  const pushToAckMs = rollout.nodes
    .filter((n) => n.pushedMs > 0 && acks.at[n.node] !== undefined)
    .map((n) => acks.at[n.node]! - n.pushedMs);
  return {
    applyToRunningMs: acks.lastHealthyMs - t0,
    applyToSucceededMs: rollout.updatedMs - t0,
    pushToAckMs,
  };
}

/** How long one agent takes to enroll (key, GetCa, CA check, CSR, Enroll), one after another. */
async function enrollTimes(plane: Plane, n: number): Promise<number[]> {
  const names = Array.from({ length: n }, (_, i) => `enr-${i}`);
  const tokens = await plane.joinTokens(names);
  const log = createLogger('bench-enroll', 'silent');
  const out: number[] = [];
  for (const node of names) {
    const token = parseJoinToken(tokens[node]!);
    if (!token.ok) throw new Error(token.message);
    const t0 = performance.now();
    await enroll({
      address: plane.server.grpcAddress,
      node,
      token: token.token,
      labels: {},
      tlsDir: join(plane.dir, 'enroll', node),
      log,
    });
    out.push(performance.now() - t0);
  }
  return out;
}

/** Restarts the control plane under `n` connected agents: wall time and CPU until all are back. */
async function storm(plane: Plane, n: number) {
  const { sim } = await plane.fleet(n);
  try {
    await plane.server.close();
    const t0 = performance.now();
    await plane.start();
    // From here on this process only serves the reconnects (startup excluded); counted on the
    // agents' side, so no REST polling adds to the control plane's CPU.
    const cpu0 = Plane.cpuS();
    await waitFor(`${n} agents back (${plane.side})`, async () => (await sim.connected()) >= n, 120_000, 100);
    // Then until the control plane has taken every hello (a few REST polls at the very end).
    await waitFor(
      `${n} agents online (${plane.side})`,
      async () => (await plane.connectedAgents()) >= n,
      60_000,
      100,
    );
    const cpuS = Plane.cpuS() - cpu0;
    return { wallMs: performance.now() - t0, cpuS, perAgentMs: (cpuS * 1000) / n };
  } finally {
    sim.close();
  }
}

const ratio = (tls: number, plain: number) =>
  `${(tls / plain).toFixed(2)}× (${tls >= plain ? '+' : ''}${(((tls - plain) / plain) * 100).toFixed(0)}%)`;
const row = (name: string, tls: readonly number[], plain: readonly number[]) => [
  `  ${name.padEnd(26)} TLS p50 ${fmt(median(tls)).padStart(9)} p99 ${fmt(quantile(tls, 0.99)).padStart(9)} | plaintext p50 ${fmt(median(plain)).padStart(9)} p99 ${fmt(quantile(plain, 0.99)).padStart(9)} | p50 ratio ${ratio(median(tls), median(plain))}`,
];

/** Parts 1 and 2: both control planes with AGENTS agents each, applies alternating. */
async function latency(planes: Record<Side, Plane>) {
  const fleets = {} as Record<Side, { sim: SimFleet; connectMs: number }>;
  try {
    fleets.tls = await planes.tls.fleet(AGENTS);
    fleets.plain = await planes.plain.fleet(AGENTS);
    const samples: Record<Side, Sample[]> = { tls: [], plain: [] };
    // One warm-up apply each, not counted (first revision, caches, JIT).
    for (const side of ['tls', 'plain'] as const) await oneApply(planes[side], fleets[side].sim, 0);
    for (let i = 1; i <= APPLIES; i++)
      for (const side of i % 2 ? (['tls', 'plain'] as const) : (['plain', 'tls'] as const))
        samples[side].push(await oneApply(planes[side], fleets[side].sim, i));
    return { samples, connectMs: { tls: fleets.tls.connectMs, plain: fleets.plain.connectMs } };
  } finally {
    fleets.tls?.sim.close();
    fleets.plain?.sim.close();
  }
}

/** Runs the TLS benchmark and returns its report lines. */
export async function benchTls(): Promise<string[]> {
  process.env.FLEET_LOG_LEVEL ??= 'error';
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-tls-'));
  const planes = { tls: new Plane('tls', dir), plain: new Plane('plain', dir) };
  try {
    await planes.tls.start();
    await planes.plain.start();
    const { samples, connectMs } = await latency(planes);
    const enrollMs = await enrollTimes(planes.tls, ENROLLS);
    await planes.plain.server.close();
    const stormTls = await storm(planes.tls, STORM);
    await planes.tls.server.close();
    await planes.plain.start();
    const stormPlain = await storm(planes.plain, STORM);
    const apply = (s: Side) => samples[s].map((x) => x.applyToRunningMs);
    const ack = (s: Side) => samples[s].flatMap((x) => x.pushToAckMs);
    const done = (s: Side) => samples[s].map((x) => x.applyToSucceededMs);
    const added = median(apply('tls')) / median(apply('plain')) - 1;
    return [
      `TLS overhead: two control planes in one process (same wiring; MUTUAL_TLS vs a plaintext transport built only by this benchmark), ${AGENTS} simulated agents each in ${PROCS} processes, serial 100%, ${APPLIES} applies each, alternating:`,
      ...row('apply → running', apply('tls'), apply('plain')),
      ...row('apply → rollout succeeded', done('tls'), done('plain')),
      ...row('push → ack (per node)', ack('tls'), ack('plain')),
      `  target: TLS adds ≤ 20% to apply → running — ${added <= 0.2 ? 'met' : 'MISSED'} (${(added * 100).toFixed(0)}%)`,
      `enrollment (key, GetCa, CA check, CSR, Enroll), ${ENROLLS} one after another: p50 ${fmt(median(enrollMs))}  p99 ${fmt(quantile(enrollMs, 0.99))}; ${AGENTS} agents enrolled and connected in ${fmt(connectMs.tls)} (plaintext, connect only: ${fmt(connectMs.plain)})`,
      `${STORM} agents reconnecting at once after a control-plane restart (full jitter, cap 10 s):`,
      `  TLS        all back in ${fmt(stormTls.wallMs)}, control plane CPU ${stormTls.cpuS.toFixed(2)} s = ${stormTls.perAgentMs.toFixed(2)} ms per reconnect`,
      `  plaintext  all back in ${fmt(stormPlain.wallMs)}, control plane CPU ${stormPlain.cpuS.toFixed(2)} s = ${stormPlain.perAgentMs.toFixed(2)} ms per reconnect`,
      `  handshake cost: ${(stormTls.perAgentMs - stormPlain.perAgentMs).toFixed(2)} ms CPU per agent (${ratio(stormTls.cpuS, stormPlain.cpuS)} the plaintext reconnect's CPU)`,
    ];
  } finally {
    for (const p of Object.values(planes)) await p.server?.close().catch(() => {});
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
