/**
 * Issue 11, part 2: 1,000 simulated agents (`sim-fleet.ts`: the real agent connection code, one
 * HTTP/2 connection each, no containers) against one real control plane process, serial 100%.
 * burst: `POST /v1/apply` timed against the agents' acks (target: the answer within 1 s of the
 * last ack), every agent healthy with its ack. watch: probes passing spread over 2 s and
 * min_healthy_time 5s, for the engine's cost while it gates and how late after
 * last healthy + min_healthy_time the rollout succeeds. Also printed: time until all agents are
 * connected, RSS per agent, and the control plane's CPU while the agents only heartbeat.
 *
 * BENCH_SIM_AGENTS (1000), BENCH_SIM_PROCS (2), BENCH_SIM_APPLIES (12), BENCH_SIM_WATCHES (3);
 * BENCH_CPU_PROF=DIR runs the control plane under `node --cpu-prof` and leaves its profile in DIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Fetch, fetchTrusting } from '../helpers/https.js';
import { FLEET_BIN, freePort, stop, waitFor } from '../helpers/procs.js';
import { wallMs } from './sim-agents.js';
import { SimFleet, simPlaybook } from './sim-fleet.js';
import { fmt, median, quantile } from './stats.js';

const AGENTS = Number(process.env.BENCH_SIM_AGENTS ?? 1000);
const PROCS = Number(process.env.BENCH_SIM_PROCS ?? 2);
const APPLIES = Number(process.env.BENCH_SIM_APPLIES ?? 12);
const WATCHES = Number(process.env.BENCH_SIM_WATCHES ?? 3);
/** Each scenario stops starting applies after this long. */
const BUDGET_MS = 4 * 60_000;
const DEPLOYMENT = 'simbench';

/**
 * burst: every agent reports healthy with its ack, min_healthy_time 0s (the apply's answer
 * against the acks). watch: probes pass spread over 2 s, min_healthy_time 5s (the engine's cost
 * while it gates: many small bursts of reports, then watching every node for 5 s).
 */
const SCENARIOS = {
  burst: { spreadMs: 0, minHealthy: '0s', minHealthyMs: 0 },
  watch: { spreadMs: 2_000, minHealthy: '5s', minHealthyMs: 5_000 },
} as const;
type Scenario = (typeof SCENARIOS)[keyof typeof SCENARIOS];

const playbook = (i: number, sc: Scenario) => simPlaybook(DEPLOYMENT, i, sc.minHealthy);

interface ApplySample {
  /** apply start → the last agent's ack */
  lastAckMs: number;
  /** apply start → the REST answer */
  answerMs: number;
  /** the REST answer after the last ack (negative: before it) */
  gapMs: number;
  /** apply start → the rollout succeeded (the time of its event) */
  succeededMs: number;
  /** the rollout succeeded this long after the last healthy report + min_healthy_time */
  lateMs: number;
  /** control-plane CPU seconds from the apply to the rollout's success */
  cpuS: number;
  acked: number;
}

/** CPU seconds (user + system) the process used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Established TCP connections to `port` on loopback (one per simulated agent, if each has its own). */
export function connectionsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => {
      const f = l.trim().split(/\s+/);
      return f[2]?.endsWith(`:${hex}`) && f[3] === '01';
    }).length;
}

/** The admin token's header, once the control plane wrote it. */
const ADMIN: Record<string, string> = {};
/** `fetch` on the REST API (HTTPS), trusting the control plane's CA once it wrote it. */
let api: Fetch = () => Promise.reject(new Error('no control plane yet'));

/** A REST call as the bootstrap admin (HTTPS, trusting the control plane's CA). */
export const adminCall = (url: string, init: RequestInit = {}) =>
  api(url, { ...init, headers: { 'content-type': 'application/json', ...ADMIN, ...init.headers } });

/**
 * One join token per simulated node, minted over REST as `fleet join-token create` does (20 at a
 * time), each carrying the node's labels (`group=sim` unless `labels` says more).
 */
export async function mintJoinTokens(
  url: string,
  nodes: readonly string[],
  labels: (node: string) => Record<string, string> = () => ({ group: 'sim' }),
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (let i = 0; i < nodes.length; i += 20) {
    await Promise.all(
      nodes.slice(i, i + 20).map(async (node) => {
        const res = await api(`${url}/v1/join-tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...ADMIN },
          body: JSON.stringify({ labels: labels(node) }),
        });
        if (!res.ok) throw new Error(`minting a join token: ${res.status} ${await res.text()}`);
        out[node] = ((await res.json()) as { token: string }).token;
      }),
    );
  }
  return out;
}

/** `fleet server` on `dir/cp` in its own process (on the given ports: a restart keeps them). */
export async function startControlPlane(dir: string, ports?: { http: number; grpc: number }) {
  const httpPort = ports?.http ?? (await freePort());
  const grpcPort = ports?.grpc ?? (await freePort());
  const prof = process.env.BENCH_CPU_PROF;
  const log = createWriteStream(join(dir, 'server.log'), { flags: 'a' });
  const server = spawn(
    process.execPath,
    [
      ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
      FLEET_BIN,
      'server',
      '--data-dir',
      join(dir, 'cp'),
      '--listen',
      `127.0.0.1:${httpPort}`,
      '--grpc-listen',
      `127.0.0.1:${grpcPort}`,
      // One join token per simulated node is 10,000 REST calls: the automation's own limit, as an
      // operator enrolling a fleet from a script would set it.
      '--rate-limit',
      '100000',
    ],
    // What production logs, not the tests' debug level.
    { env: { ...process.env, FLEET_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout?.pipe(log);
  server.stderr?.pipe(log);
  const url = `https://127.0.0.1:${httpPort}`;
  api = fetchTrusting(join(dir, 'cp', 'ca.crt'));
  await waitFor('control plane /healthz', async () => (await api(`${url}/healthz`)).ok, 15_000);
  // Security stays on: the benchmark speaks to the API as the bootstrap admin.
  ADMIN.authorization = `Bearer ${readFileSync(join(dir, 'cp', 'admin-token'), 'utf8').trim()}`;
  return { server, url, grpcPort, httpPort, address: `127.0.0.1:${grpcPort}` };
}

/** When the control plane recorded the rollout of `revision` succeeded (polls the newest events). */
export async function succeededAt(
  url: string,
  revision: number,
  timeoutMs: number,
  deployment = DEPLOYMENT,
): Promise<number> {
  const want = `revision ${revision} healthy`;
  return waitFor(
    `rollout of revision ${revision} succeeded`,
    async () => {
      const res = await api(`${url}/v1/events?deployment=${deployment}&limit=3`, { headers: ADMIN });
      const { events } = (await res.json()) as { events: { kind: string; message: string; atMs: number }[] };
      return events.find((e) => e.kind === 'rollout.succeeded' && e.message.startsWith(want))?.atMs;
    },
    timeoutMs,
    50,
  );
}

async function oneApply(cp: { url: string; server: ChildProcess }, sim: SimFleet, i: number, sc: Scenario) {
  const cpu0 = cpuSeconds(cp.server.pid!);
  const t0 = wallMs();
  const res = await api(`${cp.url}/v1/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...ADMIN },
    body: JSON.stringify({ source: playbook(i, sc), file: `sim-${i}.yaml` }),
  });
  const body = (await res.json()) as { revision: number; rollout?: number; message?: string };
  const answered = wallMs();
  if (!res.ok || body.rollout === undefined)
    throw new Error(`apply ${i}: HTTP ${res.status} ${body.message}`);
  const acks = await sim.acked(body.revision, 60_000);
  const done = await succeededAt(cp.url, body.revision, 60_000);
  return {
    lastAckMs: acks.lastMs - t0,
    answerMs: answered - t0,
    gapMs: answered - acks.lastMs,
    succeededMs: done - t0,
    lateMs: done - acks.lastHealthyMs - sc.minHealthyMs,
    cpuS: cpuSeconds(cp.server.pid!) - cpu0,
    acked: acks.count,
  } satisfies ApplySample;
}

/** Applies one after another (each waits for the previous rollout to succeed), bounded in count and time. */
async function applies(
  cp: { url: string; server: ChildProcess },
  sim: SimFleet,
  sc: Scenario,
  n: number,
  from: number,
) {
  await sim.spread(sc.spreadMs);
  const samples: ApplySample[] = [];
  const start = performance.now();
  for (let i = 0; i < n && performance.now() - start < BUDGET_MS; i++)
    samples.push(await oneApply(cp, sim, from + i, sc));
  return samples;
}

/** The control plane's CPU (% of one core) over `ms` while the agents only heartbeat. */
async function idleCpu(server: ChildProcess, ms: number): Promise<number> {
  const c0 = cpuSeconds(server.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return ((cpuSeconds(server.pid!) - c0) / ((performance.now() - t0) / 1000)) * 100;
}

const row = (name: string, s: readonly number[]) =>
  `  ${name.padEnd(34)} p50 ${fmt(median(s)).padStart(10)}  p99 ${fmt(quantile(s, 0.99)).padStart(10)}  max ${fmt(Math.max(...s)).padStart(10)}`;

/** Runs part 2 and returns its report lines. */
export async function benchRolloutScale(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-bench-sim-'));
  const cp = await startControlPlane(dir);
  const rssBefore = rssBytes(cp.server.pid!);
  const sim = new SimFleet(
    AGENTS,
    {
      address: cp.address,
      joinTokens: await mintJoinTokens(cp.url, SimFleet.names(AGENTS)),
      tlsDir: join(dir, 'agents'),
      labels: { group: 'sim' },
      deployment: DEPLOYMENT,
    },
    PROCS,
  );
  const onExit = () => sim.close();
  process.once('exit', onExit);
  try {
    const connectMs = await sim.allConnected(180_000);
    const rssPerAgent = (rssBytes(cp.server.pid!) - rssBefore) / AGENTS;
    const tcp = connectionsTo(cp.grpcPort);
    const cpu = await idleCpu(cp.server, 10_000);
    const burst = await applies(cp, sim, SCENARIOS.burst, APPLIES, 0);
    const watch = await applies(cp, sim, SCENARIOS.watch, WATCHES, APPLIES);
    return [
      `rollout at scale: ${AGENTS} simulated agents in ${PROCS} processes (real agent connection code, one HTTP/2 connection each), one control plane process, serial 100%:`,
      `  all enrolled and connected over mutual TLS in ${fmt(connectMs)} (${tcp} TCP connections to the control plane); control plane RSS ${(rssPerAgent / 1024).toFixed(0)} KB per agent; CPU while heartbeating ${cpu.toFixed(1)}% of one core`,
      ...burstLines(burst),
      ...watchLines(watch),
    ];
  } finally {
    sim.close();
    process.off('exit', onExit);
    await stop(cp.server, 'SIGTERM');
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

const short = (s: readonly ApplySample[]) => {
  const n = s.filter((x) => x.acked < AGENTS).length;
  return n ? ` (${n} with fewer than ${AGENTS} acks!)` : '';
};

function burstLines(s: readonly ApplySample[]): string[] {
  const worst = Math.max(...s.map((x) => x.gapMs));
  return [
    `  ${s.length} applies, every agent healthy with its ack, min_healthy_time 0s${short(s)}:`,
    row(
      'apply → last agent acked',
      s.map((x) => x.lastAckMs),
    ),
    row(
      'apply → REST answer',
      s.map((x) => x.answerMs),
    ),
    row(
      'REST answer after the last ack',
      s.map((x) => x.gapMs),
    ),
    row(
      'apply → rollout succeeded',
      s.map((x) => x.succeededMs),
    ),
    `  target: the answer within 1 s of the last ack — ${worst <= 1_000 ? 'met' : 'MISSED'} (worst ${fmt(worst)})`,
  ];
}

function watchLines(s: readonly ApplySample[]): string[] {
  const cpu = s.map((x) => x.cpuS);
  const pct = s.map((x) => (x.cpuS / (x.succeededMs / 1000)) * 100);
  return [
    `  ${s.length} applies, probes passing spread over ${SCENARIOS.watch.spreadMs / 1000} s, min_healthy_time ${SCENARIOS.watch.minHealthy}${short(s)}:`,
    row(
      'succeeded after last healthy + 5 s',
      s.map((x) => x.lateMs),
    ),
    `  control-plane CPU per rollout: p50 ${median(cpu).toFixed(2)} s, max ${Math.max(...cpu).toFixed(2)} s (${median(pct).toFixed(1)}% of one core over the rollout)`,
  ];
}
