/**
 * Issue 11's rollout benchmark (`npm run bench`, or `node dist/test/bench/run.js --rollout-only`).
 *
 * 1. Three real agents on the one Docker daemon, `serial: 100%`, a service with an HTTP probe,
 *    `min_healthy_time: 2s`. Each iteration applies a new revision with the real CLI waiting for
 *    the rollout (`fleet apply FILE --wait`: the gated path, until the command returns) while this
 *    process polls `GET /v1/deployments/NAME` from the same start until every node reports the
 *    revision healthy (the ungated path: what a user sees without the gate). Target: the gate adds
 *    at most min_healthy_time + 500 ms. BENCH_ROLLOUT_ITERATIONS (8) bounds the count, 5 min the time.
 * 2. 1,000 simulated agents against one control plane (`rollout-scale.ts`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster } from '../helpers/cluster.js';
import { REGISTRY, removeManaged, requireEngines } from '../helpers/engines.js';
import { benchRolloutScale } from './rollout-scale.js';
import { fmt, median, quantile } from './stats.js';

const run = promisify(execFile);
const NODES = ['rb-1', 'rb-2', 'rb-3'];
const WEB = (tag: number) => `${REGISTRY}/fleet-test/web:${tag}`;
const ITERATIONS = Number(process.env.BENCH_ROLLOUT_ITERATIONS ?? 8);
const BUDGET_MS = 5 * 60_000;
const MIN_HEALTHY_MS = 2_000;
const DEPLOYMENT = 'rollbench';

const playbook = (i: number) => `name: ${DEPLOYMENT}
hosts: group=rb
serial: "100%"
rollout: { min_healthy_time: ${MIN_HEALTHY_MS / 1000}s, healthy_deadline: 60s }
services:
  web:
    image: ${WEB((i % 2) + 1)}
    env: { GREETING: "iteration-${i}" }
    port: 8080
    health: { path: /cgi-bin/health, interval: 500ms, timeout: 400ms, retries: 2, start_period: 1s }
`;

interface Deployment {
  revision: number;
  ready: boolean;
}

async function deployment(cluster: Cluster): Promise<Deployment | undefined> {
  const res = await cluster.api(`/v1/deployments/${DEPLOYMENT}`);
  return res.ok ? ((await res.json()) as Deployment) : undefined;
}

/** Resolves with the time since `t0` when every node reports `revision` healthy (polled every 20 ms). */
async function ungated(cluster: Cluster, revision: number, t0: number, timeoutMs: number): Promise<number> {
  for (;;) {
    const d = await deployment(cluster).catch(() => undefined);
    if (d?.revision === revision && d.ready) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`revision ${revision} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function iteration(cluster: Cluster, i: number) {
  const revision = ((await deployment(cluster))?.revision ?? 0) + 1;
  const file = cluster.playbook(`rollbench-${i}.yaml`, playbook(i));
  const t0 = performance.now();
  const gated = cluster.cli('apply', file, '--wait', '--timeout', '60s').then((r) => {
    if (r.code !== 0) throw new Error(`fleet apply --wait exited ${r.code}: ${r.stdout}${r.stderr}`);
    return performance.now() - t0;
  });
  const [ungatedMs, gatedMs] = await Promise.all([ungated(cluster, revision, t0, 60_000), gated]);
  return { ungatedMs, gatedMs };
}

/** Part 1: the gate's cost on three real agents, as report lines. */
export async function benchRolloutGate(): Promise<string[]> {
  await requireEngines([WEB(1), WEB(2)]);
  for (const tag of [1, 2]) await run('docker', ['pull', '-q', WEB(tag)]);
  await removeManaged(NODES);
  const cluster = new Cluster();
  const samples: { ungatedMs: number; gatedMs: number }[] = [];
  try {
    await cluster.startServer();
    for (const n of NODES) cluster.startAgent(n, { group: 'rb' });
    for (const n of NODES) await cluster.nodeConnected(n);
    const start = performance.now();
    // Iteration 0 creates the containers; the measured ones replace them (web:1 ↔ web:2).
    await iteration(cluster, 0);
    for (let i = 1; i <= ITERATIONS && performance.now() - start < BUDGET_MS; i++)
      samples.push(await iteration(cluster, i));
  } finally {
    await cluster.close();
    await removeManaged(NODES);
  }
  const added = samples.map((s) => s.gatedMs - s.ungatedMs);
  const bound = MIN_HEALTHY_MS + 500;
  const worst = Math.max(...added);
  return [
    `rollout gate on ${NODES.length} real agents, serial 100%, min_healthy_time ${MIN_HEALTHY_MS / 1000}s, HTTP probe every 500 ms; ${samples.length} interleaved applies (each replaces the containers):`,
    `  ungated (every node reports the revision healthy)  median ${fmt(median(samples.map((s) => s.ungatedMs)))}  p90 ${fmt(
      quantile(
        samples.map((s) => s.ungatedMs),
        0.9,
      ),
    )}`,
    `  gated (fleet apply --wait returns)                  median ${fmt(median(samples.map((s) => s.gatedMs)))}  p90 ${fmt(
      quantile(
        samples.map((s) => s.gatedMs),
        0.9,
      ),
    )}`,
    `  the gate adds: median ${fmt(median(added))}, p90 ${fmt(quantile(added, 0.9))}, max ${fmt(worst)} (target ≤ min_healthy_time + 500 ms = ${fmt(bound)}: ${worst <= bound ? 'met' : 'MISSED'})`,
  ];
}

/** Both parts, as report lines. */
export async function benchRollout(): Promise<string[]> {
  const gate = await benchRolloutGate();
  return [...gate, '', ...(await benchRolloutScale())];
}
