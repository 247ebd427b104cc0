/**
 * `npm run bench`: the walking skeleton's figures, measured side by side in one run on this
 * machine against the real engines (Docker, the local registry, real fleet processes).
 *
 * 1. `fleet apply` → container running, against `docker run -d` of the same container, image
 *    already present, interleaved so both see the same machine state.
 * 2. A reconcile round with nothing to change: Docker calls per round and its duration.
 * Then the inference server (inference.ts), facts (facts.ts) and issue 5's agent health, restarts,
 * proxy overhead and agent at rest (health.ts), and issue 11's rollouts (rollout.ts). `--health-only`,
 * `--facts-only`, `--inference-only`, `--rollout-only` (`--rollout-gate-only`, `--rollout-scale-only`
 * for one of its two parts) run one of those alone; `--apply-only` runs 1 and 2 alone. Issue 12's
 * TLS overhead (tls.ts) runs with `--tls-only`, and near the end of a full run; issue 13's node list
 * page at 10,000 nodes (nodes-list.ts) with `--nodes-list-only`, and last. `--agent-rest-only`: the
 * agent at rest (agent-rest.ts) with what its imports cost (agent-imports.ts), issue 13's footprint.
 */
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerRuntime } from '../../agent/src/docker/runtime.js';
import { Reconciler } from '../../agent/src/reconcile/loop.js';
import type { ContainerRuntime } from '../../agent/src/runtime.js';
import { StateStore } from '../../agent/src/state-store.js';
import { createLogger } from '../../common/log.js';
import { Cluster } from '../helpers/cluster.js';
import { docker, REGISTRY, requireEngines } from '../helpers/engines.js';
import { freePort, waitFor } from '../helpers/procs.js';
import { benchAgentImports } from './agent-imports.js';
import { benchAgentRest } from './agent-rest.js';
import { benchFacts } from './facts.js';
import { benchHealth } from './health.js';
import { benchInference } from './inference.js';
import { benchNodesList } from './nodes-list.js';
import { benchRollout, benchRolloutGate } from './rollout.js';
import { benchRolloutScale } from './rollout-scale.js';
import { benchScale } from './scale.js';
import { fmt, median, quantile } from './stats.js';
import { benchTls } from './tls.js';
import { benchUpstream } from './upstream.js';

const run = promisify(execFile);
const IMAGE = `${REGISTRY}/fleet-test/web:1`;
const NODE = 'bench';
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 15);

async function runningCount(label: string) {
  const list = await docker.listContainers({ filters: { label: [label], status: ['running'] } });
  return list.length;
}

async function cleanup() {
  for (const label of ['fleet-bench=1', `fleet.node=${NODE}`]) {
    for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) {
      await docker.getContainer(c.Id).remove({ force: true });
    }
  }
}

/**
 * When each of the bench node's deployments had its container started, from Docker's event stream:
 * the bench learns it without asking dockerd again and again (a 2 ms poll of the container list
 * kept dockerd busy while the agent's own calls waited behind it). `BENCH_POLL=1` polls instead,
 * as the issue 2 figures were taken.
 */
class StartWatch {
  private readonly seen = new Map<string, number>();
  private readonly waiting = new Map<string, (at: number) => void>();
  private stream?: NodeJS.ReadableStream & { destroy?: () => void };

  async open() {
    this.stream = (await docker.getEvents({
      filters: { type: ['container'], event: ['start'], label: [`fleet.node=${NODE}`] },
    })) as NodeJS.ReadableStream & { destroy?: () => void };
    let buf = '';
    this.stream.on('data', (chunk: Buffer) => {
      const at = performance.now();
      buf += chunk.toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const dep = (JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } }).Actor
          ?.Attributes?.['fleet.deployment'];
        if (dep && !this.seen.has(dep)) {
          this.seen.set(dep, at);
          this.waiting.get(dep)?.(at);
        }
      }
    });
  }

  /** When `deployment`'s container started (now or later), at most `timeoutMs` from now. */
  started(deployment: string, timeoutMs = 20_000): Promise<number> {
    if (process.env.BENCH_POLL === '1')
      return waitFor(
        'fleet container running',
        async () => (await runningCount(`fleet.deployment=${deployment}`)) === 1,
        timeoutMs,
        2,
      ).then(() => performance.now());
    const at = this.seen.get(deployment);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${deployment}: no start within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting.set(deployment, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }

  close() {
    this.stream?.destroy?.();
  }
}

async function applyVsDockerRun(cluster: Cluster) {
  const fleetMs: number[] = [];
  const dockerMs: number[] = [];
  const noopMs: number[] = [];
  const likeMs: number[] = [];
  const watch = new StartWatch();
  await watch.open();
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const port = await freePort();
      let t0 = performance.now();
      await run('docker', [
        'run',
        '-d',
        '--name',
        `fleet-bench-docker-${i}`,
        '--label',
        'fleet-bench=1',
        '-p',
        `127.0.0.1:${port}:8080`,
        '-e',
        `GREETING=${i}`,
        IMAGE,
      ]);
      // `docker run -d` returns once the container has started.
      dockerMs.push(performance.now() - t0);

      const fport = await freePort();
      const file = cluster.playbook(
        `bench-${i}.yaml`,
        `name: bench-${i}\nhosts: all\nservices:\n  web:\n    image: ${IMAGE}\n    env: { GREETING: "${i}" }\n    port: 8080\n    publish: ${fport}\n`,
      );
      t0 = performance.now();
      const r = await cluster.cli('apply', file, '--no-wait');
      if (r.code !== 0) throw new Error(`fleet apply failed: ${r.stderr}`);
      fleetMs.push((await watch.started(`bench-${i}`)) - t0);

      // `docker run -d` once more, with what fleet gives its containers: the node's network (made by
      // the agent's first create), an init process, no-new-privileges.
      t0 = performance.now();
      await run('docker', [
        'run',
        '-d',
        '--name',
        `fleet-bench-like-${i}`,
        '--label',
        'fleet-bench=1',
        '--network',
        `fleet-${NODE}`,
        '--init',
        '--security-opt',
        'no-new-privileges',
        '-p',
        `127.0.0.1:${await freePort()}:8080`,
        '-e',
        `GREETING=${i}`,
        IMAGE,
      ]);
      likeMs.push(performance.now() - t0);

      // The same playbook again: nothing to store, push or start.
      t0 = performance.now();
      const again = await cluster.cli('apply', file, '--no-wait');
      noopMs.push(performance.now() - t0);
      if (again.code !== 0 || !again.stdout.includes('unchanged'))
        throw new Error(`no-op re-apply: exit ${again.code}: ${again.stdout}${again.stderr}`);
    }
  } finally {
    watch.close();
  }
  return { fleetMs, dockerMs, noopMs, likeMs };
}

/** Wraps a runtime to count engine calls by method. */
function counting(rt: ContainerRuntime) {
  const calls: Record<string, number> = {};
  const proxy = new Proxy(rt, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1;
        return v.apply(target, args);
      };
    },
  });
  return { runtime: proxy, calls };
}

async function noopRound(cluster: Cluster) {
  await cluster.killAgent(NODE, 'SIGTERM');
  const state = new StateStore(join(cluster.dir, 'agents', NODE)).load();
  if (!state) throw new Error('agent left no desired state');
  const { runtime, calls } = counting(new DockerRuntime({ node: NODE }));
  const rec = new Reconciler({
    node: NODE,
    runtime,
    log: createLogger('bench', 'warn'),
    report: () => {},
    resyncMs: 3_600_000,
  });
  rec.setDesired(state);
  await rec.idle();
  for (const k of Object.keys(calls)) delete calls[k];
  const ms: number[] = [];
  const rounds = 50;
  const roundsBefore = rec.rounds;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    rec.trigger('bench');
    await rec.idle();
    ms.push(performance.now() - t0);
  }
  await rec.stop();
  return { ms, calls, rounds: rec.rounds - roundsBefore, containers: state.deployments.length };
}

async function main() {
  if (process.argv.includes('--facts-only')) {
    process.stdout.write(`${(await benchFacts()).join('\n')}\n`);
    return;
  }
  // Issue 13: the agent at rest alone (part 4 of --health-only), for its footprint.
  if (process.argv.includes('--agent-rest-only')) {
    process.stdout.write(`${benchAgentImports().join('\n')}\n\n${(await benchAgentRest()).join('\n')}\n`);
    return;
  }
  if (process.argv.includes('--health-only')) {
    process.stdout.write(`${(await benchHealth()).join('\n')}\n`);
    return;
  }
  if (process.argv.includes('--inference-only')) {
    process.stdout.write(`${(await benchInference()).join('\n')}\n`);
    return;
  }
  // Issue 11: rollouts gated on health (3 real agents) and the apply at 1,000 simulated agents.
  if (process.argv.includes('--rollout-only')) {
    process.stdout.write(`${(await benchRollout()).join('\n')}\n`);
    return;
  }
  if (process.argv.includes('--rollout-gate-only')) {
    process.stdout.write(`${(await benchRolloutGate()).join('\n')}\n`);
    return;
  }
  if (process.argv.includes('--rollout-scale-only')) {
    process.stdout.write(`${(await benchRolloutScale()).join('\n')}\n`);
    return;
  }
  // Issue 12: what TLS costs (apply → running, push → ack, enrollment, 1,000 reconnects).
  if (process.argv.includes('--tls-only')) {
    process.stdout.write(`${(await benchTls()).join('\n')}\n`);
    return;
  }
  // Issue 13: a page of the node list at 10,000 nodes in SQLite (nodes-list.ts); no engines needed.
  if (process.argv.includes('--nodes-list-only')) {
    process.stdout.write(`${(await benchNodesList()).join('\n')}\n`);
    return;
  }
  // Issue 13: one control plane against 1,000–10,000 agents beside the raw grpc-js floor (scale.ts).
  if (process.argv.includes('--scale-only')) {
    await benchScale();
    return;
  }
  // Issue 6: the inference server in ENGINE=openai-upstream mode against direct mode (upstream.ts).
  if (process.argv.includes('--upstream-only')) {
    process.stdout.write(`${(await benchUpstream()).join('\n')}\n`);
    return;
  }
  await requireEngines([IMAGE]);
  await run('docker', ['pull', '-q', IMAGE]);
  await cleanup();
  const cluster = new Cluster();
  try {
    await cluster.startServer();
    cluster.startAgent(NODE, {}, ['--resync', '60s']);
    await cluster.nodeConnected(NODE);
    const a = await applyVsDockerRun(cluster);
    const r = await noopRound(cluster);
    const cpu = (await run('sh', ['-c', "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"])).stdout.trim();
    const dv = (await docker.version()).Version;
    const lines = [
      `machine: ${cpu}, ${(await run('nproc')).stdout.trim()} cores; Docker ${dv}; node ${process.version}`,
      '',
      `apply → running (image present), ${ITERATIONS} interleaved runs:`,
      `  docker run -d      median ${fmt(median(a.dockerMs))}  p90 ${fmt(quantile(a.dockerMs, 0.9))}`,
      `  fleet apply (CLI)  median ${fmt(median(a.fleetMs))}  p90 ${fmt(quantile(a.fleetMs, 0.9))}`,
      `  docker run -d with fleet's container options (its network, --init, no-new-privileges)  median ${fmt(median(a.likeMs))}  p90 ${fmt(quantile(a.likeMs, 0.9))}; fleet against it ${(median(a.fleetMs) / median(a.likeMs)).toFixed(2)}×`,
      `  fleet adds at the median: ${fmt(median(a.fleetMs) - median(a.dockerMs))}; ratio ${(median(a.fleetMs) / median(a.dockerMs)).toFixed(2)}× (target ≤ 1.5×)`,
      `  no-op re-apply (the same playbook again, CLI start to exit)  median ${fmt(median(a.noopMs))}  p90 ${fmt(quantile(a.noopMs, 0.9))}  (target ≤ 150 ms)`,
      `  running detected by ${process.env.BENCH_POLL === '1' ? 'polling the container list every 2 ms' : "Docker's event stream (start events)"}; 1-min load average ${loadavg()[0]!.toFixed(2)}`,
      '',
      `no-op reconcile, ${r.rounds} rounds over ${r.containers} deployment(s) on node ${NODE}:`,
      `  median ${fmt(median(r.ms))}  p90 ${fmt(quantile(r.ms, 0.9))}  (target ≤ 20 ms)`,
      `  Docker calls per round: ${
        Object.entries(r.calls)
          .map(([k, v]) => `${k} ${(v / r.rounds).toFixed(2)}`)
          .join(', ') || 'none'
      } (target: one list)`,
    ];
    if (!process.argv.includes('--apply-only')) {
      lines.push('', ...(await benchInference()));
      lines.push('', ...(await benchUpstream()));
      lines.push('', ...(await benchFacts()));
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await cluster.close();
    await cleanup();
  }
  // Issue 5 runs with nothing of the above left on the machine (it measures the agent at rest).
  if (!process.argv.includes('--apply-only')) {
    process.stdout.write(`\n${(await benchHealth()).join('\n')}\n`);
    process.stdout.write(`\n${benchAgentImports().join('\n')}\n`);
    process.stdout.write(`\n${(await benchRollout()).join('\n')}\n`);
    process.stdout.write(`\n${(await benchTls()).join('\n')}\n`);
    process.stdout.write(`\n${(await benchNodesList()).join('\n')}\n`);
  }
}

await main();
