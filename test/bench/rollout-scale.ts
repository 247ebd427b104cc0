/**
 * Issue 11, part 2: 1,000 simulated agents (`sim-fleet.ts`: the real agent connection code, one
 * HTTP/2 connection each, no containers) against one real control plane process, and
 * `POST /v1/apply` with `serial: 100%` timed against the agents' acks. Target: the apply answers
 * within 1 s of the last agent's ack. Also printed: time until all agents are connected, apply →
 * rollout succeeded, and the control plane's CPU while the agents only heartbeat.
 *
 * BENCH_SIM_AGENTS (1000), BENCH_SIM_PROCS (2), BENCH_SIM_APPLIES (12); BENCH_CPU_PROF=DIR runs the
 * control plane under `node --cpu-prof` and leaves its profile in DIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FLEET_BIN, freePort, stop, waitFor } from '../helpers/procs.js';
import { wallMs } from './sim-agents.js';
import { SimFleet } from './sim-fleet.js';
import { fmt, median, quantile } from './stats.js';

const AGENTS = Number(process.env.BENCH_SIM_AGENTS ?? 1000);
const PROCS = Number(process.env.BENCH_SIM_PROCS ?? 2);
const APPLIES = Number(process.env.BENCH_SIM_APPLIES ?? 12);
/** The whole part stops starting applies after this long. */
const BUDGET_MS = 6 * 60_000;
const DEPLOYMENT = 'simbench';

const playbook = (i: number) => `name: ${DEPLOYMENT}
hosts: group=sim
serial: "100%"
rollout: { min_healthy_time: 0s, healthy_deadline: 60s }
services:
  web:
    image: 127.0.0.1:5000/fleet-test/web:1
    env: { GREETING: "apply-${i}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 1s, timeout: 500ms, retries: 2, start_period: 1s }
`;

interface ApplySample {
  /** apply start → the last agent's ack */
  lastAckMs: number;
  /** apply start → the REST answer */
  answerMs: number;
  /** the REST answer after the last ack (negative: before it) */
  gapMs: number;
  /** apply start → the rollout succeeded (polled every 50 ms) */
  succeededMs: number;
  acked: number;
}

/** CPU seconds (user + system) the process used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Established TCP connections to `port` on loopback (one per simulated agent, if each has its own). */
function connectionsTo(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => {
      const f = l.trim().split(/\s+/);
      return f[2]?.endsWith(`:${hex}`) && f[3] === '01';
    }).length;
}

async function startControlPlane(dir: string) {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const prof = process.env.BENCH_CPU_PROF;
  const log = createWriteStream(join(dir, 'server.log'));
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
    ],
    // What production logs, not the tests' debug level.
    { env: { ...process.env, FLEET_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout?.pipe(log);
  server.stderr?.pipe(log);
  const url = `http://127.0.0.1:${httpPort}`;
  await waitFor('control plane /healthz', async () => (await fetch(`${url}/healthz`)).ok, 15_000);
  const token = readFileSync(join(dir, 'cp', 'agent-token'), 'utf8').trim();
  return { server, url, grpcPort, address: `127.0.0.1:${grpcPort}`, token };
}

async function rolloutState(url: string, id: number): Promise<string | undefined> {
  const res = await fetch(`${url}/v1/deployments/${DEPLOYMENT}/rollouts/${id}`);
  return res.ok ? ((await res.json()) as { state: string }).state : undefined;
}

async function oneApply(url: string, sim: SimFleet, i: number): Promise<ApplySample> {
  const t0 = wallMs();
  const res = await fetch(`${url}/v1/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ source: playbook(i), file: `sim-${i}.yaml` }),
  });
  const body = (await res.json()) as { revision: number; rollout?: number; message?: string };
  const answered = wallMs();
  if (!res.ok || body.rollout === undefined)
    throw new Error(`apply ${i}: HTTP ${res.status} ${body.message}`);
  const acks = await sim.acked(body.revision, 60_000);
  await waitFor(
    `rollout ${body.rollout} succeeded`,
    async () => (await rolloutState(url, body.rollout!)) === 'succeeded',
    60_000,
    50,
  );
  return {
    lastAckMs: acks.lastMs - t0,
    answerMs: answered - t0,
    gapMs: answered - acks.lastMs,
    succeededMs: wallMs() - t0,
    acked: acks.count,
  };
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
    { address: cp.address, token: cp.token, labels: { group: 'sim' }, deployment: DEPLOYMENT },
    PROCS,
  );
  const onExit = () => sim.close();
  process.once('exit', onExit);
  try {
    const connectMs = await sim.allConnected(180_000);
    const rssPerAgent = (rssBytes(cp.server.pid!) - rssBefore) / AGENTS;
    const tcp = connectionsTo(cp.grpcPort);
    const cpu = await idleCpu(cp.server, 10_000);
    const samples: ApplySample[] = [];
    const start = performance.now();
    for (let i = 0; i < APPLIES && performance.now() - start < BUDGET_MS; i++)
      samples.push(await oneApply(cp.url, sim, i));
    const short = samples.filter((s) => s.acked < AGENTS).length;
    return [
      `rollout at scale: ${AGENTS} simulated agents in ${PROCS} processes (real agent connection code, one HTTP/2 connection each), one control plane process; serial 100%, min_healthy_time 0s:`,
      `  all connected in ${fmt(connectMs)} (${tcp} TCP connections to the control plane); control plane RSS ${(rssPerAgent / 1024).toFixed(0)} KB per agent; CPU while heartbeating ${cpu.toFixed(1)}% of one core`,
      `  ${samples.length} applies${short ? ` (${short} with fewer than ${AGENTS} acks!)` : ''}:`,
      row(
        'apply → last agent acked',
        samples.map((s) => s.lastAckMs),
      ),
      row(
        'apply → REST answer',
        samples.map((s) => s.answerMs),
      ),
      row(
        'REST answer after the last ack',
        samples.map((s) => s.gapMs),
      ),
      row(
        'apply → rollout succeeded',
        samples.map((s) => s.succeededMs),
      ),
      `  target: the answer within 1 s of the last ack — ${Math.max(...samples.map((s) => s.gapMs)) <= 1_000 ? 'met' : 'MISSED'} (worst ${fmt(Math.max(...samples.map((s) => s.gapMs)))})`,
    ];
  } finally {
    sim.close();
    process.off('exit', onExit);
    await stop(cp.server, 'SIGTERM');
    if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
