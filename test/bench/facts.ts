/**
 * Issue 4's figures: what fact and GPU collection costs the agent at the default intervals (10 s
 * GPUs, 5 min host), measured against an identical agent with collection effectively off, both
 * running side by side for the same window; and how long one GPU poll takes with the fake tool.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../../agent/src/docker/runtime.js';
import { collectHost } from '../../agent/src/facts/host.js';
import { ExecFileRunner, GpuCollector } from '../../agent/src/gpu/collector.js';
import { Cluster } from '../helpers/cluster.js';
import { requireEngines } from '../helpers/engines.js';
import { ROOT } from '../helpers/procs.js';
import { fmt, median, quantile } from './stats.js';

const FAKE_SMI = join(ROOT, 'test/helpers/fake-nvidia-smi/nvidia-smi');
const H100 = join(ROOT, 'test/fixtures/nvidia-smi/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt');
const WINDOW_S = Number(process.env.BENCH_FACTS_WINDOW_S ?? 60);
const TICK = 100; // clock ticks per second (getconf CLK_TCK on Linux)

/** CPU seconds of a process and of its reaped children (the nvidia-smi runs), from /proc. */
function cpuSeconds(pid: number) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const [utime, stime, cutime, cstime] = [11, 12, 13, 14].map((i) => Number(f[i]));
  return { self: (utime! + stime!) / TICK, children: (cutime! + cstime!) / TICK };
}

/** One host collection in-process: wall time and CPU time, amortized over the 5 min interval. */
async function hostPollCost() {
  const docker = new DockerRuntime({ node: 'bench' });
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await collectHost(() => docker.info(), ['/var/lib/fleet/models']);
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
}

export async function benchFacts(): Promise<string[]> {
  await requireEngines();
  const host = await hostPollCost();
  const machine =
    readFileSync('/proc/cpuinfo', 'utf8')
      .match(/model name\s*:\s*(.*)/)?.[1]
      ?.trim() ?? 'unknown CPU';
  const times: number[] = [];
  const collector = new GpuCollector({
    runner: new ExecFileRunner({ ...process.env, FAKE_NVIDIA_SMI_CAPTURE: H100 }),
    binary: FAKE_SMI,
  });
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const s = await collector.collect();
    times.push(performance.now() - t0);
    if (s.status !== 'ok') throw new Error(`fake nvidia-smi poll failed: ${s.error}`);
  }

  const cluster = new Cluster();
  try {
    await cluster.startServer();
    const on = cluster.startAgent(
      'bench-facts-on',
      {},
      [
        '--nvidia-smi',
        FAKE_SMI,
        '--gpu-interval',
        '10s',
        '--facts-interval',
        '5m',
        '--resync',
        '10s',
        '--heartbeat',
        '5s',
      ],
      {
        FAKE_NVIDIA_SMI_CAPTURE: H100,
        FLEET_LOG_LEVEL: 'warn',
      },
    );
    const off = cluster.startAgent(
      'bench-facts-off',
      {},
      [
        '--nvidia-smi',
        FAKE_SMI,
        '--gpu-interval',
        '24h',
        '--facts-interval',
        '24h',
        '--resync',
        '10s',
        '--heartbeat',
        '5s',
      ],
      {
        FAKE_NVIDIA_SMI_CAPTURE: H100,
        FLEET_LOG_LEVEL: 'warn',
      },
    );
    await cluster.nodeConnected('bench-facts-on');
    await cluster.nodeConnected('bench-facts-off');
    await new Promise((r) => setTimeout(r, 12_000)); // past start-up and the first polls
    const a0 = cpuSeconds(on.pid!);
    const b0 = cpuSeconds(off.pid!);
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    const a1 = cpuSeconds(on.pid!);
    const b1 = cpuSeconds(off.pid!);
    const pct = (x: number) => `${((x / WINDOW_S) * 100).toFixed(2)}%`;
    const onSelf = a1.self - a0.self;
    const offSelf = b1.self - b0.self;
    const onKids = a1.children - a0.children;
    return [
      `facts (${machine}, ${cpus().length} cores), ${WINDOW_S} s window, agents side by side; /proc CPU time (10 ms resolution):`,
      `  one host collection (systeminformation + docker info): ${fmt(host.wallMs)} wall, ${fmt(host.cpuMs)} CPU → ${((host.cpuMs / 300_000) * 100).toFixed(3)}% of a core at one per 5 min`,
      `  one GPU poll (fake nvidia-smi, a Node script): median ${fmt(median(times))}  p90 ${fmt(quantile(times, 0.9))}`,
      `  agent, collection at defaults (GPUs 10 s, host 5 min): ${pct(onSelf)} of a core (+ nvidia-smi children ${pct(onKids)})`,
      `  agent, collection off:                                 ${pct(offSelf)} of a core`,
      `  collection costs the agent ${pct(onSelf - offSelf)} of a core (target ≤ 1%); with the fake tool's own CPU ${pct(onSelf - offSelf + onKids)}`,
    ];
  } finally {
    await cluster.close();
  }
}
