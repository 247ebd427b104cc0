/**
 * Issue 13: one control plane and N agents, N = 1,000, 5,000 and 10,000 (BENCH_SCALE_NS), each
 * figure beside the raw grpc-js floor at N streams (floor.ts) measured in the same run.
 *
 * The agents are `sim-agents.ts`: the real agent `Connection` and `startTls` (enrolled once with a
 * join token each, then mutual TLS with their own certificates, as production runs), one HTTP/2
 * connection each, 2,500 per process, against `fleet server` in its own process. The enrolled
 * fleet (the control plane's data folder and every node's key and certificate) is kept in
 * BENCH_SCALE_DIR (/var/cache/fleet/bench-scale) across runs: enrolling 10,000 agents is paid once.
 * Each node carries labels n300=in…, n1000=in/out, n5000…, so `hosts: n1000=in` picks the first
 * 1,000. For each N, with a fresh control-plane process:
 * - connect: until all N have their desired state; control-plane RSS per agent; TCP connections;
 * - idle: control-plane CPU over 15 s while N agents heartbeat (every 2 s);
 * - applies (BENCH_SCALE_APPLIES, 5): apply → every agent acked, the REST answer, and the REST
 *   p99 of a node page and the deployment list asked meanwhile;
 * - restart: SIGTERM, start again on the same ports: until all are back, reconnects in the
 *   busiest second (target ≤ 20% of N), TCP connections and agents connected after (duplicates).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { desiredStateFor, toDeploymentSpec } from '../../control-plane/src/desired/spec.js';
import { parsePlaybook } from '../../control-plane/src/playbook/parse.js';
import { ControlMessage } from '../../proto/gen/fleet/v1/agent.js';
import { stop } from '../helpers/procs.js';
import { Floor } from './floor.js';
import { benchIngest } from './ingest.js';
import {
  adminCall,
  connectionsTo,
  cpuSeconds,
  mintJoinTokens,
  rssBytes,
  startControlPlane,
  succeededAt,
} from './rollout-scale.js';
import { wallMs } from './sim-agents.js';
import { SimFleet } from './sim-fleet.js';
import { fmt, median, quantile } from './stats.js';

const NS = (process.env.BENCH_SCALE_NS ?? '1000,5000,10000').split(',').map(Number);
const APPLIES = Number(process.env.BENCH_SCALE_APPLIES ?? 5);
const CACHE = process.env.BENCH_SCALE_DIR ?? '/var/cache/fleet/bench-scale';
const PER_PROC = 2_500;
const DEPLOYMENT = 'scale';
/** The sizes a node's labels place it in (`n1000=in`: among the first 1,000). */
const TIERS = [300, 1_000, 2_000, 5_000, 10_000, 20_000];

const procsFor = (n: number) => Math.max(2, Math.ceil(n / PER_PROC));
const labelsOf = (i: number) => ({
  group: 'sim',
  ...Object.fromEntries(TIERS.map((t) => [`n${t}`, i < t ? 'in' : 'out'])),
});
const playbook = (n: number, i: number) => `name: ${DEPLOYMENT}
hosts: n${n}=in
serial: "100%"
rollout: { min_healthy_time: 0s, healthy_deadline: 120s }
services:
  web:
    image: 127.0.0.1:5000/fleet-test/web:1
    env: { GREETING: "scale-${i}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 1s, timeout: 500ms, retries: 2, start_period: 1s }
`;

/** The encoded size of the desired state the applies push (the floor pushes as many bytes). */
function pushBytes(): number {
  const parsed = parsePlaybook(playbook(1_000, 0), 'scale.yaml');
  if (!parsed.ok) throw new Error('the benchmark playbook does not parse');
  const spec = toDeploymentSpec({
    deployment: DEPLOYMENT,
    revision: 1,
    hash: 'x'.repeat(64),
    spec: parsed.playbook,
  });
  const msg: ControlMessage = { msg: { $case: 'desired', desired: desiredStateFor([spec]) } };
  return ControlMessage.encode(msg).finish().length;
}

/** Enrolls nodes until `size` are (once per cache folder); returns what it did, for the report. */
async function ensureEnrolled(size: number): Promise<string> {
  mkdirSync(CACHE, { recursive: true });
  const marker = join(CACHE, 'enrolled');
  const have = existsSync(marker) ? Number(readFileSync(marker, 'utf8')) : 0;
  if (have >= size) return `fleet of ${have} enrolled agents reused from ${CACHE}`;
  const cp = await startControlPlane(CACHE);
  const names = SimFleet.names(size);
  try {
    const t0 = performance.now();
    const missing = names.slice(have);
    const index = new Map(names.map((n, i) => [n, i]));
    const tokens = await mintJoinTokens(cp.url, missing, (n) => labelsOf(index.get(n)!));
    const sim = new SimFleet(
      size,
      {
        address: cp.address,
        joinTokens: tokens,
        tlsDir: join(CACHE, 'agents'),
        labels: {},
        deployment: DEPLOYMENT,
      },
      procsFor(size),
    );
    try {
      await sim.allConnected(40 * 60_000);
    } finally {
      sim.close();
    }
    writeFileSync(marker, String(size));
    return `enrolled ${missing.length} agents (join token each, then mutual TLS) in ${fmt(performance.now() - t0)}`;
  } finally {
    await stop(cp.server, 'SIGTERM');
  }
}

type Cp = Awaited<ReturnType<typeof startControlPlane>>;

async function cpuOver(pid: number, ms: number): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1_000)) * 100;
}

/** REST latencies of a node page and the deployment list, asked one after another until `done`. */
async function restProbe(cp: Cp, done: () => boolean) {
  const nodes: number[] = [];
  const deployments: number[] = [];
  for (let i = 0; i < 5_000 && !done(); i++) {
    for (const [path, out] of [
      ['/v1/nodes?limit=100', nodes],
      ['/v1/deployments', deployments],
    ] as const) {
      const t0 = performance.now();
      const res = await adminCall(`${cp.url}${path}`);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
      out.push(performance.now() - t0);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { nodes, deployments };
}

async function applies(cp: Cp, sim: SimFleet, n: number, from: number) {
  const acked: number[] = [];
  const answered: number[] = [];
  let finished = false;
  const probe = restProbe(cp, () => finished);
  try {
    for (let i = from; i < from + APPLIES; i++) {
      const t0 = wallMs();
      const res = await adminCall(`${cp.url}/v1/apply`, {
        method: 'POST',
        body: JSON.stringify({ source: playbook(n, i), file: `scale-${i}.yaml` }),
      });
      const body = (await res.json()) as { revision: number; message?: string };
      const answer = wallMs() - t0;
      if (!res.ok) throw new Error(`apply ${i}: HTTP ${res.status} ${body.message}`);
      const acks = await sim.acked(body.revision, 120_000);
      if (acks.count < n) throw new Error(`apply ${i}: ${acks.count} of ${n} agents acked`);
      acked.push(acks.lastMs - t0);
      answered.push(answer);
      await succeededAt(cp.url, body.revision, 120_000, DEPLOYMENT);
    }
  } finally {
    finished = true;
  }
  return { acked, answered, rest: await probe };
}

/** Restart with N agents: until all are back, reconnects per second, duplicates. */
async function restart(cp: Cp, sim: SimFleet, n: number) {
  const t0 = wallMs();
  await stop(cp.server, 'SIGTERM');
  const next = await startControlPlane(CACHE, { http: cp.httpPort, grpc: cp.grpcPort });
  await sim.allConnected(10 * 60_000);
  const backMs = wallMs() - t0;
  const times = await sim.connectsSince(t0);
  const perSecond = new Map<number, number>();
  for (const t of times) {
    const second = Math.floor((t - t0) / 1_000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  const peak = Math.max(...perSecond.values());
  await new Promise((r) => setTimeout(r, 3_000));
  const metrics = await (await adminCall(`${next.url}/metrics`)).text();
  const hub = Number(/^fleet_controlplane_agents_connected (\d+)/m.exec(metrics)?.[1] ?? -1);
  return {
    next,
    backMs,
    reconnects: times.length,
    peak,
    peakPct: (peak / n) * 100,
    tcp: connectionsTo(next.grpcPort),
    hub,
  };
}

async function oneSize(n: number, bytes: number): Promise<string[]> {
  let cp = await startControlPlane(CACHE);
  const rss0 = rssBytes(cp.server.pid!);
  const sim = new SimFleet(
    n,
    {
      address: cp.address,
      joinTokens: {},
      tlsDir: join(CACHE, 'agents'),
      labels: {},
      deployment: DEPLOYMENT,
    },
    procsFor(n),
  );
  const onExit = () => sim.close();
  process.once('exit', onExit);
  try {
    const connectMs = await sim.allConnected(20 * 60_000);
    await new Promise((r) => setTimeout(r, 3_000));
    const rssKb = (rssBytes(cp.server.pid!) - rss0) / n / 1024;
    const tcp = connectionsTo(cp.grpcPort);
    const idle = await cpuOver(cp.server.pid!, 15_000);
    const a = await applies(cp, sim, n, Date.now() % 1_000_000);
    const r = await restart(cp, sim, n);
    cp = r.next;
    const floor = await floorAt(n, bytes);
    const p = (s: number[]) => `p50 ${fmt(median(s))}, p99 ${fmt(quantile(s, 0.99))}`;
    const ratio = quantile(a.acked, 0.99) / quantile(floor.acked, 0.99);
    return [
      `${n} agents (${procsFor(n)} processes), mutual TLS:`,
      `  connected with their desired state in ${fmt(connectMs)} (floor: ${fmt(floor.connectMs)}); ${tcp} TCP connections`,
      `  control-plane RSS ${rssKb.toFixed(0)} KB per agent (floor ${floor.rssKb.toFixed(0)} KB per stream)`,
      `  CPU while heartbeating ${idle.toFixed(1)}% of one core (floor ${floor.idle.toFixed(1)}%)`,
      `  apply → all acked ${p(a.acked)} (floor push → all acked ${p(floor.acked)}; p99 ratio ${ratio.toFixed(2)}×, target ≤ 1.5×)`,
      `  REST apply answered ${p(a.answered)}; meanwhile GET /v1/nodes?limit=100 ${p(a.rest.nodes)} (${a.rest.nodes.length}), GET /v1/deployments ${p(a.rest.deployments)}`,
      `  restart: all back in ${fmt(r.backMs)}, ${r.reconnects} reconnects, busiest second ${r.peak} (${r.peakPct.toFixed(1)}% of N, target ≤ 20%); after: ${r.tcp} TCP connections, hub holds ${r.hub} streams`,
    ];
  } finally {
    sim.close();
    process.off('exit', onExit);
    await stop(cp.server, 'SIGTERM');
  }
}

/** The raw grpc-js floor at `n` streams: connect, RSS per stream, idle CPU, push → all acked. */
async function floorAt(n: number, bytes: number) {
  const t0 = performance.now();
  const floor = await Floor.start(n, procsFor(n));
  try {
    const rss0 = rssBytes(floor.server.pid!);
    for (let i = 0; i < 6_000 && (await floor.count()) < n; i++) await new Promise((r) => setTimeout(r, 100));
    const connectMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 3_000));
    const rssKb = (rssBytes(floor.server.pid!) - rss0) / n / 1024;
    const idle = await cpuOver(floor.server.pid!, 15_000);
    const acked: number[] = [];
    for (let i = 0; i < APPLIES + 1; i++) {
      const r = await floor.push(bytes);
      if (r.acked < n) throw new Error(`floor: ${r.acked} of ${n} acked`);
      if (i > 0) acked.push(r.lastMs);
    }
    return { connectMs, rssKb, idle, acked };
  } finally {
    floor.close();
  }
}

/** Prints its figures as each part finishes (returns nothing more to print). */
export async function benchScale(): Promise<string[]> {
  process.env.FLEET_SIM_LOG_LEVEL ??= 'error';
  const bytes = pushBytes();
  const enrolled = await ensureEnrolled(Math.max(...NS));
  const lines = [
    `scale: one control plane against N simulated agents; the raw grpc-js floor in the same run; the push is ${bytes} bytes; ${enrolled}`,
  ];
  lines.push(...(await benchIngest()));
  // Each size prints as it finishes: a 10,000-agent run takes minutes, and a partial run still tells.
  process.stdout.write(`${lines.join('\n')}\n`);
  for (const n of NS) process.stdout.write(`${(await oneSize(n, bytes)).join('\n')}\n`);
  return [];
}
